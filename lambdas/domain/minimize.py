"""Data minimization of inbound messages (contract, "Webhook"): what is kept of what a contact sent.

An inbound message keeps its ids, type, timestamps, the text the user typed or chose (text body, captions,
button/list/quick-reply titles and ids, flow response JSON, reaction emoji, order product ids and
quantities and the order's text), media id and mime type. The profile name, contact cards and locations
are kept only when the settings' `keep_*` say so.
"""

from __future__ import annotations

from typing import Any

from models.webhook import Error, Message
from shared.settings import Settings

# Types whose text may be a keyword (a text body or a quick-reply button's text).
KEYWORD_TYPES = frozenset({"text", "button"})
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


def error_list(errors: list[Error]) -> list[dict[str, Any]]:
    return [{"code": e.code, "title": e.title} for e in errors if e.code is not None or e.title]


def clean(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, "", [], {})}


def _media_content(msg: Message) -> dict[str, Any]:
    """Media id and mime type, the caption and a document's filename (at most one media object)."""
    out: dict[str, Any] = {}
    for media_type in MEDIA_TYPES:
        media = getattr(msg, media_type)
        if media is not None:
            out["media"] = clean({"id": media.id, "mime_type": media.mime_type})
            if media.caption:
                out["caption"] = media.caption
            if media.filename:
                out["filename"] = media.filename
    return out


def content(msg: Message, settings: Settings) -> dict[str, Any]:
    """What is kept of a message's content (see the module doc)."""
    out: dict[str, Any] = {}
    kind = msg.type or ""
    if msg.text is not None:
        out["text"] = msg.text.body
    out.update(_media_content(msg))
    if msg.interactive is not None:
        inter = msg.interactive
        reply = inter.button_reply or inter.list_reply
        if reply is not None:
            out["selection"] = clean({"kind": inter.type, "id": reply.id, "title": reply.title})
        elif inter.nfm_reply is not None:
            out["selection"] = clean(
                {
                    "kind": inter.type,
                    "response_json": inter.nfm_reply.response_json,
                    "name": inter.nfm_reply.name,
                }
            )
        elif inter.type:
            extra = getattr(inter, "model_extra", None) or {}
            sub = extra.get(inter.type)
            answer = sub.get("response") if isinstance(sub, dict) else None
            out["selection"] = clean({"kind": inter.type, "response": answer})
    if msg.button is not None:
        out["selection"] = clean({"kind": "quick_reply", "id": msg.button.payload, "title": msg.button.text})
    if msg.reaction is not None:
        out["reaction"] = clean({"message_id": msg.reaction.message_id, "emoji": msg.reaction.emoji or ""})
    if msg.order is not None:
        out["order"] = clean(
            {
                "catalog_id": msg.order.catalog_id,
                "text": msg.order.text,
                "items": [
                    {"product_retailer_id": p.product_retailer_id, "quantity": p.quantity}
                    for p in msg.order.product_items
                ],
            }
        )
    if msg.location is not None and settings.keep_locations:
        loc = msg.location
        out["location"] = clean(
            {
                "latitude": loc.latitude,
                "longitude": loc.longitude,
                "name": loc.name,
                "address": loc.address,
                "url": loc.url,
            }
        )
    if msg.contacts and settings.keep_contact_cards:
        out["contact_cards"] = msg.contacts
    if msg.system is not None:
        out["system_type"] = msg.system.type
    if msg.revoke is not None:
        out["original_id"] = msg.revoke.original_message_id
    if msg.edit is not None:
        out["original_id"] = msg.edit.original_message_id
        if msg.edit.message is not None:
            out["edited"] = {"type": msg.edit.message.type, **content(msg.edit.message, settings)}
    if msg.context is not None and msg.context.id:
        out["context_id"] = msg.context.id
    if msg.errors:
        out["errors"] = error_list(msg.errors)
    if kind == "unsupported":
        extra = getattr(msg, "model_extra", None) or {}
        sub = extra.get("unsupported")
        if isinstance(sub, dict) and sub.get("type"):
            out["unsupported_type"] = str(sub["type"])
    return clean(out)


def said(msg: Message) -> str | None:
    """The text a keyword may be: a text body or a quick-reply button's text."""
    if msg.type not in KEYWORD_TYPES:
        return None
    if msg.text is not None:
        return msg.text.body
    if msg.button is not None:
        return msg.button.text
    return None
