"""The conversation with one contact, for agent desks and bots (contract: Conversations).

`GET /contacts/{contact}/messages[?limit=N&before=CURSOR]`: the most recent `limit` messages before the
cursor, oldest first, both directions, decrypted; the contact is named by its reference and messages by
waguard's ids (never a phone number, user id, profile name or wamid). The cursor is opaque: the position
`(at, order, id)` of the oldest message of the page, base64url-encoded: Meta's timestamps have whole
seconds, so messages of one second are ordered as they were stored (`stored_us`), then by id.

Reads the contact's partitions (every pseudonym of the identity set) by key: DynamoDB returns them in
key order, not time order, so a page is cut after sorting. A contact's partition is bounded by the
messages retention (90 days by default); docs/decisions.md says when an index would pay off.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from domain import template_fit
from domain.events import iso
from shared import constants as c
from shared.settings import get_settings
from store import contacts, messages
from store.contacts import Identity

DEFAULT_LIMIT = 50
ORDER = "order"  # an entry's tie-break within its second (not shown)
MAX_LIMIT = 200


class InvalidPage(ValueError):
    """A `limit` or `before` the route does not accept."""


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidPage(f"limit is a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


Position = tuple[int, int, str]  # (Meta's second, the order stored within it, waguard's id)


def position(entry: dict[str, Any]) -> Position:
    return entry["at"], entry[ORDER], str(entry["id"])


def encode_cursor(at: Position) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(at)).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Position:
    try:
        at, order, msg_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if isinstance(at, int) and isinstance(order, int) and isinstance(msg_id, str) and len(raw) <= 200:
            return at, order, msg_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidPage("before is a cursor from a previous page's `next`")


def _selection_title(data: dict[str, Any]) -> str | None:
    selection = data.get("selection")
    return selection.get("title") if isinstance(selection, dict) else None


def _inbound(item: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    at = int(item.get("timestamp") or item.get("received_at") or 0)
    entry: dict[str, Any] = {
        "id": item.get("msg_id") or messages.inbound_id(str(item.get("wamid_h", ""))),
        "direction": "in",
        "type": item.get("type"),
        "at": at,
        "business_number": item.get("business_number"),
        "text": data.get("text") or data.get("caption") or _selection_title(data),
    }
    media = data.get("media")
    if isinstance(media, dict) and media.get("id"):
        entry["media"] = {
            k: v
            for k, v in {
                "id": contacts.media_ref(str(media["id"])),
                "mime_type": media.get("mime_type"),
                "caption": data.get("caption"),
                "filename": data.get("filename"),
            }.items()
            if v
        }
    if data.get("context_id"):
        entry["reply_to"] = messages.id_for_wamid(str(data["context_id"]))
    return entry


def _outbound_media(pk: str, obj: Any) -> dict[str, Any] | None:
    """An outbound media message's `media`: the id the contact holds it under (its own media, or its copy
    of the business's upload), or the link it was sent by; caption and filename."""
    from store import media

    if not isinstance(obj, dict):
        return None
    found: dict[str, Any] = {}
    if obj.get("media_id"):
        media_id = str(obj["media_id"])
        copy = contacts.media_copy_ref(media_id, pk)
        found["id"] = copy if media.exists(pk, copy) else media_id  # the copy once the sender made it
    elif obj.get("link"):
        found["link"] = obj["link"]
    found.update({k: obj[k] for k in ("caption", "filename") if obj.get(k)})
    return found or None


def _outbound(item: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    text = data.get("text")
    if isinstance(text, dict):
        text = text.get("body")
    template = data.get("template") if isinstance(data.get("template"), dict) else None
    kind = item.get("kind")
    entry = {
        "id": item.get("msg_id"),
        "direction": "out",
        "type": kind,
        "at": int(item.get("created_at") or 0),
        "business_number": item.get("business_number") or get_settings().phone_number_id,
        "text": text if isinstance(text, str) else data.get("template_text"),
        "template": template_fit.view(template),
        "status": item.get("status"),
        "reply_to": data.get("reply_to"),
    }
    if kind in c.MEDIA_MAX_BYTES:
        entry["media"] = _outbound_media(str(item[c.PK]), data.get(str(kind)))
    return entry


def _entries(identity: Identity) -> list[dict[str, Any]]:
    contacts.fresh_keys(identity.hashes)
    out: list[dict[str, Any]] = []
    for pk in identity.hashes:
        for item in messages.held(pk):
            sk = str(item[c.SK])
            if not sk.startswith((messages.IN_PREFIX, messages.OUT_PREFIX)):
                continue
            data = messages.open_attr(item)
            if not isinstance(data, dict):
                continue  # the key is shredded, or the item came back from a backup: gone
            entry = _inbound(item, data) if sk.startswith(messages.IN_PREFIX) else _outbound(item, data)
            out.append({**entry, ORDER: messages.stored_order(item)})
    out.sort(key=position)
    return out


def page(identity: Identity, limit: int = DEFAULT_LIMIT, before: str | None = None) -> dict[str, Any] | None:
    """The page, or None when nothing is held on the contact."""
    entries = _entries(identity)
    if not entries:
        return None
    if before is not None:
        cut = decode_cursor(before)
        entries = [e for e in entries if position(e) < cut]
    chosen = entries[-limit:]
    body: dict[str, Any] = {
        "contact": identity.reference,
        "messages": [
            {k: (iso(v) if k == "at" else v) for k, v in e.items() if k != ORDER and v not in (None, "", {})}
            for e in chosen
        ],
    }
    if len(entries) > len(chosen):
        body["next"] = encode_cursor(position(chosen[0]))
    return body
