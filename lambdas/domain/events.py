"""The business events (contract: Conversations): what the business's own applications learn.

Every event names the contact by its reference (`ct_…`), never by phone number, user id, profile name or
wamid; message ids are waguard's (inbound ids derive from the wamid's pseudonym, so Meta's retries keep
them; outbound ids are the ones `POST /messages` answered), media ids are waguard's too.

Delivery is at least once: an inbound message's event is published before the message is stored (a
failure retries both), so a retry can publish it again; consumers deduplicate on `message.id`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from shared import constants as c
from shared import ids
from store import events as bus

Event = tuple[str, dict[str, Any]]


def iso(epoch: float | int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


_known = threading.local()


@contextmanager
def knowing(restricted: dict[str, bool]) -> Iterator[None]:
    """While inside, `publish` takes the restriction state of these pseudonyms as given (what a write that
    just happened learned, store.privacy.declare_unrestricted) instead of reading it."""
    before = getattr(_known, "map", None)
    _known.map = {**(before or {}), **restricted}
    try:
        yield
    finally:
        _known.map = before


def publish(events: list[Event]) -> None:
    """Put the events on the bus, but none about a restricted contact (GDPR Art. 18) except
    `EVENTS_WHILE_RESTRICTED`: consumers stop using their copies while processing is restricted."""
    told = withhold_restricted(events)
    if told:
        bus.publish(told)


def withhold_restricted(events: list[Event]) -> list[Event]:
    """`events` without those about a restricted contact (one read per contact named, unless `knowing`)."""
    from store import privacy

    known: dict[str, bool] = getattr(_known, "map", None) or {}
    restricted: dict[str, bool] = {}
    out = []
    for detail_type, detail in events:
        ref = detail.get("contact")
        if ref and detail_type not in c.EVENTS_WHILE_RESTRICTED:
            if ref not in restricted:
                pk = ids.pseudonym_of(str(ref))
                restricted[ref] = known[pk] if pk in known else privacy.is_restricted(pk)
            if restricted[ref]:
                continue
        out.append((detail_type, detail))
    return out


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, "", {}, [])}


def message_received(
    pk: str,
    business_number: str | None,
    message: dict[str, Any],
    window_closes_at: int | None,
) -> Event:
    """`message`: `{"id", "type", "at", "text"?, "reply_to"?, "interactive"?, "reaction"?, "media"?}`."""
    detail = {
        "contact": ids.reference_of(pk),
        "business_number": business_number,
        "message": _drop_none(message),
        "window_closes_at": iso(window_closes_at) if window_closes_at is not None else None,
    }
    return c.EVENT_MESSAGE_RECEIVED, detail


def received(
    pk: str,
    wamid_h: str,
    msg_type: str,
    timestamp: int,
    data: dict[str, Any],
    business_number: str | None,
    window_closes_at: int | None,
) -> Event:
    """`message.received` from a stored-to-be inbound message's minimized content (`minimize.content`)."""
    from store import contacts, messages

    selection = data.get("selection") or {}
    reaction = data.get("reaction") or {}
    media = data.get("media") or {}
    message: dict[str, Any] = {
        "id": messages.inbound_id(wamid_h),
        "type": msg_type,
        "at": iso(timestamp),
        "text": data.get("text") or data.get("caption") or selection.get("title"),
    }
    if data.get("context_id"):
        message["reply_to"] = messages.id_for_wamid(str(data["context_id"]))
    if selection.get("id") or selection.get("title"):
        message["interactive"] = _drop_none({"id": selection.get("id"), "title": selection.get("title")})
    if reaction.get("message_id"):
        message["reaction"] = {
            "message_id": messages.id_for_wamid(str(reaction["message_id"])),
            "emoji": reaction.get("emoji", ""),
        }
    if media.get("id"):
        message["media"] = _drop_none(
            {
                "id": contacts.media_ref(str(media["id"])),
                "mime_type": media.get("mime_type"),
                "caption": data.get("caption"),
                "filename": data.get("filename"),
            }
        )
    return message_received(pk, business_number, message, window_closes_at)


def message_status(
    pk: str,
    business_number: str | None,
    msg_id: str,
    status: str,
    error: dict[str, Any] | None = None,
    campaign: str | None = None,
) -> Event:
    message: dict[str, Any] = {"id": msg_id, "status": status}
    if error:
        message["error"] = {"code": error.get("code"), "title": error.get("title")}
    detail: dict[str, Any] = {
        "contact": ids.reference_of(pk),
        "business_number": business_number,
        "message": message,
    }
    if campaign:
        detail["campaign"] = campaign
    return c.EVENT_MESSAGE_STATUS, detail


def campaign(detail_type: str, cid: str, name: str, counts: dict[str, Any]) -> Event:
    """`campaign.started` / `campaign.completed` (no contact: the campaign's name and counts)."""
    return detail_type, {"campaign": cid, "name": name, "counts": counts}


def consent_changed(pk: str, purpose: str, status: str, source: str) -> Event:
    return c.EVENT_CONSENT_CHANGED, {
        "contact": ids.reference_of(pk),
        "purpose": purpose,
        "status": status,
        "source": source,
    }


def contact_erased(pk: str, receipt_id: str) -> Event:
    return c.EVENT_CONTACT_ERASED, {"contact": ids.reference_of(pk), "receipt_id": receipt_id}


def restriction_changed(pk: str, restricted: bool) -> Event:
    kind = c.EVENT_CONTACT_RESTRICTED if restricted else c.EVENT_CONTACT_UNRESTRICTED
    return kind, {"contact": ids.reference_of(pk)}


def privacy_request(detail_type: str, item: dict[str, Any]) -> Event:
    """`privacy.request_*`: the request, its type, law and due date; never the contact."""
    return detail_type, {
        "request": item["id"],
        "type": item["type"],
        "law": item["law"],
        "due_at": item["due_at"],
    }
