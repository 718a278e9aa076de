"""Data-subject rights: export everything held on a contact, and erase it.

Both work on the contact's identity set (its pseudonym and every linked one) and read by key only
(partition queries), never by Scan. Export decrypts; an item whose data key is shredded, or that came
back from a backup after erasure, does not decrypt and is treated as absent. Erasure shreds the data
keys first, then deletes every item by key, then writes the pseudonymous suppression record and a
receipt. Both are recorded in the audit log with the caller, the item count and no personal data.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain import events, template_fit
from shared import constants as c
from store import audit, contacts, media, messages, tables
from store import campaigns as campaign_store
from store import consent as ledger
from store.contacts import Identity

ROUTE_EXPORT = "GET /contacts/{contact}/export"
ROUTE_ERASE = "DELETE /contacts/{contact}"
# How an erasure reaches each table is declared with the table (constants.TABLE_SPECS): these are swept
# by partition. The keys table is not swept: `shred` deleted the contact's key, and a key created after it
# (the person wrote again while the erasure ran) protects data that outlives the erasure; deleting it
# would lose that.
_ERASED_TABLES = c.ERASED_BY_PARTITION


def plain(value: Any) -> Any:
    """DynamoDB values as JSON values (Decimal -> int/float, sets -> sorted lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    return value


def deletes_at(item: dict[str, Any]) -> str:
    """The ISO date on which the item's TTL deletes it."""
    return datetime.fromtimestamp(int(item[c.TTL_ATTRIBUTE]), UTC).date().isoformat()


# ---- export ------------------------------------------------------------------------------------
def _selection_text(data: dict[str, Any]) -> str | None:
    selection = data.get("selection")
    if isinstance(selection, dict):
        return selection.get("title") or selection.get("response_json") or selection.get("response")
    return None


def _answered(data: dict[str, Any], ids_by_wamid_h: dict[str, str]) -> dict[str, Any]:
    """`reply_to` and `reaction.message_id` as waguard's ids of the messages answered, when held."""
    out: dict[str, Any] = {}
    context = data.get("context_id")
    if context and (found := ids_by_wamid_h.get(contacts.wamid_hash(str(context)))):
        out["reply_to"] = found
    reaction = data.get("reaction")
    if isinstance(reaction, dict):
        target = reaction.get("message_id")
        found = ids_by_wamid_h.get(contacts.wamid_hash(str(target))) if target else None
        out["reaction"] = {"message_id": found, "emoji": reaction.get("emoji", "")}
    return out


def _inbound(
    item: dict[str, Any], data: dict[str, Any], ids_by_wamid_h: dict[str, str] | None = None
) -> dict[str, Any]:
    content = {k: v for k, v in data.items() if k not in ("wamid", "from", "from_user_id")}
    text = data.get("text") or data.get("caption") or _selection_text(data)
    out: dict[str, Any] = {
        "direction": "in",
        "id": messages.msg_id_of(item) or data.get("wamid"),
        "wamid": data.get("wamid"),
        "type": item.get("type"),
        "business_number": item.get("business_number"),
        "text": text,
        **_answered(data, ids_by_wamid_h or {}),
        "content": content,
        "timestamp": item.get("timestamp"),
        "received_at": item.get("received_at"),
        "deletes_at": deletes_at(item),
    }
    return {k: v for k, v in out.items() if v is not None}


def _outbound(item: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    wamid = messages.open_attr(item, "wamid") if item.get("wamid") else None
    template = data.get("template") if isinstance(data.get("template"), dict) else None
    kind = str(item.get("kind") or "")
    text = data.get("text")
    if isinstance(text, dict):
        text = text.get("body")
    out: dict[str, Any] = {
        "direction": "out",
        "id": item.get("msg_id"),
        "type": item.get("kind"),
        "purpose": item.get("purpose"),
        "text": text if isinstance(text, str) else data.get("template_text"),
        "template_name": item.get("template_name") or (template or {}).get("name"),
        "template": template_fit.view(template),
        "template_components": (template or {}).get("components"),
        "content": _outbound_content(kind, data),
        "reply_to": data.get("reply_to"),
        "business_number": data.get("from") or item.get("business_number"),
        "status": item.get("status"),
        "error": item.get("error"),
        "wamid": wamid,
        "timestamp": item.get("created_at"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "deletes_at": deletes_at(item),
    }
    return {k: v for k, v in out.items() if v is not None}


def _outbound_content(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The content of a rich outbound message as accepted (waguard's ids, never Meta's)."""
    if kind in ("", "text", "template") or not isinstance(data.get(kind), dict):
        return None
    return {kind: data[kind]}


def _status(item: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": data.get("wamid"),
        "status": item.get("status"),
        "timestamp": item.get("timestamp"),
        "error": item.get("error"),
        "received_at": item.get("received_at"),
        "deletes_at": deletes_at(item),
    }
    return {k: v for k, v in out.items() if v is not None}


def _profile(identity: Identity) -> dict[str, Any] | None:
    merged: dict[str, Any] = {}
    firsts, ttls = [], []
    windows: dict[str, int] = {}
    for pk in identity.hashes:
        item = contacts.profile(pk)
        if item is None:
            continue
        for key, value in item["_data"].items():
            merged.setdefault(key, value)
        if item.get("first_seen_at") is not None:
            firsts.append(int(item["first_seen_at"]))
        for number, at in contacts.inbound_times(item).items():
            windows[number] = max(at, windows.get(number, at))
        ttls.append(item)
    if not ttls:
        return None
    if firsts:
        merged["first_seen_at"] = min(firsts)
    if windows:  # the service window is per business number: the newest inbound time on each
        merged["last_inbound_at"] = max(windows.values())
        merged["last_inbound_by_number"] = dict(sorted(windows.items()))
    merged["deletes_at"] = max(deletes_at(i) for i in ttls)
    return merged


def _campaigns(held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The campaigns the contact is a recipient of (through the pointers in their partition): the
    campaign, the bucket, why skipped, the message (by waguard's id)."""
    out = []
    for ptr in held:
        if not str(ptr[c.SK]).startswith(campaign_store.POINTER):
            continue
        csk = str(ptr.get("camp_sk", ""))
        line = (
            tables.get_live(c.TABLE_MESSAGES, str(ptr.get("camp_pk")), csk) if csk.startswith("R#") else None
        )
        if line is None:
            continue
        row = {
            "campaign": str(ptr["camp_pk"])[len(campaign_store.PK_PREFIX) :],
            "status": line.get("status"),
            "skipped_by": line.get("skipped_by"),
            "message_id": line.get("message_id"),
            "deletes_at": deletes_at(line),
        }
        out.append({k: v for k, v in row.items() if v is not None})
    return sorted(out, key=lambda r: str(r["campaign"]))


def collect(identity: Identity) -> dict[str, Any] | None:
    """The export document, or None when nothing readable is held on the contact."""
    contacts.fresh_keys(identity.hashes)
    statuses: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (item, export entry)
    held = [item for pk in identity.hashes for item in messages.held(pk)]
    ids_by_wamid_h = {  # Meta's wamid (pseudonym) -> waguard's id, for the messages answered
        str(item["wamid_h"]): found
        for item in held
        if item.get("wamid_h") and (found := messages.msg_id_of(item))
    }
    conversation: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (item, export entry)
    for item in held:
        sk = str(item[c.SK])
        if not sk.startswith((messages.IN_PREFIX, messages.OUT_PREFIX, messages.STATUS_PREFIX)):
            continue
        data = messages.open_attr(item)
        if not isinstance(data, dict):
            continue  # shredded key or restored after erasure: gone
        if sk.startswith((messages.IN_PREFIX, messages.OUT_PREFIX)):
            entry = (
                _inbound(item, data, ids_by_wamid_h)
                if sk.startswith(messages.IN_PREFIX)
                else _outbound(item, data)
            )
            conversation.append((item, entry))
        else:
            statuses.append((item, _status(item, data)))
    consent = [
        {
            k: v
            for k, v in {
                "purpose": e["purpose"],
                "status": e["status"],
                "source": e["source"],
                "recorded_at": e["recorded_at"],
                "meta_timestamp": e.get("meta_timestamp"),
                "effective": e.get("effective"),
                "ignored": e.get("ignored"),
                "evidence": e.get("evidence"),
                "deletes_at": deletes_at(e),
            }.items()
            if v is not None
        }
        for e in ledger.history(identity.hashes)
    ]
    profile = _profile(identity)
    held_media = [
        {
            "id": r.media_id,
            "direction": r.direction,
            "mime_type": r.mime_type,
            "size": r.size,
            "deletes_at": deletes_at({c.TTL_ATTRIBUTE: r.expires_at}),
        }
        for pk in identity.hashes
        for r in media.of_contact(pk)
    ]
    from domain import restriction
    from store import privacy

    restricted = restriction.state(identity)
    notices = sorted(
        (
            {"version": n.get("version", ""), "sent_at": n["sent_at"], "deletes_at": deletes_at(n)}
            for pk in identity.hashes
            for n in privacy.notices(pk)
        ),
        key=lambda n: str(n["sent_at"]),
    )
    in_campaigns = _campaigns(held)
    if not (
        conversation or statuses or consent or profile or held_media or restricted or notices or in_campaigns
    ):
        return None
    conversation.sort(  # Meta's second, then the order stored (one second holds several), then direction
        key=lambda pair: (
            int(pair[1].get("timestamp") or 0),
            messages.stored_order(pair[0]),
            pair[1]["direction"],
        )
    )
    inbound_out = [entry for _, entry in conversation]
    statuses.sort(key=lambda pair: (int(pair[1].get("timestamp") or 0), messages.stored_order(pair[0])))
    return plain(
        {
            "contact": identity.ref,
            "ref": identity.reference,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "profile": profile,
            "messages": inbound_out,
            "statuses": [entry for _, entry in statuses],
            "consent": consent,
            "media": sorted(held_media, key=lambda m: str(m["id"])),
            "notices": notices,
            "restriction": restricted or {"restricted": False},
            "campaigns": in_campaigns,
        }
    )


def export(identity: Identity, actor: str) -> dict[str, Any] | None:
    """Everything held on the contact (None: nothing), recorded in the audit log."""
    doc = collect(identity)
    items = 0 if doc is None else len(doc["messages"]) + len(doc["statuses"]) + len(doc["consent"])
    audit.record(
        actor=actor,
        action="export",
        outcome="exported" if doc is not None else "not_found",
        route=ROUTE_EXPORT,
        items=items,
        subject=identity.primary,
    )
    return doc


# ---- erasure -----------------------------------------------------------------------------------
def _erase_media(items: list[dict[str, Any]]) -> int:
    """Delete the media objects of a contacts partition's media records and their pointers (the records
    themselves go with the partition). The shredded key already made the objects unreadable."""
    objects = [str(i["s3_key"]) for i in items if str(i[c.SK]).startswith(media.RECORD_PREFIX)]
    for key in objects:
        media.delete_object(key)
    pointers = media.pointer_keys(items)
    return len(objects) + (tables.delete_keys(c.TABLE_CONTACTS, pointers) if pointers else 0)


def erase(identity: Identity, actor: str) -> dict[str, Any]:
    """Crypto-shred, delete every item about the contact, suppress it and leave a receipt."""
    from store.crypto import cipher

    deleted = 0
    tables_hit: set[str] = set()
    for pk in identity.hashes:  # first: nothing encrypted for this contact is readable from here on
        if cipher().shred(pk):
            deleted += 1
            tables_hit.add(c.TABLE_KEYS)
    idem_keys: list[dict[str, Any]] = []
    for pk in identity.hashes:
        for logical in _ERASED_TABLES:
            items = contacts.partition_keys(logical, pk)
            if logical == c.TABLE_CONTACTS:
                items = [i for i in items if i[c.SK] != contacts.SUPPRESSED]
                deleted += _erase_media(items)
            if logical == c.TABLE_MESSAGES:
                # Campaign items that name the contact (entries, recipient lines), found by their pointers
                # in the contact's partition: blanked or made anonymous, the counts kept right.
                deleted += campaign_store.erase_lines(
                    [i for i in items if str(i[c.SK]).startswith(campaign_store.POINTER)]
                )
                idem_keys += [
                    {c.PK: i["idem_pk"], c.SK: i["idem_sk"]}
                    for i in items
                    if i.get("idem_pk") and i.get("idem_sk")
                ]
            if items:
                deleted += tables.delete_keys(logical, items)
                tables_hit.add(logical)
    if idem_keys:
        deleted += tables.delete_keys(c.TABLE_IDEMPOTENCY, idem_keys)
        tables_hit.add(c.TABLE_IDEMPOTENCY)
    receipt_id = "rcpt_" + secrets.token_hex(12)
    erased_at = datetime.now(UTC).isoformat(timespec="microseconds")
    for pk in identity.hashes:
        contacts.suppress(pk, erased_at, receipt_id)
    contacts.write_receipt(receipt_id, identity.primary, erased_at, deleted, sorted(tables_hit))
    audit.record(
        actor=actor,
        action="erase",
        outcome="erased",
        route=ROUTE_ERASE,
        items=deleted,
        subject=identity.primary,
        receipt_id=receipt_id,
    )
    # Every consumer deletes its copies (GDPR Art. 17(2)): one event per reference of the identity set. A
    # refused event fails the request; the caller's retry erases again (nothing left) and publishes it.
    events.publish([events.contact_erased(pk, receipt_id) for pk in identity.hashes])
    return {"erased": True, "items_deleted": deleted, "receipt_id": receipt_id}
