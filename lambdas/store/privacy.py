"""Data-subject requests (table `privacy`), restriction records and the privacy notices given.

Requests: one partition `DSR`, one item per request (`sk` its id): requests are few (a handful a day at
most), every read of the officer's list is one Query by key, never a Scan. An item names the contact by
reference (`ct_…`) only and holds no personal data, so it is kept through the erasure it carried out for
its own retention class (`privacyRequests`). Its state changes only while it is `open` (a condition).

Restriction (GDPR Art. 18) and notices live in the contact's partition of the contacts table, so an
erasure removes them with everything else: `RESTRICTION` (clear `restricted`, `recorded_at`, the reason
sealed under the contact's key) and `NOTICE#<key>` (`version`, `sent_at`: not personal).

The export an access request produced is kept in the contact's partition too (`DSREXPORT#<id>`, sealed,
zlib-compressed, 30 days): an erasure reaches it like any other copy.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from shared import constants as c
from store import contacts, sealed, tables

PARTITION = "DSR"
OPEN = "open"
RESTRICTION = contacts.RESTRICTION
NOTICE_PREFIX = "NOTICE#"
EXPORT_PREFIX = "DSREXPORT#"
EXPORT_KEEP_SECONDS = 30 * 86400
MAX_EXPORT_BYTES = 350 * 1024  # DynamoDB's item limit is 400 KB; the rest is keys and attributes


class NotOpen(Exception):
    """The request is no longer open (completed or rejected): its state does not change."""


class ExportTooLarge(Exception):
    """The compressed export does not fit one item."""


def put_request(item: dict[str, Any]) -> bool:
    """Store a new request; False when one with its id exists already (a retried WhatsApp keyword)."""
    full = tables.stamp({c.PK: PARTITION, c.SK: item["id"], **item}, c.CLASS_PRIVACY_REQUESTS)
    try:
        tables.table(c.TABLE_PRIVACY).put_item(Item=full, ConditionExpression="attribute_not_exists(pk)")
    except tables.client().exceptions.ConditionalCheckFailedException:
        return False
    return True


def get_request(request_id: str) -> dict[str, Any] | None:
    return tables.get_live(c.TABLE_PRIVACY, PARTITION, request_id)


def requests() -> list[dict[str, Any]]:
    """Every live request."""
    from boto3.dynamodb.conditions import Key

    return list(tables.query_live(c.TABLE_PRIVACY, Key(c.PK).eq(PARTITION)))


def update_open(request_id: str, changes: dict[str, Any], also: str = "") -> dict[str, Any]:
    """Set `changes` on a request that is still open (and meets `also`, a condition on `#s`/`:open`
    names); its new state. NotOpen when it is not (or no longer) open."""
    names = {"#s": "status", **{f"#a{i}": k for i, k in enumerate(changes)}}
    values = {":open": OPEN, **{f":v{i}": v for i, v in enumerate(changes.values())}}
    condition = "attribute_exists(pk) AND #s = :open" + (f" AND ({also})" if also else "")
    try:
        answer = tables.table(c.TABLE_PRIVACY).update_item(
            Key={c.PK: PARTITION, c.SK: request_id},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes))),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except tables.client().exceptions.ConditionalCheckFailedException as exc:
        raise NotOpen(request_id) from exc
    return dict(answer["Attributes"])


def claim_overdue(request_id: str) -> bool:
    """Mark an open request as announced overdue; False when it was announced before (or closed)."""
    try:
        update_open(request_id, {"overdue_notified": True}, "attribute_not_exists(overdue_notified)")
    except NotOpen:
        return False
    return True


def release_overdue(request_id: str) -> None:
    """Undo `claim_overdue` (the event could not be published: the next check tries again)."""
    tables.table(c.TABLE_PRIVACY).update_item(
        Key={c.PK: PARTITION, c.SK: request_id}, UpdateExpression="REMOVE overdue_notified"
    )


# ---- the access request's export ---------------------------------------------------------------
def keep_export(pk: str, request_id: str, doc: dict[str, Any]) -> int:
    """Seal the export into the contact's partition for 30 days; its TTL (epoch s)."""
    packed = base64.b64encode(zlib.compress(json.dumps(doc, ensure_ascii=False).encode(), 9)).decode()
    if len(packed) > MAX_EXPORT_BYTES:
        raise ExportTooLarge(request_id)
    sk = EXPORT_PREFIX + request_id
    expires = min(tables.now() + EXPORT_KEEP_SECONDS, tables.expires_at(c.CLASS_CONTACTS))

    def build(write: Any) -> None:
        item = {
            c.PK: pk,
            c.SK: sk,
            c.TTL_ATTRIBUTE: expires,
            contacts.DATA: write.seal(pk, c.TABLE_CONTACTS, pk, sk, contacts.DATA, packed),
        }
        write.put(c.TABLE_CONTACTS, item)

    sealed.run(build)
    return expires


def kept_export(pk: str, request_id: str) -> dict[str, Any] | None:
    """The export kept for the request, None when it expired, was erased or never made."""
    sk = EXPORT_PREFIX + request_id
    item = tables.get_live(c.TABLE_CONTACTS, pk, sk)
    if item is None:
        return None
    packed = contacts.open_data(pk, sk, item.get(contacts.DATA))
    if not isinstance(packed, str):
        return None
    doc: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(packed)))
    return doc


# ---- restriction -------------------------------------------------------------------------------
def set_restriction(pk: str, restricted: bool, reason: str | None, recorded_at: str) -> None:
    """Record the restriction state of one pseudonym (the reason sealed under the contact's key)."""

    def build(write: Any) -> None:
        item = tables.stamp(
            {c.PK: pk, c.SK: RESTRICTION, "restricted": restricted, "recorded_at": recorded_at},
            c.CLASS_CONSENT,
        )
        item[contacts.DATA] = write.seal(
            pk, c.TABLE_CONTACTS, pk, RESTRICTION, contacts.DATA, {"reason": reason}
        )
        write.put(c.TABLE_CONTACTS, item)

    sealed.run(build)


def restriction(pk: str) -> dict[str, Any] | None:
    """`{"restricted", "recorded_at", "reason"?}` of one pseudonym, None when never recorded."""
    item = tables.get_live(c.TABLE_CONTACTS, pk, RESTRICTION)
    if item is None:
        return None
    data = contacts.open_data(pk, RESTRICTION, item.get(contacts.DATA)) or {}
    out = {"restricted": bool(item.get("restricted")), "recorded_at": str(item["recorded_at"])}
    if data.get("reason"):
        out["reason"] = data["reason"]
    return out


def declare_unrestricted(write: Any, pk: str) -> int:
    """Declare, in a guarded write (store.sealed), that the pseudonym is not restricted: a ConditionCheck
    on its `RESTRICTION` item that fails while processing is restricted, so a write that happens anyway
    learns the state at no extra read (its op index; the caller writes again without it when it failed)."""
    return int(
        write.check(
            c.TABLE_CONTACTS,
            {c.PK: pk, c.SK: RESTRICTION},
            "attribute_not_exists(pk) OR restricted <> :yes OR attribute_not_exists(#e) OR #e <= :now",
            {"#e": c.TTL_ATTRIBUTE},
            {":yes": True, ":now": tables.now()},
        )
    )


def is_restricted(pk: str) -> bool:
    item = tables.get_live(c.TABLE_CONTACTS, pk, RESTRICTION)
    return bool(item and item.get("restricted"))


# ---- notices -----------------------------------------------------------------------------------
def record_notice(pk: str, key: str, version: str, sent_at: str, first: bool = False) -> bool:
    """Record a notice given (`key`: `first`, or the keyword message's pseudonym); False when this one was
    recorded before (the first-contact notice is given once per life of the contact)."""
    item = tables.stamp(
        {c.PK: pk, c.SK: NOTICE_PREFIX + key, "version": version, "sent_at": sent_at}, c.CLASS_CONTACTS
    )
    try:
        tables.table(c.TABLE_CONTACTS).put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    except tables.client().exceptions.ConditionalCheckFailedException:
        return False
    return True


def notices_given(pk: str, key: str) -> bool:
    return tables.get_live(c.TABLE_CONTACTS, pk, NOTICE_PREFIX + key) is not None


def notices(pk: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    condition = Key(c.PK).eq(pk) & Key(c.SK).begins_with(NOTICE_PREFIX)
    return list(tables.query_live(c.TABLE_CONTACTS, condition))
