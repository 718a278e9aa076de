"""Privacy over WhatsApp (contract: "Privacy operations"): the notice at a contact's first message, and the
keywords that open requests or ask for the notice again. Called by ingestion (domain/ingest.py) once the
message is stored; each answer is a service text (domain/sending.enqueue_service_text), which the send
gate may refuse (a restricted contact gets nothing): refused answers are logged, never retried.

- First message (the first ever, and the first after an erasure, which removed the record): the notice,
  recorded as `NOTICE#first` in the contact's partition; its existence is read only when a notice is
  configured (`privacyNotice`, locally `WA_PRIVACY_NOTICE`).
- `MY DATA` / `DELETE MY DATA` (and translations): an access / erasure request, channel `whatsapp`, law
  `privacyLaw`, its id derived from the message's pseudonym (a retry opens no second one), answered with
  the request id and due date. The WhatsApp number itself is the identity check.
- `PRIVACY` (and translations): the notice again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain import keywords
from domain.errors import Refused
from shared.observability import logger
from shared.settings import Settings
from store import privacy as store
from store.contacts import Identity

FIRST = "first"
WHATSAPP = "whatsapp"
REQUEST_OF = {keywords.ACCESS_REQUEST: "access", keywords.ERASURE_REQUEST: "erasure"}
LABEL = {"access": "access to your data", "erasure": "erasure of your data"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _answer(identity: Identity, text: str, number: str | None, what: str) -> bool:
    """Queue a service text; False when the gate refused it (logged with its code only)."""
    from domain import sending

    try:
        sending.enqueue_service_text(identity, text, number)
    except Refused as exc:
        logger.info("privacy answer not sent", extra={"what": what, "code": exc.code})
        return False
    return True


def first_message(identity: Identity, number: str | None, settings: Settings) -> None:
    """The privacy notice at the contact's first message (once per life of the contact)."""
    if not settings.privacy_notice or store.notices_given(identity.primary, FIRST):
        return
    if _answer(identity, settings.privacy_notice, number, "notice"):
        store.record_notice(identity.primary, FIRST, settings.privacy_notice_version, _now())


def keyword(
    intent: str, identity: Identity, seed: str, at: int, number: str | None, settings: Settings
) -> None:
    """Act on a privacy keyword (`seed`: the message's pseudonym; `at`: its Meta time)."""
    if intent == keywords.PRIVACY_NOTICE:
        if settings.privacy_notice and _answer(identity, settings.privacy_notice, number, "notice"):
            store.record_notice(identity.primary, seed[:24], settings.privacy_notice_version, _now())
            store.record_notice(identity.primary, FIRST, settings.privacy_notice_version, _now())
        return
    _open(REQUEST_OF[intent], identity, seed, at, number, settings)


def _open(kind: str, identity: Identity, seed: str, at: int, number: str | None, settings: Settings) -> None:
    from domain import privacy

    # A retry of this message after a failure finds the request it opened (same id) and answers again:
    # a second answer beats none (a message marked done is never retried).
    received = datetime.fromtimestamp(min(at, int(datetime.now(UTC).timestamp())), UTC)
    opened = privacy.open_request(identity, kind, settings.privacy_law, WHATSAPP, received, WHATSAPP, seed)
    due = opened["due_at"][:10]
    text = (
        f"We received your request for {LABEL[kind]} ({opened['id']}). We will answer by {due} at the latest."
    )
    _answer(identity, text, number, kind)
