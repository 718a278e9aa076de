"""Data-subject requests (contract: "Privacy operations"): opened by the privacy officer or by the contact
over WhatsApp, tracked to their legal due date, extended once, carried out or rejected.

A request names the contact by reference only and carries no personal data, so it outlives the erasure
it carried out (its own retention class). Completing it carries it out: access keeps the export with the
request for 30 days; erasure erases (the receipt id is recorded); restriction restricts; objection revokes
`marketing` with source `objection`. Events `privacy.request_opened`, `privacy.request_completed` and
`privacy.request_overdue` (once per request, from the scheduled check) name no contact.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from domain import events
from domain import privacy_dates as dates
from domain.errors import Refused
from shared import constants as c
from shared import ids
from store import audit
from store import privacy as store
from store.contacts import Identity

ACCESS, ERASURE, RESTRICTION, OBJECTION = "access", "erasure", "restriction", "objection"
TYPES = (ACCESS, ERASURE, RESTRICTION, OBJECTION)
OPEN, COMPLETED, REJECTED = "open", "completed", "rejected"
OVERDUE = "overdue"  # a view: open and past due_at
STATUSES = (OPEN, OVERDUE, COMPLETED, REJECTED)
OBJECTION_SOURCE = "objection"
ROUTE = "privacy request"
_PUBLIC = (
    "id",
    "contact",
    "type",
    "law",
    "channel",
    "status",
    "received_at",
    "due_at",
    "extended_at",
    "extension_reason",
    "completed_at",
    "rejected_at",
    "rejection_reason",
    "receipt_id",
    "export_expires_at",
)


def now() -> datetime:
    return datetime.now(UTC)


def new_id(seed: str | None = None) -> str:
    """`dsr_` and 24 characters: random, or derived from `seed` (a keyword message's pseudonym, so Meta's
    retry of it opens no second request)."""
    return "dsr_" + (seed[:24] if seed else secrets.token_hex(12))


def view(item: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The public shape of a request, with `overdue` when it is open past its due date."""
    out = {k: item[k] for k in _PUBLIC if item.get(k) not in (None, "")}
    out["overdue"] = is_overdue(item, at)
    return out


def is_overdue(item: dict[str, Any], at: datetime | None = None) -> bool:
    return item.get("status") == OPEN and dates.parse(str(item["due_at"])) < (at or now())


def open_request(
    identity: Identity,
    kind: str,
    law: str,
    channel: str,
    received_at: datetime | None = None,
    actor: str = "",
    seed: str | None = None,
) -> dict[str, Any]:
    """Open (record) a request; its view. `received_at` defaults to now and is never in the future."""
    at = now()
    received = received_at or at
    if received > at:
        raise Refused(400, "invalid_body", "received_at is in the future")
    if kind not in TYPES or law not in dates.LAWS:
        raise Refused(400, "invalid_body", "unknown request type or law")
    item = {
        "id": new_id(seed),
        "contact": identity.reference,
        "type": kind,
        "law": law,
        "channel": channel,
        "status": OPEN,
        "received_at": dates.iso(received),
        "due_at": dates.iso(dates.due_at(law, received)),
        "opened_at": dates.iso(at),
    }
    if not store.put_request(item):  # the same keyword message again: the request it opened
        found = store.get_request(item["id"])
        return view(found) if found else view(item)
    audit.record(
        actor=actor or channel, action="privacy.open", outcome=kind, route=ROUTE, subject=identity.primary
    )
    events.publish([events.privacy_request(c.EVENT_PRIVACY_OPENED, item)])
    return view(item)


def find(request_id: str) -> dict[str, Any]:
    item = store.get_request(request_id) if request_id.startswith("dsr_") else None
    if item is None:
        raise Refused(404, "not_found", "no such privacy request")
    return item


def listing(status: str | None) -> list[dict[str, Any]]:
    """Requests soonest due first, filtered by status (`overdue`: open past due)."""
    if status is not None and status not in STATUSES:
        raise Refused(400, "invalid_query", f"status is one of {', '.join(STATUSES)}")
    at = now()
    found = [view(i, at) for i in store.requests()]
    if status == OVERDUE:
        found = [r for r in found if r["overdue"]]
    elif status is not None:
        found = [r for r in found if r["status"] == status]
    return sorted(found, key=lambda r: (dates.parse(r["due_at"]), r["id"]))


def _closed(item: dict[str, Any]) -> Refused:
    return Refused(409, "request_closed", f"the request is already {item.get('status')}")


def extend(request_id: str, reason: str) -> dict[str, Any]:
    """Move the due date once by the law's extension; 409 `already_extended` the second time."""
    item = find(request_id)
    if item["status"] != OPEN:
        raise _closed(item)
    if item.get("extended_at"):
        raise Refused(409, "already_extended", "the request was extended before; the law allows it once")
    due = dates.extended(str(item["law"]), dates.parse(str(item["due_at"])))
    changes = {"due_at": dates.iso(due), "extended_at": dates.iso(now()), "extension_reason": reason}
    try:
        return view(store.update_open(request_id, changes, "attribute_not_exists(extended_at)"))
    except store.NotOpen as exc:
        raise Refused(409, "already_extended", "the request was closed or extended meanwhile") from exc


def reject(request_id: str, reason: str) -> dict[str, Any]:
    item = find(request_id)
    if item["status"] != OPEN:
        raise _closed(item)
    changes = {"status": REJECTED, "rejected_at": dates.iso(now()), "rejection_reason": reason}
    try:
        return view(store.update_open(request_id, changes))
    except store.NotOpen as exc:
        raise _closed(find(request_id)) from exc


def _identity(item: dict[str, Any]) -> Identity:
    from store import contacts

    return contacts.identity(str(item["contact"]))


def _carry_out(item: dict[str, Any], actor: str) -> dict[str, Any]:
    """Do what the request asks; the attributes it adds to the request."""
    from domain import consent, dsr, restriction

    identity = _identity(item)
    kind = item["type"]
    if kind == ACCESS:
        doc = dsr.export(identity, actor) or {
            "contact": identity.ref,
            "ref": identity.reference,
            "messages": [],
        }
        try:
            expires = store.keep_export(identity.primary, str(item["id"]), doc)
        except store.ExportTooLarge as exc:
            raise Refused(507, "export_too_large", "the export does not fit the request's store") from exc
        return {"export_expires_at": dates.iso(datetime.fromtimestamp(expires, UTC))}
    if kind == ERASURE:
        return {"receipt_id": dsr.erase(identity, actor)["receipt_id"]}
    if kind == RESTRICTION:
        restriction.set_restriction(identity, True, f"privacy request {item['id']}")
        return {}
    consent.record(identity, "marketing", consent.REVOKED, OBJECTION_SOURCE, f"privacy request {item['id']}")
    return {}


def complete(request_id: str, actor: str) -> dict[str, Any]:
    """Carry the request out and close it `completed`."""
    item = find(request_id)
    if item["status"] != OPEN:
        raise _closed(item)
    done = _carry_out(item, actor)
    try:
        closed = store.update_open(
            request_id, {"status": COMPLETED, "completed_at": dates.iso(now()), **done}
        )
    except store.NotOpen as exc:
        raise _closed(find(request_id)) from exc
    audit.record(actor=actor, action="privacy.complete", outcome=str(item["type"]), route=ROUTE)
    events.publish([events.privacy_request(c.EVENT_PRIVACY_COMPLETED, closed)])
    return view(closed)


def kept_export(request_id: str) -> dict[str, Any]:
    """The export an access request produced (kept 30 days); 404 when there is none (any more)."""
    item = find(request_id)
    doc = None
    if item["type"] == ACCESS and item.get("status") == COMPLETED:
        doc = store.kept_export(ids.pseudonym_of(str(item["contact"])), request_id)
    if doc is None:
        raise Refused(404, "not_found", "no export is kept for this request")
    return doc


def check_overdue(at: datetime | None = None) -> int:
    """Announce each open request past its due date once (`privacy.request_overdue`); how many are
    overdue now (the metric's value)."""
    overdue = [i for i in store.requests() if is_overdue(i, at)]
    for item in overdue:
        if item.get("overdue_notified") or not store.claim_overdue(str(item["id"])):
            continue
        try:
            events.publish([events.privacy_request(c.EVENT_PRIVACY_OVERDUE, item)])
        except Exception:
            store.release_overdue(str(item["id"]))  # told next time
            raise
    return len(overdue)
