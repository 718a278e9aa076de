"""Webhook change values parsed item by item: each well-formed item is kept, every other one is dropped
and counted (by list and reason, never by value), so one bad item never costs the rest of a delivery."""

from __future__ import annotations

from typing import Any

from models.webhook import ChangeValue, Contact, Error, Message, Metadata, Status, UserPreference
from shared import ids


def norm_ref(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return ids.normalize_contact(raw, references=False)
    except ids.InvalidContact:
        return None


def pick_ref(wa_id: str | None, user_id: str | None) -> str | None:
    """The reference a record is filed under: a valid wa_id, else a valid user id, else None (never the
    raw value: what the API cannot name, nobody could export or erase)."""
    return norm_ref(wa_id) or norm_ref(user_id)


MALFORMED = "malformed"
INVALID_SENDER = "invalid_sender"
_ITEM_MODELS: dict[str, Any] = {
    "contacts": Contact,
    "messages": Message,
    "statuses": Status,
    "errors": Error,
    "user_preferences": UserPreference,
}


def _senders(kind: str, item: Any) -> tuple[str | None, str | None] | None:
    """The (wa_id, user_id) an item is about, or None for an item that names nobody (errors)."""
    if kind == "messages":
        return item.from_, item.from_user_id
    if kind == "statuses":
        return item.recipient  # type: ignore[no-any-return]
    if kind in ("contacts", "user_preferences"):
        return item.wa_id, item.user_id
    return None


def _problem(kind: str, item: Any) -> str | None:
    """Why an item is dropped (MALFORMED, INVALID_SENDER), or None when it is well formed."""
    if kind == "messages" and not item.id:
        return MALFORMED
    if kind == "statuses" and not (item.id and item.status):
        return MALFORMED
    senders = _senders(kind, item)
    if senders is None or (kind == "contacts" and senders == (None, None)):
        return None
    # Filed under a valid wa_id, else a valid user id (pick_ref): reachable by the API, so erasable.
    return None if pick_ref(*senders) is not None else INVALID_SENDER


def _items(raw: dict[str, Any], kind: str, counts: Any) -> list[Any]:
    """The well-formed items of one list of a change value; each other item is dropped and counted."""
    from pydantic import ValidationError

    listed = raw.get(kind)
    if listed is None:
        return []
    if not isinstance(listed, list):
        counts.drop(kind, MALFORMED)
        return []
    kept = []
    for element in listed:
        try:
            item = _ITEM_MODELS[kind].model_validate(element)
        except (ValidationError, ValueError, TypeError, RecursionError):
            counts.drop(kind, MALFORMED)
            continue
        problem = _problem(kind, item)
        if problem is not None:
            counts.drop(kind, problem)
            continue
        kept.append(item)
    return kept


def parse_value(raw: Any, counts: Any) -> ChangeValue | None:
    """A change's value with exactly its well-formed items (None when the value is no object at all)."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        counts.drop("value", MALFORMED)
        return None
    try:
        metadata = Metadata.model_validate(raw["metadata"]) if isinstance(raw.get("metadata"), dict) else None
    except ValidationError:
        metadata = None
    product = raw.get("messaging_product")
    items: dict[str, Any] = {kind: _items(raw, kind, counts) for kind in _ITEM_MODELS}
    items["messaging_product"] = product if isinstance(product, str) else None
    items["metadata"] = metadata
    return ChangeValue.model_construct(**items)
