"""A campaign's work on the send queue (docs/design.md "Campaigns"): preparation pages and the send-time
hooks of domain.delivery.

`step` runs on a `{"campaign": ID}` record of the send queue. While preparing, it gates one page of
recipients (`campaignRatePerSecond` of them, at most `PAGE_MAX`) at eligibility `PREPARE`, writes each once,
creates each message once and queues it, moves the cursor (conditionally: a redelivered step that lost the
race stops) and queues the next step (at once while less than two pages wait to be sent, else a second
later), so a campaign larger than one invocation continues by
itself and 100,000 contacts never sit in one function's memory. Once prepared, it polls until no recipient
is pending and completes the campaign.

Exactly once per recipient: the recipient item is a conditional put keyed by the person, its message id is
derived from the campaign and the person (a conditional put too), and the sender's lease and forward-only
statuses (store/outbound.py) send a queued message once however often it is queued.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import eligibility
from shared import constants as c
from shared import ids
from shared.observability import logger
from store import campaigns as store
from store import tables

PAGE_MAX = 100
PAGE_WRITE = (
    20  # pending recipients per guarded write: 4 ops each (guard, message, pointer, line) + 16 shards
)
LISTED_MAX = 200  # the newest campaigns a template change looks at (older ones are paused by the gate)
STEP_DELAY_SECONDS = 1
BACKLOG_PAGES = 2  # pages of queued, unsent messages preparation keeps ahead of the sending
POLL_DELAY_SECONDS = 2
ACTIVE_CACHE_SECONDS = 2  # how long a sender container trusts that a campaign it read is active
_active_seen: dict[str, float] = {}  # campaign id -> time.monotonic() it was last read active
ACTIVE = ("preparing", "running")
SKIPPED_BY = {
    "restriction": "restricted",
    "suppression": "erased",
    "consent": "no_consent",
    "frequency_cap": "frequency_cap",
}
ERASED = object()  # the identity of an entry blanked by an erasure
CANCELLED_ERROR = {
    "code": "campaign_cancelled",
    "title": "the campaign was cancelled before the message was sent",
}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as ints, in nested dicts."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return int(value) if isinstance(value, Decimal) else value


def enqueue(cid: str, delay: int, source_arn: str | None = None) -> None:
    from store import outbound

    outbound.enqueue("", delay_seconds=delay, source_arn=source_arn, body={"campaign": cid})


def message_id(cid: str, person: str) -> str:
    from store import contacts

    return "msg_" + ids.pseudonym(contacts.contact_key(), f"campaign:{cid}:{person}")[:24]


# ---- one step ---------------------------------------------------------------------------------------------
def step(cid: str, source_arn: str | None = None) -> str:
    """One step of the campaign; what it did (stopped, raced, prepared, waiting, completed). `source_arn`:
    the send queue the step came from (the sender is given no queue URL)."""
    meta = store.get(cid)
    if meta is None or meta.get("status") not in ACTIVE:
        return "stopped"
    if meta.get("redispatch"):
        _redispatch(meta, source_arn)
    if not meta.get("prepared"):
        return _prepare_page(meta, source_arn)
    counts = store.counts(cid)
    if counts["pending"]:
        enqueue(cid, POLL_DELAY_SECONDS, source_arn)
        return "waiting"
    if store.set_status(cid, "completed", ACTIVE, completed_at=iso(tables.now())):
        from domain import events

        events.publish([events.campaign(c.EVENT_CAMPAIGN_COMPLETED, cid, str(meta["name"]), plain(counts))])
    return "completed"


def _prepare_page(meta: dict[str, Any], source_arn: str | None) -> str:
    from store import consent, contacts, outbound, ratelimit

    cid = str(meta["id"])
    size = max(1, min(PAGE_MAX, ratelimit.campaign_limit()))
    old = str(meta.get("prep_cursor") or "") or None
    # The template's registry entry, read once per page (every recipient's gate and message use it; the
    # send-time gate reads it again, fresh, before each send).
    entry = eligibility.template_entry(dict(meta["template"]), eligibility.PREPARE)
    queued: list[tuple[str, str]] = []  # the page's messages and recipients, queued together once gated
    page: tuple[list[tuple[str, str]], Any, list[Any]] = (
        queued,
        entry,
        [],
    )  # ... and its pending recipients, written together (`_flush`)
    if meta.get("audience") == "consented":
        pks, last = consent.grants_page(str(meta["purpose"]), store.decode_cursor(old), size)
        read = contacts.read_page(pks)  # the page's gate items in one batch
        for pk in pks:
            if _prepare(meta, _identity_of_pk(pk, read), None, None, page) == "paused":
                return _paused(meta, page, source_arn)
        new, done = store.encode_cursor(last), last is None
    else:
        start = int(old or 0)
        entries = store.entries(cid, start, size)
        named = [str(e["to_ref"]) for e in entries if not e.get("erased") and not e.get("invalid")]
        read = contacts.read_page([ids.pseudonym_of(r) for r in named if ids.is_reference(r)])  # one batch
        for offset, line in enumerate(entries):
            identity = _identity_of_entry(line, read)
            got = _prepare(meta, identity, start + offset, line.get("components"), page)
            if got == "paused":
                return _paused(meta, page, source_arn)
        new, done = str(start + len(entries)), start + len(entries) >= int(meta.get("entries", 0))
    _flush(meta, page)
    outbound.enqueue_many([m for m, _ in queued], source_arn, dict(queued))
    if not store.advance_cursor(cid, old, new, done):
        return "raced"
    store.set_status(cid, "running", ("preparing",))
    enqueue(cid, _next_delay(cid, size), source_arn)
    return "prepared"


def _paused(meta: dict[str, Any], page: Any, source_arn: str | None) -> str:
    """A page cut short by a pause: the messages it created still wait in the queue (held while paused)."""
    from store import outbound

    _flush(meta, page)
    queued = page[0]
    outbound.enqueue_many([m for m, _ in queued], source_arn, dict(queued))
    return "paused"


def _next_delay(cid: str, size: int) -> int:
    """The next page at once while fewer than `BACKLOG_PAGES` pages of messages wait to be sent (a page
    takes time to prepare: waiting a second after each would feed the queue slower than the pace), else a
    second later (the queue does not fill with messages that would only be deferred)."""
    if STEP_DELAY_SECONDS and int(store.counts(cid)["pending"]) < size * BACKLOG_PAGES:
        return 0
    return STEP_DELAY_SECONDS


def _identity_of_entry(entry: dict[str, Any], read: Any = None) -> Any:
    from store import contacts

    if entry.get("erased"):  # blanked by an erasure (or its key shredded): an anonymous `erased` line
        return ERASED
    if entry.get("invalid"):
        return None
    # Unresolved (no number held for the reference): still gated, so that a contact never seen is
    # `no_consent` and an erased one `erased`; one that passes the gate has no address: `invalid_contact`.
    return contacts.identity(str(entry["to_ref"]), strict=False, batched=True, page=read)  # the page's read


def _identity_of_pk(pk: str, read: Any = None) -> Any:
    from dataclasses import replace

    from store import contacts

    got = contacts.read_set(ids.reference_of(pk), pk, page=read)  # the set, PROFILE, gate items: the page's
    item = got.seen.profiles.get(pk) if got.seen is not None else None
    known = (item["_data"].get("wa_id") or item["_data"].get("user_id")) if item else None
    return replace(got, ref=str(known)) if known else None


def _prepare(
    meta: dict[str, Any],
    identity: Any,
    index: int | None,
    components: Any,
    page: tuple[list[tuple[str, str]], Any, list[Any]],
) -> str:
    """Gate one recipient and create its message once; what became of it (`page`: the list its message id
    joins, to be queued with the page's, the template's registry entry read for the page, and the page's
    pending recipients not yet written: a pending one joins them, written together by `_flush`)."""
    _, entry, batch = page
    cid = str(meta["id"])
    mark = f"{index:06d}" if index is not None else ""
    if identity is ERASED:
        return _erased(meta, mark)
    if identity is None:
        invalid = {"contact": None, "status": "skipped", "skipped_by": "invalid_contact", "entry": mark}
        store.add_recipient(meta, f"invalid~{mark or 'grant'}", {**invalid, "rank_n": store.RANK["skipped"]})
        return "skipped"
    person = ids.reference_of(min(identity.hashes))
    template = dict(meta["template"])
    if components is not None:
        template["components"] = components
    found = eligibility.check(
        eligibility.Candidate(
            identity,
            None,
            eligibility.TEMPLATE,
            eligibility.PREPARE,
            str(meta["from"]),
            template=template,
            entry=entry,
        )
    )
    if found is not None and found.rule == "template":
        store.set_status(cid, "paused", ACTIVE)
        return "paused"
    if found is not None and found.rule == "suppression" and index is not None:
        return _erased(meta, mark)  # erased: no line that names the contact
    record: dict[str, Any] = {"contact": person, "entry": mark}
    if found is None and not identity.resolved:
        record.update(status="skipped", skipped_by="invalid_contact")
    elif found is not None:
        record.update(status="skipped", skipped_by=SKIPPED_BY.get(found.rule, "no_consent"))
    else:
        record.update(status="pending")
    record["rank_n"] = store.RANK[str(record["status"])]
    if record["status"] == "pending":
        if all(person != p[1] and identity.primary != p[0].primary for p in batch):
            batch.append((identity, person, template, record))
            return "queued"
        _flush(meta, page)  # named twice in the page: the first one written, this one as it comes
    return _settle(meta, (identity, person, template, record), page)


def _settle(
    meta: dict[str, Any],
    one: tuple[Any, str, dict[str, Any], dict[str, Any]],
    page: Any,
) -> str:
    """Write one gated recipient (its line, and a pending one's message with it) on its own; what became
    of it (queued, skipped, duplicate)."""
    identity, person, template, record = one
    queued, entry, _ = page
    cid, mark = str(meta["id"]), str(record["entry"])
    if record["status"] == "pending":  # the line and its message in one write
        before = _dispatch(meta, identity, person, template, entry, record)
    else:
        before = store.add_recipient(meta, person, record)
    if before is not None and str(before.get("entry", "")) != mark:
        if mark:  # the same person named again in the list: one duplicate
            dup = {"contact": person, "status": "skipped", "skipped_by": "duplicate", "entry": mark}
            store.add_recipient(meta, f"{person}~{mark}", {**dup, "rank_n": store.RANK["skipped"]})
        return "duplicate"
    current = before or record
    if current.get("status") != "pending":
        return "skipped"
    if before is not None:  # written by an earlier attempt of this step: its message, once
        _create(meta, identity, person, template, entry)
        if not before.get("message_id"):
            store.move_extra(cid, person, message_id=message_id(cid, person))
    queued.append((message_id(cid, person), ids.reference_of(identity.primary)))  # read together at the send
    return "queued"


def _flush(meta: dict[str, Any], page: Any) -> None:
    """Write the page's pending recipients gathered so far, `PAGE_WRITE` to a guarded write (each line,
    pointer and message with its own condition, the counts added up per shard); a write refused (a line
    or message already there: a page run again) or failing falls back to one write per recipient, which
    tells what was there. Their messages join the page's queue."""
    from store import sealed

    queued, entry, batch = page
    todo, cid = list(batch), str(meta["id"])
    batch.clear()
    for at in range(0, len(todo), PAGE_WRITE):
        chunk = todo[at : at + PAGE_WRITE]
        try:
            if len(chunk) < 2:
                raise sealed.Cancelled([])  # one alone: its own write
            sealed.run(lambda w, chunk=chunk: _declare_page(w, meta, chunk, entry))  # type: ignore[misc]
        except Exception as exc:
            if not isinstance(exc, sealed.Cancelled):
                logger.warning("page write failed", extra={"campaign": cid, "error_type": type(exc).__name__})
            for one in chunk:
                _settle(meta, one, page)
            continue
        queued.extend((message_id(cid, person), ids.reference_of(i.primary)) for i, person, _, _ in chunk)


def _declare_page(w: Any, meta: dict[str, Any], chunk: list[Any], entry: Any) -> None:
    from store import outbound

    cid = str(meta["id"])
    for identity, person, template, _ in chunk:
        content, extra = _content(meta, identity, person, template, entry)
        outbound.declare_new(
            w, identity.primary, message_id(cid, person), str(meta["purpose"]), content, None, extra
        )
    lines = [(person, {**record, "message_id": message_id(cid, person)}) for _, person, _, record in chunk]
    store.declare_recipients(w, meta, lines)


def _erased(meta: dict[str, Any], mark: str) -> str:
    """An entry whose contact is erased: an anonymous line (keyed by the entry), `skipped` / `erased`."""
    line = {"contact": None, "status": "skipped", "skipped_by": "erased", "entry": mark}
    store.add_recipient(meta, f"{store.ERASED}e{mark}", {**line, "rank_n": store.RANK["skipped"]})
    return "skipped"


def _dispatch(
    meta: dict[str, Any],
    identity: Any,
    person: str,
    template: dict[str, Any],
    entry: Any,
    record: dict[str, Any],
) -> dict[str, Any] | None:
    """Write a pending recipient's line (with its pointer, count and message id) and create its message
    (its id derives from the campaign and the person), in one guarded write; None when both were new, else
    the line already stored (a redelivered step, a person named twice), as `store.add_recipient`."""
    from store import sealed

    cid = str(meta["id"])
    line = {**record, "message_id": message_id(cid, person)}
    at: list[int] = []
    try:
        _create(
            meta,
            identity,
            person,
            template,
            entry,
            lambda w: at.append(store.declare_recipient(w, meta, person, line)),
        )
        return None
    except sealed.Cancelled as exc:
        if at and exc.failed(at[-1]):
            return store.recipient(cid, person) or line
    # The message is there without its line (not written together by an older version): the line alone.
    return store.add_recipient(meta, person, line)


def _create(
    meta: dict[str, Any], identity: Any, person: str, template: dict[str, Any], entry: Any, also: Any = None
) -> None:
    """Create the recipient's message once (`also`: more ops of the same write); a message already there
    (an earlier attempt of this step) is left as it is, unless `also` (then `sealed.Cancelled` is raised)."""
    from store import outbound, sealed

    cid = str(meta["id"])
    content, extra = _content(meta, identity, person, template, entry)
    try:
        outbound.create(
            identity.primary, message_id(cid, person), str(meta["purpose"]), content, extra=extra, also=also
        )
    except sealed.Cancelled:
        if also is not None:
            raise


def _content(
    meta: dict[str, Any], identity: Any, person: str, template: dict[str, Any], entry: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """A recipient's message: its sealed content and its clear campaign attributes."""
    from domain import template_fit, templates

    if entry is None:
        entry = templates.lookup(str(template["name"]), str(template["language"]["code"]))
    content: dict[str, Any] = {
        "to": identity.ref,
        "kind": "template",
        "from": meta["from"],
        "template": template,
    }
    if entry is not None:
        content["template_text"] = template_fit.render(entry.components, template.get("components"))
    return content, {"campaign": str(meta["id"]), "campaign_recipient": person}


def _redispatch(meta: dict[str, Any], source_arn: str | None) -> None:
    """After a resume: queue again the messages of every pending recipient (each is sent once)."""
    from store import outbound

    cid = str(meta["id"])
    for item in store.recipients(cid, "pending"):
        if item.get("message_id"):
            outbound.enqueue(str(item["message_id"]), source_arn=source_arn)
    store.set_status(cid, str(meta["status"]), (str(meta["status"]),), redispatch=False)


# ---- the sender's hooks ------------------------------------------------------------------------------------
def _status(cid: str, fresh: bool) -> str:
    """The campaign's status; one that holds nothing back (neither paused nor cancelled) as this container
    saw it in the last `ACTIVE_CACHE_SECONDS` (unless `fresh`): the lease's condition check
    (store.campaigns.active_check) is what decides."""
    import time

    at = time.monotonic()
    if not fresh and 0 <= at - _active_seen.get(cid, -ACTIVE_CACHE_SECONDS) < ACTIVE_CACHE_SECONDS:
        return "running"
    meta = store.get(cid)
    status = str(meta.get("status")) if meta else "cancelled"
    if status not in ("paused", "cancelled"):
        _active_seen[cid] = at
    else:
        _active_seen.pop(cid, None)
    return status


def reset() -> None:
    """Forget the campaigns seen active (tests: a fresh container)."""
    _active_seen.clear()


def held(out: Any, fresh: bool = False) -> bool:
    """A campaign message whose campaign is cancelled (it fails unsent, its recipient `cancelled`) or
    paused (it stays queued until the campaign resumes): True when it must not be sent now. Without
    `fresh`, an active campaign as seen in the last second or two (the lease checks it again)."""
    from store import outbound

    cid, person = str(out.item["campaign"]), str(out.item.get("campaign_recipient", ""))
    status = _status(cid, fresh)
    if status == "cancelled":
        store.move(cid, person, "cancelled", only_from="pending")
        outbound.mark_failed(out, CANCELLED_ERROR, unsent_only=True)
        return True
    return status == "paused"


def gate_closed(out: Any, found: eligibility.Ineligible) -> bool:
    """The send-time gate refused a campaign message: a template no longer APPROVED pauses the campaign
    (True: the message stays queued); otherwise the recipient is `skipped` (the message fails unsent)."""
    cid, person = str(out.item["campaign"]), str(out.item.get("campaign_recipient", ""))
    if found.rule == "template":
        if store.set_status(cid, "paused", ACTIVE):
            logger.info("campaign paused", extra={"campaign": cid})
        return True
    store.move(
        cid, person, "skipped", only_from="pending", skipped_by=SKIPPED_BY.get(found.rule, "no_consent")
    )
    return False


def message_moved(cid: str, person: str, status: str, error: dict[str, Any] | None = None) -> None:
    """A campaign message's status moved: its recipient's bucket follows (forward only)."""
    if status not in store.RANK or status == "pending":
        return
    if error:
        store.move(
            cid, person, status, error={"code": str(error.get("code")), "title": str(error.get("title", ""))}
        )
    else:
        store.move(cid, person, status)


def pause_for_templates(changed: list[tuple[str, dict[str, Any]]]) -> int:
    """`template.changed` events of a webhook: every active campaign whose template left APPROVED is paused
    at once (the send-time gate would pause it too, at its next message; a scheduled one is paused by
    the gate of its preparation)."""
    left = {
        (str(d.get("name")), str(d.get("language")))
        for kind, d in changed
        if kind == c.EVENT_TEMPLATE_CHANGED and d.get("status") != "APPROVED" and d.get("previous_status")
    }
    paused = 0
    if not left:
        return paused
    for cid in store.listing(limit=LISTED_MAX):
        meta = store.get(cid)
        if meta is None or meta.get("status") not in ACTIVE:
            continue
        template = meta["template"]
        if (str(template["name"]), str(template["language"]["code"])) in left:
            paused += store.set_status(cid, "paused", ACTIVE)
    return paused
