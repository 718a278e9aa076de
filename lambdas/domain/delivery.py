"""One delivery attempt of the sender: the gate re-checked at the message's turn, the rate budget, the
send lease, media to Meta, the Graph API call, and the status (sent, retried with backoff, or failed).
See docs/sending.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from domain import graph
from shared.observability import logger
from shared.settings import get_settings
from store import outbound

LEASE_SECONDS = 30  # longer than one Graph call (10 s timeout), shorter than the queue's visibility
MEDIA_LEASE_SECONDS = 60  # at most this long to copy media for the contact and upload it to Meta
MEDIA_MIN_SECONDS = 15  # an invocation with less time left leaves a media send to the next one
INDEX_GRACE_SECONDS = 60  # a message id not yet visible in GSI by_msg_id: retry, do not drop
INDEX_RETRY_SECONDS = 2
RATE_DEFER_SECONDS = 1


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
    from domain import eligibility
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
    number = str(content.get("from") or out.business_number or settings.phone_number_id)
    kind, purpose = str(out.item.get("kind", "")), str(out.item.get("purpose", ""))
    template = content.get("template") if kind == eligibility.TEMPLATE else None
    campaign = out.item.get("campaign")
    if campaign:
        from domain import campaign_steps as campaigns

        if campaigns.held(out):  # cancelled (the message fails unsent) or paused (it waits for resume)
            return Outcome("dropped")
    found = eligibility.check(
        eligibility.Candidate(identity, purpose, kind, eligibility.SEND, number, at, template=template)
    )
    if found is not None:  # what changed after acceptance (an erasure, a STOP)
        if campaign and campaigns.gate_closed(out, found):
            return Outcome("dropped")  # the template stopped being APPROVED: the campaign is paused
        refusal = found.error()
        if outbound.mark_failed(out, refusal, unsent_only=True):  # no lease held: never over a send
            _tell(out, "failed", refusal, mirror=not campaign)
        return Outcome("failed")

    if campaign:  # evenly spaced slots of the campaigns' own budget of the number
        paced = ratelimit.acquire_spaced(ratelimit.campaign_key(number), ratelimit.campaign_rate(number))
    else:
        paced = ratelimit.acquire(number)
    if not paced:
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
    result = graph.send(url, token, graph.message_body(content))
    if result.code == graph.THROUGHPUT_CODE:  # the number's throughput is exceeded: campaigns slow down
        ratelimit.slow_campaigns(number)
    return _answered(claimed, result, receive_count, identity, message_id)


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


def _tell(
    out: outbound.Outbound, status: str, error: dict[str, Any] | None = None, mirror: bool = True
) -> None:
    """`message.status` for the business (and a campaign message's recipient follows it, unless `mirror`
    is False). The status itself is recorded already; an event EventBridge would not take is counted
    (`EventsUnpublished`, alarmed) and logged without personal data, rather than resending the message."""
    from domain import events
    from shared.observability import metrics

    if mirror and out.item.get("campaign") and out.item.get("campaign_recipient"):
        from domain import campaign_steps as campaigns

        campaigns.message_moved(str(out.item["campaign"]), str(out.item["campaign_recipient"]), status, error)

    try:
        events.publish(
            [
                events.message_status(
                    out.pk,
                    out.business_number or get_settings().phone_number_id,
                    str(out.item.get("msg_id", "")),
                    status,
                    error,
                    out.item.get("campaign"),
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
