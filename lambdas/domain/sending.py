"""Sending: the gate and queueing behind `POST /messages`, the status view behind `GET /messages/{id}`,
and one delivery attempt of the sender (Graph API call, retry decision, status).

Gate (before anything is stored or queued), see docs/sending.md:
- an erased (suppressed) contact: a template is 403 `consent_required` until a new explicit grant; a
  free-form reply needs only the window, which the contact's first message after the erasure opens;
- every free-form kind (all but `template`: text, media, interactive, reaction, location): the 24-hour
  customer-service window on the business number the message goes out from (the contact's newest
  inbound message to that number that was not an opt-out keyword is at most `service_window_hours`
  old), else 422 `outside_service_window`; a free-form message with a
  purpose other than `service` additionally needs that purpose's consent (403);
- a template: `granted` consent for its purpose (a `service` template counts as `utility`), else 403.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from domain import graph
from models.api_messages import MessageError, MessageView, SendMessageRequest
from shared import constants as c
from shared import ids
from shared.observability import logger
from shared.settings import get_settings
from store import outbound

LEASE_SECONDS = 30  # longer than one Graph call (10 s timeout), shorter than the queue's visibility
MEDIA_LEASE_SECONDS = 60  # at most this long to copy media for the contact and upload it to Meta
MEDIA_MIN_SECONDS = 15  # an invocation with less time left leaves a media send to the next one
INDEX_GRACE_SECONDS = 60  # a message id not yet visible in GSI by_msg_id: retry, do not drop
INDEX_RETRY_SECONDS = 2
RATE_DEFER_SECONDS = 1

# Idempotency records (Powertools DynamoDBPersistenceLayer, composite key on the idempotency table).
IDEMPOTENCY_PK = "idempotency#messages-api"
IDEMPOTENCY_KEY_PREFIX = "messages-api.send"
IDEMPOTENCY_HASH = "sha256"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as HTTP header tokens


class Refused(Exception):
    """A request the contract refuses: HTTP status, stable code, message (no personal data)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def consent_purpose(purpose: str, kind: str) -> str | None:
    """The consent purpose a send needs; None for a free-form service message (the window is enough)."""
    if kind != "template":
        return None if purpose == c.PURPOSE_SERVICE else purpose
    return "utility" if purpose == c.PURPOSE_SERVICE else purpose


def gate(identity: Any, purpose: str, kind: str, now: float | None = None, number: str | None = None) -> None:
    """Raise Refused unless the contract lets this send go out to this contact now."""
    from domain import consent
    from store import contacts

    # Decide on what the API would show now: keys cached by this container may predate an erasure
    # served elsewhere (the consent and export routes read them fresh too).
    contacts.fresh_keys(identity.hashes)
    if kind == "template" and contacts.is_suppressed(identity):
        raise Refused(403, "consent_required", "the contact was erased; sending needs a new explicit consent")
    if kind != "template":
        window = get_settings().service_window_hours * 3600
        last = contacts.last_inbound_at(identity, number)
        at = time.time() if now is None else now
        if last is None or at - last > window:
            raise Refused(
                422,
                "outside_service_window",
                "free-form messages need the 24-hour customer-service window; send a template instead",
            )
    needed = consent_purpose(purpose, kind)
    if needed and not consent.is_granted(identity, needed):
        raise Refused(403, "consent_required", f"the contact has not granted {needed} consent")


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
    from domain import references
    from store import contacts

    identity = contacts.identity(normalize(request.to))
    if not identity.resolved:  # a contact reference nobody holds data for: no number to send to
        raise Refused(404, "not_found", "no contact is known by this reference")
    number = references.business_number(request.from_, identity)
    content = content_of(identity.ref, identity, request, number)  # 400 for ids it cannot resolve
    gate(identity, request.purpose, request.kind, number=number)
    msg_id = _queue(identity.primary, request.purpose, content, idem_key)
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
    opened Meta's customer-service window, so only suppression is checked; returns the message id,
    raises Refused (403, or 400 for an empty or too long text)."""
    from store import contacts

    if not 1 <= len(text) <= c.TEXT_MAX_CHARS:
        raise Refused(400, "invalid_body", "a text body has 1 to 4096 characters")
    if contacts.is_suppressed(identity):
        raise Refused(403, "consent_required", "the contact was erased; sending needs a new explicit consent")
    sender = number or get_settings().phone_number_id
    return _queue(identity.primary, c.PURPOSE_SERVICE, {"to": identity.ref, "text": text, "from": sender})


# ---- idempotency ---------------------------------------------------------------------------------------
def idempotency_record_key(caller: str, key: str) -> dict[str, str]:
    """The pk/sk of the Powertools idempotency record of (caller, Idempotency-Key), computed as Powertools
    does (`<key_prefix>#<hash of the jmespath-extracted data>`), so erasure can delete it."""
    data = [caller, key]  # what IdempotencyConfig.event_key_jmespath "[caller, key]" extracts
    digest = hashlib.new(IDEMPOTENCY_HASH, json.dumps(data, sort_keys=True).encode()).hexdigest()
    return {"pk": IDEMPOTENCY_PK, "sk": f"{IDEMPOTENCY_KEY_PREFIX}#{digest}"}


class _Idempotency:
    """The Powertools persistence layer, config and wrapped accept, built on first use."""

    def __init__(self) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        from shared.settings import table_name

        self.config = IdempotencyConfig(
            event_key_jmespath="[caller, key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=get_settings().retention_seconds(c.CLASS_IDEMPOTENCY),
            hash_function=IDEMPOTENCY_HASH,
        )
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table_name(c.TABLE_IDEMPOTENCY),
            key_attr=c.PK,
            sort_key_attr=c.SK,
            static_pk_value=IDEMPOTENCY_PK,
            expiry_attr=c.TTL_ATTRIBUTE,
        )

        def accept_once(request: dict[str, Any], send: SendMessageRequest, idem_key: dict[str, str]) -> dict:
            return accept(send, idem_key)

        self.accept_once = idempotent_function(
            accept_once,
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )


_idem: _Idempotency | None = None
_context: Any = None


def _idempotency() -> _Idempotency:
    global _idem  # noqa: PLW0603 - one per container, built on first use
    if _idem is None:
        _idem = _Idempotency()
        if _context is not None:
            _idem.config.register_lambda_context(_context)
    return _idem


def register_context(context: Any) -> None:
    """The invocation's Lambda context: an in-progress record then expires with the invocation."""
    global _context  # noqa: PLW0603
    _context = context
    if _idem is not None and context is not None:
        _idem.config.register_lambda_context(context)


def reset() -> None:
    """Forget the idempotency layer (tests switch accounts)."""
    global _idem, _context  # noqa: PLW0603
    _idem = None
    _context = None


def submit(request: SendMessageRequest, caller: str, idempotency_key: str | None = None) -> dict[str, str]:
    """`POST /messages`: accept once per (caller, Idempotency-Key); the same key answers the same."""
    if idempotency_key is None:
        return accept(request)
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise Refused(400, "invalid_body", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    idem = _idempotency()
    payload = {
        "caller": caller,
        "key": idempotency_key,
        "body": request.model_dump(mode="json", exclude_none=True, by_alias=True),
    }
    try:
        return idem.accept_once(
            request=payload, send=request, idem_key=idempotency_record_key(caller, idempotency_key)
        )
    except IdempotencyValidationError as exc:
        raise Refused(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request body"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Refused(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is in progress"
        ) from exc
    except IdempotencyPersistenceLayerError as exc:
        logger.warning("idempotency store unavailable", extra={"error_type": type(exc.__cause__).__name__})
        raise Refused(503, "unavailable", "the request could not be processed; try again") from exc


# ---- status view ---------------------------------------------------------------------------------------
def view(msg_id: str) -> dict[str, Any] | None:
    """The `GET /messages/{id}` body, or None."""
    out = outbound.get_by_id(msg_id)
    if out is None:
        return None
    error = MessageError.model_validate(out.error) if out.status == "failed" and out.error else None
    return MessageView(id=out.msg_id, status=out.status, wamid=out.wamid(), error=error).public()


# ---- the sender: one delivery attempt ------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What became of one send-queue record.

    `retry`: report a batch item failure, visible again after `delay` seconds. `result` is one of
    sent, failed, retry, deferred (rate budget or lease, no attempt counted), dropped (nothing to do),
    requeued (a fresh queue message replaces this one).
    """

    result: str
    delay: int | None = None
    retry: bool = False
    answer: graph.GraphResult | None = None
    final: bool = False


def _still_allowed(identity: Any, out: outbound.Outbound) -> dict[str, Any] | None:
    """Re-check at send time what can change after acceptance (an erasure, a STOP): the error or None."""
    from domain import consent
    from store import contacts

    # A free-form message queued now answers a message the contact wrote after any erasure (its item
    # would have been erased with the rest otherwise); only templates wait for a new grant.
    if str(out.item.get("kind", "")) == "template" and contacts.is_suppressed(identity):
        return {"code": "consent_required", "title": "the contact was erased before the message was sent"}
    needed = consent_purpose(str(out.item.get("purpose", "")), str(out.item.get("kind", "")))
    if needed and not consent.is_granted(identity, needed):
        return {
            "code": "consent_required",
            "title": f"{needed} consent was revoked before the message was sent",
        }
    return None


def deliver(
    message_id: str,
    receive_count: int,
    enqueued_at: float,
    token: str,
    now: float | None = None,
    source_arn: str | None = None,
    deadline: float | None = None,
) -> Outcome:
    """One attempt at the message: gate re-check, rate budget, lease, (media to Meta), Graph API call,
    status. `deadline`: `time.monotonic()` by which the invocation must be done (media needs time)."""
    from store import contacts, ratelimit

    settings = get_settings()
    at = time.time() if now is None else now
    out = outbound.get_by_id(message_id)
    if out is None:
        if at - enqueued_at < INDEX_GRACE_SECONDS:  # GSI by_msg_id is eventually consistent
            return Outcome("deferred", delay=INDEX_RETRY_SECONDS, retry=True)
        return Outcome("dropped")  # erased or expired
    if out.status != "queued":
        return Outcome("dropped")  # already sent or failed (a duplicate delivery)
    content = out.content()
    if content is None:
        return Outcome("dropped")  # the contact's key is shredded: erased
    identity = contacts.identity_of(str(content["to"]), out.pk)
    refusal = _still_allowed(identity, out)
    if refusal:
        if outbound.mark_failed(out, refusal, unsent_only=True):  # no lease held: never over a send
            _tell(out, "failed", refusal)
        return Outcome("failed")

    number = str(content.get("from") or out.business_number or settings.phone_number_id)
    if not ratelimit.acquire(number):
        if receive_count >= settings.max_send_attempts:
            # A deferral must not push the message into the DLQ: replace it with a fresh queue message.
            outbound.enqueue(message_id, delay_seconds=RATE_DEFER_SECONDS, source_arn=source_arn)
            return Outcome("requeued")
        return Outcome("deferred", delay=RATE_DEFER_SECONDS, retry=True)

    media_id = _media_id(content)
    lease = LEASE_SECONDS
    if media_id:
        # The media goes to Meta inside the lease (a copy for the contact, then the upload): the lease
        # covers both, bounded by the invocation's time left, so no other attempt sends meanwhile.
        room = (deadline - time.monotonic()) if deadline is not None else MEDIA_LEASE_SECONDS
        if room < MEDIA_MIN_SECONDS:
            return Outcome("deferred", delay=1, retry=True)  # too little time left in this invocation
        lease = int(min(room, MEDIA_LEASE_SECONDS)) + LEASE_SECONDS
    claimed = outbound.claim(out, lease)
    if claimed is None:
        fresh = outbound.get(out.pk, message_id)
        if fresh is None or fresh.status != "queued":
            return Outcome("dropped")
        return Outcome("deferred", delay=lease, retry=True)  # another attempt holds the lease

    if media_id:
        from domain import media_out

        until = time.monotonic() + lease - LEASE_SECONDS
        meta_id = media_out.for_meta(out.pk, media_id, number, token, settings, until)
        if isinstance(meta_id, graph.GraphResult):
            return _answered(claimed, meta_id, receive_count, identity, message_id)
        content = {**content, "graph": {**(content.get("graph") or {}), "media": meta_id}}
    url = graph.messages_url(settings.graph_api_url, settings.graph_api_version, number)
    return _answered(
        claimed, graph.send(url, token, graph.message_body(content)), receive_count, identity, message_id
    )


def _media_id(content: dict[str, Any]) -> str | None:
    """waguard's media id of a media message sent by `media_id` (None for every other message)."""
    kind = graph.kind_of(content)
    source = content.get(kind)
    if kind in graph.MEDIA_KINDS and isinstance(source, dict) and source.get("media_id"):
        return str(source["media_id"])
    return None


def _answered(
    claimed: outbound.Outbound, result: graph.GraphResult, receive_count: int, identity: Any, message_id: str
) -> Outcome:
    """The outcome of Meta's answer to the holder of the send lease: sent, retried with backoff (the lease
    given back), or failed for good."""
    from domain import consent
    from store import contacts

    settings = get_settings()
    if result.ok:
        assert result.wamid is not None
        if outbound.mark_sent(claimed, result.wamid, contacts.wamid_hash(result.wamid)):
            _tell(claimed, "sent")
        return Outcome("sent", answer=result)
    if result.retryable:
        if max(receive_count, claimed.attempts) >= settings.max_send_attempts:
            if outbound.mark_failed(claimed, result.error):
                _tell(claimed, "failed", result.error)
            # Reported as a failure, visible at once: SQS moves it to the DLQ on its next receive.
            return Outcome("failed", delay=0, retry=True, answer=result, final=True)
        outbound.release(claimed, result.error)
        delay = graph.backoff_seconds(
            max(claimed.attempts, receive_count), settings.retry_base_seconds, result.code
        )
        return Outcome("retry", delay=delay, retry=True, answer=result)
    if outbound.mark_failed(claimed, result.error):
        _tell(claimed, "failed", result.error)
    if result.code == graph.MARKETING_STOPPED_CODE:
        consent.record(
            identity,
            "marketing",
            "revoked",
            "meta_error_131050",
            evidence=f"Graph API error 131050 ({message_id})",
        )
    return Outcome("failed", answer=result)


def _tell(out: outbound.Outbound, status: str, error: dict[str, Any] | None = None) -> None:
    """`message.status` for the business. The status itself is recorded already; an event EventBridge
    would not take is counted (`EventsUnpublished`, alarmed) and logged without personal data, rather than
    resending the message to retry it."""
    from domain import events
    from shared.observability import metrics

    try:
        events.publish(
            [
                events.message_status(
                    out.pk,
                    out.business_number or get_settings().phone_number_id,
                    str(out.item.get("msg_id", "")),
                    status,
                    error,
                )
            ]
        )
    except Exception as exc:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name="EventsUnpublished", unit=MetricUnit.Count, value=1)
        logger.error("status event not published", extra={"error_type": type(exc).__name__})


def give_up(message_id: str, error: dict[str, Any]) -> bool:
    """Mark a message failed after its last receive ended in an unexpected error (best effort)."""
    out = outbound.get_by_id(message_id)
    failed = bool(out and out.status == "queued" and outbound.mark_failed(out, error))
    if out is not None and failed:
        _tell(out, "failed", error)
    return failed


def defer(receipt_handle: str, seconds: int, source_arn: str | None = None) -> None:
    outbound.defer(receipt_handle, seconds, source_arn)
