"""Campaigns (contract: "Campaigns"; docs/design.md "Campaigns"): one approved template to many contacts.

- `submit` validates as a single send would (the template from the registry, APPROVED, its parameters,
  `send_at`), stores the campaign and its audience by reference only, and starts it (or leaves it
  `scheduled`: `start_due` runs every minute).
- `campaign_steps.step` (the sender, on a `{"campaign": ID}` record of the send queue) prepares one page
  of recipients at a time, each gated by domain.eligibility at `PREPARE` and sent once; the message is
  gated again at `SEND` by domain.delivery, paced by the campaigns' own budget.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import campaign_steps, eligibility
from domain.errors import Refused
from shared import constants as c
from shared import ids
from shared.observability import logger
from store import campaigns as store
from store import tables

MAX_AHEAD_SECONDS = 30 * 86400


_iso = campaign_steps.iso
_plain = campaign_steps.plain


def _send_at(raw: str | None, now: int) -> int | None:
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Refused(400, "invalid_send_at", "send_at is an ISO-8601 date and time") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    epoch = int(at.timestamp())
    if epoch < now - 60:
        raise Refused(400, "invalid_send_at", "send_at is in the past")
    if epoch > now + MAX_AHEAD_SECONDS:
        raise Refused(400, "invalid_send_at", "send_at is more than 30 days ahead")
    return epoch


def _check_template(template: dict[str, Any], entries: list[dict[str, Any]]) -> Any:
    """The registry entry, refused as a single send would be (400 / 422); each entry's own components too."""
    from domain import template_fit

    entry = eligibility.template_entry(template, eligibility.ACCEPT)
    found = eligibility.template_refusal(template, entry)
    if found is not None:
        raise found.refusal()
    for item in entries:
        if item.get("components") is not None:
            try:
                template_fit.check(entry.components, entry.parameter_format, item["components"])
            except template_fit.Misfit as exc:
                raise Refused(400, "template_parameters", f"an audience entry: {exc}") from exc
    return entry


def _entry(raw: dict[str, Any]) -> dict[str, Any]:
    """An audience entry by reference only (an invalid contact is kept to be counted `invalid_contact`)."""
    from store import contacts

    out: dict[str, Any] = {}
    try:
        norm = ids.normalize_contact(str(raw.get("to", "")))
        out["to_ref"] = norm if ids.is_reference(norm) else ids.reference_of(contacts.chash(norm))
    except ids.InvalidContact:
        out["invalid"] = True
    if raw.get("components") is not None:
        out["components"] = raw["components"]
    return out


def submit(body: dict[str, Any]) -> dict[str, str]:
    """`POST /campaigns`: validated before anything is stored; `{"id", "status"}`."""
    from domain import references
    from store import outbound

    now = tables.now()
    template = body["template"]
    audience = body["audience"]
    raw_entries = list(audience.get("contacts") or [])
    entry = _check_template(template, raw_entries)
    send_epoch = _send_at(body.get("send_at"), now)
    number = references.business_number(body.get("from"), None)
    cid = "cp_" + ids.pseudonym(str(now), outbound.new_id())[:20]
    status = "scheduled" if send_epoch and send_epoch > now else "preparing"
    meta: dict[str, Any] = {
        "id": cid,
        "name": body["name"],
        "status": status,
        "template": template,
        "purpose": entry.purpose,
        "from": number,
        "audience": "consented" if audience.get("consented") else "contacts",
        "entries": len(raw_entries),
        "created_at": _iso(now),
        "created_epoch": now,
    }
    if send_epoch:
        meta["send_at"] = _iso(send_epoch)
        meta["send_epoch"] = send_epoch
    store.create(meta, [_entry(r) for r in raw_entries])
    logger.info("campaign created", extra={"campaign": cid, "status": status})
    if status == "preparing":
        _start(meta)
    return {"id": cid, "status": status}


def _start(meta: dict[str, Any]) -> None:
    from domain import events

    cid = str(meta["id"])
    if meta.get("status") == "scheduled":
        if not store.set_status(cid, "preparing", ("scheduled",), started_at=_iso(tables.now())):
            return
        store.forget_due(meta)
    else:
        store.set_status(cid, "preparing", ("preparing",), started_at=_iso(tables.now()))
    campaign_steps.enqueue(cid, 0)
    events.publish([events.campaign(c.EVENT_CAMPAIGN_STARTED, cid, str(meta["name"]), store.counts(cid))])


def start_due(now: int | None = None) -> dict[str, int]:
    """The schedule: start every scheduled campaign whose `send_at` has come."""
    started = 0
    for cid in store.due(tables.now() if now is None else now):
        meta = store.get(cid)
        if meta is None or meta.get("status") != "scheduled":
            continue
        _start(meta)
        started += 1
    return {"started": started}


# ---- the views ------------------------------------------------------------------------------------------
def view(cid: str) -> dict[str, Any]:
    meta = store.get(cid) if cid.startswith("cp_") else None
    if meta is None:
        raise Refused(404, "not_found", "no such campaign")
    template = meta["template"]
    out: dict[str, Any] = {
        "id": cid,
        "name": meta["name"],
        "status": meta["status"],
        "template": {"name": template["name"], "language": template["language"]},
        "from": meta["from"],
        "created_at": meta["created_at"],
        "counts": _counts(meta),
    }
    for key in ("send_at", "started_at", "completed_at"):
        if meta.get(key):
            out[key] = meta[key]
    return out


def _counts(meta: dict[str, Any]) -> dict[str, Any]:
    """The recipients' buckets; an explicit list's entries not prepared yet count as `pending` (as
    `cancelled` once the campaign is cancelled: they are never sent), so the counts add up to the list."""
    counts: dict[str, Any] = _plain(store.counts(str(meta["id"])))
    if meta.get("audience") == "contacts":
        unprepared = max(0, int(meta.get("entries", 0)) - int(counts["recipients"]))
        counts["recipients"] += unprepared
        counts["cancelled" if meta.get("status") == "cancelled" else "pending"] += unprepared
    return counts


def listing() -> dict[str, Any]:
    return {"campaigns": [view(cid) for cid in store.listing() if store.get(cid)]}


def recipients(cid: str, status: str | None, limit: int, before: str | None) -> dict[str, Any]:
    view(cid)  # 404 for an unknown campaign
    if status is not None and status not in store.BUCKETS:
        raise Refused(400, "invalid_status", f"status is one of {', '.join(store.BUCKETS)}")
    items, cursor = store.recipients_page(cid, status, max(1, min(limit, 500)), before)
    out = []
    for item in items:
        row: dict[str, Any] = {"contact": item.get("contact"), "status": item.get("status")}
        for key in ("message_id", "skipped_by"):
            if item.get(key):
                row[key] = item[key]
        if item.get("error"):
            row["error"] = _plain(dict(item["error"]))
        out.append(row)
    return {"recipients": out, **({"next": cursor} if cursor else {})}


def cancel(cid: str) -> dict[str, Any]:
    view(cid)
    if not store.set_status(cid, "cancelled", ("scheduled", "preparing", "running", "paused")):
        raise Refused(409, "campaign_finished", "the campaign is already completed or cancelled")
    for item in store.recipients(cid, "pending"):
        store.move(cid, str(item[c.SK])[len(store.RECIPIENT) :], "cancelled", only_from="pending")
    return view(cid)


def resume(cid: str) -> dict[str, Any]:
    from domain import templates

    meta = store.get(cid)
    if meta is None:
        raise Refused(404, "not_found", "no such campaign")
    if meta["status"] != "paused":
        raise Refused(409, "not_paused", "only a paused campaign resumes")
    template = meta["template"]
    entry = templates.lookup(str(template["name"]), str(template["language"]["code"]))
    if entry is None or not entry.approved:
        raise Refused(409, "template_not_approved", "the template is not APPROVED again")
    if store.set_status(cid, "running", ("paused",), redispatch=True):
        campaign_steps.enqueue(cid, 0)
    return view(cid)
