"""Sending: acceptance and queueing behind `POST /messages` (once per Idempotency-Key: domain.idempotency)
and the status view behind `GET /messages/{id}`; the sender's attempt is domain.delivery.

The gate is `domain.eligibility` (one table of rules, evaluated at acceptance, at the sender's turn and
for waguard's own service texts), see docs/sending.md.
"""

from __future__ import annotations

from typing import Any

from domain import graph
from domain.errors import Refused
from models.api_messages import MessageError, MessageView, SendMessageRequest
from shared import constants as c
from shared import ids
from shared.observability import logger
from shared.settings import get_settings
from store import outbound


def content_of(ref: str, identity: Any, request: SendMessageRequest, number: str) -> dict[str, Any]:
    """The stored (encrypted) content of any kind (domain.references resolves waguard's ids)."""
    from domain import references

    return references.content_of(ref, identity, request, number)


def normalize(raw: str) -> str:
    try:
        return ids.normalize_contact(raw)
    except ids.InvalidContact as exc:
        raise Refused(400, "invalid_contact", str(exc)) from exc


def accept(request: SendMessageRequest, idem_key: dict[str, str] | None = None) -> dict[str, str]:
    """Gate, store (`queued`) and enqueue one message; `{"id", "status": "queued"}`."""
    from domain import eligibility, references
    from store import contacts

    identity = contacts.identity(normalize(request.to), fresh=True)
    if not identity.resolved:  # a contact reference nobody holds data for: no number to send to
        raise Refused(404, "not_found", "no contact is known by this reference")
    number = references.business_number(request.from_, identity)
    content = content_of(identity.ref, identity, request, number)  # 400 for ids it cannot resolve
    template = request.template.model_dump(mode="json", exclude_none=True) if request.template else None
    entry = eligibility.template_entry(template, eligibility.ACCEPT) if template else None
    eligibility.require(
        eligibility.Candidate(
            identity,
            request.purpose,
            request.kind,
            eligibility.ACCEPT,
            number,
            template=template,
            entry=entry,
        )
    )
    purpose = str(entry.purpose) if entry is not None else str(request.purpose)
    if (
        entry is not None and template is not None
    ):  # what the recipient will read (the conversation and the export show it)
        from domain import template_fit

        content = {
            **content,
            "template_text": template_fit.render(entry.components, template.get("components")),
        }
    msg_id = _queue(identity.primary, purpose, content, idem_key)
    return {"id": msg_id, "status": "queued"}


def _queue(chash: str, purpose: str, content: dict[str, Any], idem_key: dict[str, str] | None = None) -> str:
    """Store the message `queued` and put its id on the send queue; undone (503) if the enqueue fails."""
    msg_id = outbound.new_id()
    outbound.create(chash, msg_id, purpose, content, idem_key)
    try:
        outbound.enqueue(msg_id)
    except Exception as exc:
        logger.warning("enqueue failed", extra={"message_id": msg_id, "error_type": type(exc).__name__})
        try:
            outbound.delete(chash, msg_id)
        except Exception as cleanup:
            logger.error(
                "could not remove the unqueued message",
                extra={"message_id": msg_id, "error_type": type(cleanup).__name__},
            )
        raise Refused(503, "unavailable", "the message could not be queued; nothing was sent") from exc
    kind = graph.kind_of(content)
    logger.info("message queued", extra={"message_id": msg_id, "kind": kind, "purpose": purpose})
    return msg_id


def enqueue_service_text(identity: Any, text: str, number: str | None = None) -> str:
    """Queue a service text answering the contact's own message (the processor's optional STOP
    confirmation), from the business number it came in on (None: the default). The opt-out keyword itself
    opened Meta's customer-service window (the gate's SERVICE_TEXT moment); returns the message id,
    raises Refused (403, or 400 for an empty or too long text)."""
    from domain import eligibility

    if not 1 <= len(text) <= c.TEXT_MAX_CHARS:
        raise Refused(400, "invalid_body", "a text body has 1 to 4096 characters")
    eligibility.require(
        eligibility.Candidate(identity, c.PURPOSE_SERVICE, "text", eligibility.SERVICE_TEXT, number)
    )
    sender = number or get_settings().phone_number_id
    return _queue(identity.primary, c.PURPOSE_SERVICE, {"to": identity.ref, "text": text, "from": sender})


def submit(request: SendMessageRequest, caller: str, idempotency_key: str | None = None) -> dict[str, str]:
    """`POST /messages`: accept once per (caller, Idempotency-Key); the same key answers the same."""
    if idempotency_key is None:
        return accept(request)
    from domain import idempotency

    body = request.model_dump(mode="json", exclude_none=True, by_alias=True)
    return idempotency.once(caller, idempotency_key, body, lambda idem_key: accept(request, idem_key))


# ---- status view ---------------------------------------------------------------------------------------
def view(msg_id: str) -> dict[str, Any] | None:
    """The `GET /messages/{id}` body, or None."""
    out = outbound.get_by_id(msg_id)
    if out is None:
        return None
    error = MessageError.model_validate(out.error) if out.status == "failed" and out.error else None
    return MessageView(id=out.msg_id, status=out.status, wamid=out.wamid(), error=error).public()
