"""One delivery attempt of the sender: the gate re-checked at the message's turn, the rate budget, the
send lease, media to Meta, the Graph API call, and the status (sent, retried with backoff, or failed).
See docs/sending.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from domain import graph
from shared import constants as c
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


@dataclass
class Told:
    """The `message.status` events of one sender invocation, told together once its sends are done
    (`flush`: ten per PutEvents call), with what the sends' reads found of restriction."""

    events: list[Any] = field(default_factory=list)
    known: dict[str, bool] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: Any = None  # the invocation's campaign send slots (store.ratelimit.Slots), claimed a block at once

    def add(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def learn(self, restricted: dict[str, bool]) -> None:
        with self.lock:
            self.known.update(restricted)

    def flush(self) -> int:
        """Publish what was collected; an event EventBridge would not take (after store.events' retries)
        is counted (`EventsUnpublished`, alarmed) and logged without personal data, never resent as a
        message. Returns how many were handed to the bus."""
        from domain import events

        with self.lock:
            pending, self.events = self.events, []
        if not pending:
            return 0
        try:
            with events.knowing(self.known):
                events.publish(pending)
        except Exception as exc:
            _unpublished(len(pending), exc)
            return 0
        return len(pending)


def _unpublished(count: int, exc: Exception) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from shared.observability import metrics

    metrics.add_metric(name="EventsUnpublished", unit=MetricUnit.Count, value=count)
    logger.error("status event not published", extra={"error_type": type(exc).__name__})


def deliver(
    message_id: str,
    receive_count: int,
    enqueued_at: float,
    token: str,
    now: float | None = None,
    source_arn: str | None = None,
    deadline: float | None = None,
    told: Told | None = None,
    contact: str | None = None,
) -> Outcome:
    """One attempt at the message: gate re-check, rate budget, lease, (media to Meta), Graph API call,
    status. `deadline`: `time.monotonic()` by which the invocation must be done (media needs time).
    `told`: where its status events go (None: published at once). `contact`: the recipient's reference
    when the queue message names it (a campaign's): the message is then read by key with the recipient's
    identity set, in one BatchGetItem.

    Without `contact`, the message is read from GSI `by_msg_id` without a second, consistent read: a copy that
    lags (a status already moved) changes nothing, because every write of the attempt is conditional on
    the stored item (the lease needs `queued`, a refusal only fails an unsent message)."""
    from domain import eligibility

    settings = get_settings()
    at = time.time() if now is None else now
    out, seen = _read(message_id, contact)
    if out is None:
        if at - enqueued_at < INDEX_GRACE_SECONDS:  # GSI by_msg_id is eventually consistent
            return Outcome("deferred", delay=INDEX_RETRY_SECONDS, retry=True)
        return Outcome("dropped")  # erased or expired
    if out.status != "queued":
        return Outcome("dropped")  # already sent or failed (a duplicate delivery)
    content = out.content()
    if content is None:
        return Outcome("dropped")  # the contact's key is shredded: erased
    identity = _identity(seen, str(content["to"]), out.pk)  # PROFILEs, restriction, suppression: one read
    if told is not None and identity.seen is not None:
        told.learn(identity.seen.restricted)
    number = str(content.get("from") or out.business_number or settings.phone_number_id)
    kind, purpose = str(out.item.get("kind", "")), str(out.item.get("purpose", ""))
    template = content.get("template") if kind == eligibility.TEMPLATE else None
    campaign = out.item.get("campaign")
    if campaign:
        from domain import campaign_steps as campaigns

        if campaigns.held(out):  # cancelled (the message fails unsent) or paused (it waits for resume)
            return Outcome("dropped")
    found = eligibility.check(_candidate(identity, purpose, kind, number, at, template, bool(campaign)))
    if found is not None:  # what changed after acceptance (an erasure, a STOP)
        if campaign and campaigns.gate_closed(out, found):
            return Outcome("dropped")  # the template stopped being APPROVED: the campaign is paused
        refusal = found.error()
        if outbound.mark_failed(out, refusal, unsent_only=True):  # no lease held: never over a send
            _tell(out, "failed", refusal, mirror=not campaign, told=told)
        return Outcome("failed")

    media_id = _media_id(content)
    lease = LEASE_SECONDS
    if media_id:
        # The media goes to Meta inside the lease (a copy for the contact, then the upload): the lease
        # covers both, bounded by the invocation's time left, so no other attempt sends meanwhile.
        room = (deadline - time.monotonic()) if deadline is not None else MEDIA_LEASE_SECONDS
        if room < MEDIA_MIN_SECONDS:
            return Outcome("deferred", delay=1, retry=True)  # too little time left in this invocation
        lease = int(min(room, MEDIA_LEASE_SECONDS)) + LEASE_SECONDS
    claimed = _lease(out, lease, number, bool(campaign), told.slots if told is not None else None)
    if claimed is INACTIVE:  # paused or cancelled since `held` looked (its copy may be a second old)
        return (
            Outcome("dropped")
            if campaigns.held(out, fresh=True)
            else Outcome("deferred", delay=1, retry=True)
        )
    if claimed is SPENT_BUDGET:
        if receive_count >= settings.max_send_attempts:
            # A deferral must not push the message into the DLQ: replace it with a fresh queue message.
            outbound.enqueue(message_id, delay_seconds=RATE_DEFER_SECONDS, source_arn=source_arn)
            return Outcome("requeued")
        return Outcome("deferred", delay=RATE_DEFER_SECONDS, retry=True)
    if not isinstance(claimed, outbound.Outbound):
        return _not_ours(out, message_id, lease)

    if media_id:
        from domain import media_out

        until = time.monotonic() + lease - LEASE_SECONDS
        meta_id = media_out.for_meta(out.pk, media_id, number, token, settings, until)
        if isinstance(meta_id, graph.GraphResult):
            return _answered(claimed, meta_id, receive_count, identity, message_id, told)
        content = {**content, "graph": {**(content.get("graph") or {}), "media": meta_id}}
    url = graph.messages_url(settings.graph_api_url, settings.graph_api_version, number)
    answer = graph.send(url, token, graph.message_body(content))
    if answer.code == graph.THROUGHPUT_CODE:  # the number's throughput is exceeded: campaigns slow down
        from store import ratelimit

        ratelimit.slow_campaigns(number)
    return _answered(claimed, answer, receive_count, identity, message_id, told)


def _not_ours(out: outbound.Outbound, message_id: str, lease: int) -> Outcome:
    """The lease was not taken: dropped when the message is no longer queued; deferred for the lease when
    another attempt holds it; when none does, the transaction met another on a shared item (the
    per-second budget, the campaign's META: TransactionConflict), tried again a second later."""
    fresh = outbound.get(out.pk, message_id)
    if fresh is None or fresh.status != "queued":
        return Outcome("dropped")
    held = int(fresh.item.get(outbound.LEASE_ATTR) or 0) > time.time()
    return Outcome("deferred", delay=lease if held else RATE_DEFER_SECONDS, retry=True)


def _read(message_id: str, contact: str | None) -> tuple[outbound.Outbound | None, Any]:
    """The message (and, when `contact` names its recipient, the recipient's set read in the same
    BatchGetItem); else from GSI `by_msg_id`, the set read later."""
    from shared import ids
    from store import contacts

    if not contact or not ids.is_reference(contact) or not outbound.is_message_id(message_id):
        return outbound.get_by_id(message_id, confirm=False), None
    pk, found = ids.pseudonym_of(contact), dict[tuple[str, str, str], dict[str, Any]]()
    key = (c.TABLE_MESSAGES, pk, outbound.OUT_PREFIX + message_id)
    identity = contacts.read_set(contact, pk, also=[key], into=found)
    item = found.get(key)
    return (outbound.Outbound(item) if item else None), identity


def _identity(seen: Any, ref: str, pk: str) -> Any:
    """The recipient's identity set as `_read` found it (named by the message's own `to`), else read now."""
    from dataclasses import replace

    from store import contacts

    if seen is not None and seen.primary == pk:
        return replace(seen, ref=ref)
    return contacts.read_set(ref, pk)


def _candidate(
    identity: Any, purpose: str, kind: str, number: str, at: float, template: Any, campaign: bool
) -> Any:
    """The send-time gate's candidate; a campaign's template entry as this container read it in the last
    `campaign_steps.ACTIVE_CACHE_SECONDS` when APPROVED (a template leaving APPROVED pauses the campaign
    at once, which the lease's check sees)."""
    from domain import campaign_steps, eligibility

    entry = None
    if campaign and template is not None:
        entry = eligibility.template_entry(template, eligibility.SEND, campaign_steps.ACTIVE_CACHE_SECONDS)
    return eligibility.Candidate(
        identity, purpose, kind, eligibility.SEND, number, at, template=template, entry=entry
    )


SPENT_BUDGET = "spent"
INACTIVE = "inactive"  # a campaign message's campaign was not active at its lease


def _lease(
    out: outbound.Outbound, lease: int, number: str, campaign: bool, slots: Any = None
) -> outbound.Outbound | str | None:
    """A token of the number's budget (the campaigns' own for a campaign message) and the send lease, in
    one transaction (store/outbound.py `claim` with a token): the claimed message, None when it is not
    ours to send (no token spent), or `SPENT_BUDGET` when no token came within the wait. `slots`: the
    invocation's block of campaign slots (store.ratelimit.Slots)."""
    from store import ratelimit

    if campaign:  # evenly spaced slots of the campaigns' own budget (slowed after a 130429), then the lease
        from store import campaigns

        key, rate = ratelimit.campaign_key(number), ratelimit.campaign_rate(number)
        if not ratelimit.acquire_spaced(key, rate, slots=slots):
            return SPENT_BUDGET
        # The lease holds only while the campaign is active: a pause or cancel is seen before the send.
        claimed = outbound.claim(out, lease, token=campaigns.active_check(str(out.item["campaign"])))
        if claimed == outbound.SPENT:
            return INACTIVE
        return claimed if isinstance(claimed, outbound.Outbound) else None
    got: list[outbound.Outbound | None] = []

    def take(phone_number_id: str, per_second: int, second: int) -> bool:
        answer = outbound.claim(out, lease, token=ratelimit.take_op(phone_number_id, per_second, second))
        if answer == outbound.SPENT:
            return False
        got.append(answer if isinstance(answer, outbound.Outbound) else None)
        return True

    if not ratelimit.acquire(number, None, take=take):
        return SPENT_BUDGET
    if got:
        return got[0]
    answer = outbound.claim(out, lease)  # a token taken another way: the lease on its own
    return answer if isinstance(answer, outbound.Outbound) else None


def _media_id(content: dict[str, Any]) -> str | None:
    """waguard's media id of a media message sent by `media_id` (None for every other message)."""
    kind = graph.kind_of(content)
    source = content.get(kind)
    if kind in graph.MEDIA_KINDS and isinstance(source, dict) and source.get("media_id"):
        return str(source["media_id"])
    return None


def _answered(
    claimed: outbound.Outbound,
    result: graph.GraphResult,
    receive_count: int,
    identity: Any,
    message_id: str,
    told: Told | None = None,
) -> Outcome:
    """The outcome of Meta's answer to the holder of the send lease: sent, retried with backoff (the lease
    given back), or failed for good."""
    from domain import consent
    from store import contacts

    settings = get_settings()
    if result.ok:
        assert result.wamid is not None
        followed: list[bool] = []  # a campaign recipient moved to `sent` in the same write
        if outbound.mark_sent(claimed, result.wamid, contacts.wamid_hash(result.wamid), followed):
            _tell(claimed, "sent", mirror=not any(followed), told=told)
        return Outcome("sent", answer=result)
    if result.retryable:
        if max(receive_count, claimed.attempts) >= settings.max_send_attempts:
            if outbound.mark_failed(claimed, result.error):
                _tell(claimed, "failed", result.error, told=told)
            # Reported as a failure, visible at once: SQS moves it to the DLQ on its next receive.
            return Outcome("failed", delay=0, retry=True, answer=result, final=True)
        outbound.release(claimed, result.error)
        delay = graph.backoff_seconds(
            max(claimed.attempts, receive_count), settings.retry_base_seconds, result.code
        )
        return Outcome("retry", delay=delay, retry=True, answer=result)
    if outbound.mark_failed(claimed, result.error):
        _tell(claimed, "failed", result.error, told=told)
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
    out: outbound.Outbound,
    status: str,
    error: dict[str, Any] | None = None,
    mirror: bool = True,
    told: Told | None = None,
) -> None:
    """`message.status` for the business (and a campaign message's recipient follows it, unless `mirror`
    is False), into `told` (or published at once). The status itself is recorded already; an event
    EventBridge would not take is counted (`EventsUnpublished`, alarmed) and logged without personal
    data, rather than resending the message."""
    from domain import events

    if mirror and out.item.get("campaign") and out.item.get("campaign_recipient"):
        from domain import campaign_steps as campaigns

        campaigns.message_moved(str(out.item["campaign"]), str(out.item["campaign_recipient"]), status, error)

    event = events.message_status(
        out.pk,
        out.business_number or get_settings().phone_number_id,
        str(out.item.get("msg_id", "")),
        status,
        error,
        out.item.get("campaign"),
    )
    if told is not None:
        told.add(event)
        return
    try:
        events.publish([event])
    except Exception as exc:
        _unpublished(1, exc)


def give_up(message_id: str, error: dict[str, Any]) -> bool:
    """Mark a message failed after its last receive ended in an unexpected error (best effort)."""
    out = outbound.get_by_id(message_id)
    failed = bool(out and out.status == "queued" and outbound.mark_failed(out, error))
    if out is not None and failed:
        _tell(out, "failed", error)
    return failed


def defer(receipt_handle: str, seconds: int, source_arn: str | None = None) -> None:
    outbound.defer(receipt_handle, seconds, source_arn)
