"""What `POST /messages` names by waguard's ids, resolved to Meta's, and read receipts.

- `from`: one of the configured business numbers, else 400 `unknown_business_number`; without it, the
  number the contact last wrote to (while it is configured), else the default (the first configured).
- `reply_to` and `reaction.message_id`: a waguard message id (`msg_…` outbound, `in_…` inbound) of
  this conversation (the contact's identity set), resolved to Meta's wamid; an id of another contact is
  answered exactly like an unknown one (400 `unknown_message`), so ids of other conversations are not
  disclosed; an outbound message Meta has not yet accepted has no wamid (400 `message_not_sent`).
- `media_id`: an upload or media of this conversation, of a type and size Meta accepts for the kind
  (domain.media_out.check; 400 `unknown_media` otherwise). Meta's id is had at send time (the sender).
- `POST /messages/{id}/read`: marks an inbound message read at Meta (optionally with the typing
  indicator), synchronously.
"""

from __future__ import annotations

from typing import Any

from domain import graph
from domain.errors import Refused
from models.api_messages import SendMessageRequest
from models.message_kinds import MEDIA_KINDS, dump
from shared.settings import get_settings
from store import messages, outbound
from store.contacts import Identity


def business_numbers() -> list[str]:
    """The configured business phone number ids, the default first."""
    return list(get_settings().phone_number_ids)


def business_number(requested: str | None, identity: Identity | None = None) -> str:
    """The number a message goes out from: `requested` (400 unless configured), else the number the
    contact last wrote to while it is configured, else the default."""
    from store import contacts

    numbers = business_numbers()
    if requested is None:
        last = contacts.last_number(identity) if identity is not None else None
        return last if last in numbers else numbers[0]
    if requested not in numbers:
        raise Refused(400, "unknown_business_number", "from: not a business number of this deployment")
    return requested


def message_wamid(identity: Identity, msg_id: str, field: str) -> str:
    """Meta's wamid of waguard's message `msg_id` in this contact's conversation (Refused otherwise)."""
    unknown = Refused(400, "unknown_message", f"{field}: no message of this conversation has this id")
    if outbound.is_message_id(msg_id):
        out = outbound.get_by_id(msg_id)
        if out is None or out.pk not in identity.hashes:
            raise unknown
        wamid = out.wamid()
        if not wamid:
            raise Refused(400, "message_not_sent", f"{field}: the message has not been sent yet")
        return wamid
    if messages.is_inbound_id(msg_id):
        item = messages.get_inbound_by_id(msg_id)
        if item is None or str(item["pk"]) not in identity.hashes:
            raise unknown
        data = messages.open_attr(item)
        if isinstance(data, dict) and data.get("wamid"):
            return str(data["wamid"])
    raise unknown


def content_of(ref: str, identity: Identity, request: SendMessageRequest, number: str) -> dict[str, Any]:
    """The stored (encrypted) content of an accepted message: `to`, `kind`, the kind's object as given
    (waguard's ids), the business number, `reply_to`, and Meta's counterparts of waguard's ids (`graph`)."""
    from domain import media_out

    kind = request.kind
    content: dict[str, Any] = {"to": ref, "kind": kind, "from": number}
    refs: dict[str, str] = {}
    if request.text is not None:
        content["text"] = request.text.body
        if request.text.preview_url:
            content["preview_url"] = True
    else:
        content[kind] = dump(getattr(request, kind))
    if request.reply_to is not None:
        content["reply_to"] = request.reply_to
        refs["context"] = message_wamid(identity, request.reply_to, "reply_to")
    if request.reaction is not None:
        refs["reaction"] = message_wamid(identity, request.reaction.message_id, "reaction.message_id")
    if kind in MEDIA_KINDS and content[kind].get("media_id"):
        media_out.check(identity.hashes, content[kind]["media_id"], kind)
    if refs:
        content["graph"] = refs
    return content


def mark_read(msg_id: str, typing: bool = False) -> dict[str, bool]:
    """`POST /messages/{id}/read`: Meta marks the inbound message read (and shows typing when asked)."""
    from shared import constants as c
    from shared.secrets import get_secret_field

    item = messages.get_inbound_by_id(msg_id)
    data = messages.open_attr(item) if item is not None else None
    if item is None or not isinstance(data, dict) or not data.get("wamid"):
        raise Refused(404, "not_found", "no inbound message has this id")
    settings = get_settings()
    number = str(item.get("business_number") or business_numbers()[0])  # the number it came in on
    url = graph.messages_url(settings.graph_api_url, settings.graph_api_version, number)
    result = graph.send(url, get_secret_field(c.SECRET_ACCESS_TOKEN), graph.read_body(data["wamid"], typing))
    if result.http_status is not None and 200 <= result.http_status < 300:
        return {"read": True}
    if result.retryable:
        raise Refused(503, "unavailable", "the Graph API did not answer; try again")
    raise Refused(502, "graph_refused", f"the Graph API refused the read receipt ({result.error['code']})")
