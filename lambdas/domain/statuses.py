"""Status webhooks' effects on outbound messages (domain/ingest.py calls these): the forward-only move
and what to tell, the recipient check, and the statuses of one message listed together in one delivery
written in one guarded write.
"""

from __future__ import annotations

from typing import Any

from domain import events
from domain.minimize import clean, error_list
from domain.webhook_items import norm_ref, pick_ref
from shared import constants as c
from store import contacts, tables


def advance(
    wamid_h: str,
    status: str,
    timestamp: int | None,
    error: dict[str, Any] | None,
    number: str | None,
    found: list[dict[str, Any]],
    moved: set[tuple[str, str]] | None = None,
) -> list[events.Event]:
    """Move the outbound message forward; what to tell the business: `message.status` when it moved, and
    again when it was already there (a retry of ours after the event may not have gone out). `moved`:
    the messages the status's own write moved already (store/outbound.py `declare_status`)."""
    from store import outbound

    at = timestamp if timestamp is not None else tables.now()
    advanced = outbound.apply_status(wamid_h, status, at, error, found=found, applied=moved)
    for m in advanced:
        if m.changed and m.campaign and m.recipient and not m.followed:  # the recipient follows its message
            from domain import campaign_steps as campaigns

            campaigns.message_moved(
                m.campaign, m.recipient, m.status, error if m.status == "failed" else None
            )
    return [
        events.message_status(
            m.pk, number, m.msg_id, m.status, error if m.status == "failed" else None, m.campaign
        )
        for m in advanced
        if (m.changed or m.already) and m.msg_id
    ]


def recipient_matches(found: list[dict[str, Any]], wa: str | None, uid: str | None, ref: str) -> bool:
    """Whether the status's recipient is the one its outbound message went to (any pseudonym of the
    recipient's identity set); True when no outbound message with that wamid is held here."""
    holders = {str(item[c.PK]) for item in found}
    if not holders:
        return True
    named = {contacts.chash(r) for r in (norm_ref(wa), norm_ref(uid)) if r}
    if holders & named:
        return True
    return bool(holders & set(contacts.identity_of(ref, contacts.chash(ref)).hashes))


def prewrite(statuses: list[Any], found_of: dict[str, list[dict[str, Any]]], known: dict[str, bool]) -> dict:
    """Meta lists several statuses of one message in one delivery (sent, delivered, read): the plain ones
    (no `failed`, one outbound message, its recipient, a contact whose key is held: `_key_at_hand`) are
    stored in one guarded write with their markers and the message's move to the highest of them. What
    was written: {(wamid_h, status): whether its write moved the message}; `ingest._status` then does the
    rest as for a status it wrote itself. Empty when nothing qualified or the write was refused (each
    status then goes its own way)."""
    from store import messages, outbound

    groups: dict[str, list[Any]] = {}
    for st in statuses:
        if st.id and st.status in ("sent", "delivered", "read", "played"):
            groups.setdefault(str(st.id), []).append(st)
    out: dict[tuple[str, str], bool] = {}
    for wamid, group in groups.items():
        wa, uid = group[0].recipient
        ref = pick_ref(wa, uid)
        said = [str(st.status) for st in group]
        alike = all(st.recipient == (wa, uid) and not error_list(st.errors) for st in group)
        if len(group) < 2 or len(set(said)) != len(said) or ref is None or not alike:
            continue
        pk, wamid_h = contacts.chash(ref), contacts.wamid_hash(wamid)
        if wamid_h not in found_of:
            found_of[wamid_h] = outbound.with_wamid(wamid_h)
        found = found_of[wamid_h]
        if len(found) != 1 or not recipient_matches(found, wa, uid, ref) or not _key_at_hand(pk):
            continue
        entries = [
            (
                str(st.status),
                st.timestamp,
                clean(
                    {
                        "wamid": wamid,
                        "recipient": wa,
                        "recipient_user_id": uid,
                        "errors": error_list(st.errors),
                    }
                ),
            )
            for st in group
        ]
        moved = messages.put_statuses(pk, wamid_h, entries, found[0], known)
        out.update({(wamid_h, s): m for s, m in moved.items()})
    return out


def _key_at_hand(pk: str) -> bool:
    """Whether this container holds the contact's data key, after reading the stored one when it does not
    (one GetItem: a processor container seldom holds the key of a campaign's recipient). A contact with
    no key stored (erased, or never) is False: its statuses go one by one, whose replay check reads the
    delivery marker before anything could make a key."""
    from store.crypto import DATA_KEY_SK, cipher

    if cipher().holds(pk):
        return True
    cipher().adopt(pk, tables.get_live(c.TABLE_KEYS, pk, DATA_KEY_SK))
    return cipher().holds(pk)


def warm_keys(bodies: list[str]) -> int:
    """Before an SQS batch of webhook deliveries is processed: the data keys of the contacts its statuses
    name that this container does not hold, read together (one BatchGetItem per 100) and kept as
    `_key_at_hand` would read them one by one (a processor container seldom holds a campaign recipient's
    key). A contact with no key stored is left as it is (its statuses go their own way). Best effort, on a
    plain look at the bodies (the delivery is validated when it is processed); the keys taken."""
    import json

    from store.crypto import DATA_KEY_SK, cipher

    wanted: set[str] = set()
    for body in bodies:
        try:
            entries = json.loads(body).get("entry") or []
            values = [ch.get("value") or {} for e in entries for ch in (e.get("changes") or [])]
            found = [st for v in values for st in (v.get("statuses") or []) if st.get("status") != "failed"]
        except (ValueError, AttributeError, TypeError):
            continue
        for st in found:
            ref = (
                pick_ref(st.get("recipient_id"), st.get("recipient_user_id"))
                if isinstance(st, dict)
                else None
            )
            if ref is not None:
                wanted.add(contacts.chash(ref))
    todo = sorted(pk for pk in wanted if not cipher().holds(pk))
    got = tables.batch_get({c.TABLE_KEYS: [(pk, DATA_KEY_SK) for pk in todo]}) if todo else {}
    for pk in todo:
        if (c.TABLE_KEYS, pk, DATA_KEY_SK) in got:
            cipher().adopt(pk, got[(c.TABLE_KEYS, pk, DATA_KEY_SK)])
    return len(got)
