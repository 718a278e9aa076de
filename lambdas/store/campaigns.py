"""Campaigns: items of the messages table under the campaign's own partition (docs/decisions.md).

- `CAMPAIGN#<id>` / `META`: name, status, template, from, audience kind, times, the preparation cursor.
- `CAMPAIGN#<id>` / `E#<000000>`: one entry of an explicit audience, the contact by reference only.
- `CAMPAIGN#<id>` / `R#<person>`: one recipient (`person`: the reference of the smallest pseudonym of the
  contact's identity set, so a number, a user id and a reference of one person are one item), its
  bucket `status`, `skipped_by`, `message_id`, `error`. A duplicate entry is `R#<person>~<entry>`.
- `CAMPAIGNS` / `<created_at>#<id>`: the listing, newest first; `CAMPAIGNS_DUE` / `<send_at>#<id>`: the
  scheduled ones the schedule starts (removed once started).

No phone number or user id is stored here; every item carries the TTL of the `messages` class counted
from the campaign's last possible send (`send_at`), so the campaign lives as long as its messages.
"""

from __future__ import annotations

import json
from typing import Any

from shared import constants as c
from store import tables

PK_PREFIX = "CAMPAIGN#"
META = "META"
ENTRY = "E#"
RECIPIENT = "R#"
LISTING = "CAMPAIGNS"
DUE = "CAMPAIGNS_DUE"
# A recipient's bucket and its rank: a bucket only moves to a higher rank (cancel and skip only from
# pending; a message's statuses forward only, as the outbound item's).
RANK: dict[str, int] = {
    "pending": 0,
    "cancelled": 1,
    "skipped": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "failed": 5,
}
BUCKETS = ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")
SKIP_REASONS = ("no_consent", "erased", "restricted", "invalid_contact", "duplicate", "frequency_cap")


def pk(cid: str) -> str:
    return PK_PREFIX + cid


def _conditional(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _set_extra(extra: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> list[str]:
    """`SET` clauses for attributes given by name (placeholders added to `names` and `values`)."""
    sets = []
    for i, (name, value) in enumerate(extra.items()):
        names[f"#x{i}"] = name
        values[f":x{i}"] = value
        sets.append(f"#x{i} = :x{i}")
    return sets


def _update_if(
    cid: str, sk: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
) -> bool:
    """One conditional update of a campaign item; False when the condition did not hold."""
    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            Key={c.PK: pk(cid), c.SK: sk},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return True
    except Exception as exc:
        if _conditional(exc):
            return False
        raise


def _ttl_at(meta: dict[str, Any]) -> int:
    return int(meta.get("send_epoch") or meta.get("created_epoch") or tables.now())


def create(meta: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Write the campaign, its entries and its listing items (entries first: META makes it exist)."""
    at = _ttl_at(meta)
    cid = str(meta["id"])
    with tables.table(c.TABLE_MESSAGES).batch_writer() as batch:
        for index, entry in enumerate(entries):
            item = {c.PK: pk(cid), c.SK: f"{ENTRY}{index:06d}", **entry}
            batch.put_item(Item=tables.stamp(item, c.CLASS_MESSAGES, at))
        listing = {c.PK: LISTING, c.SK: f"{meta['created_at']}#{cid}", "id": cid}
        batch.put_item(Item=tables.stamp(listing, c.CLASS_MESSAGES, at))
        if meta.get("send_epoch") and meta["status"] == "scheduled":
            due = {c.PK: DUE, c.SK: f"{int(meta['send_epoch']):012d}#{cid}", "id": cid}
            batch.put_item(Item=tables.stamp(due, c.CLASS_MESSAGES, at))
    item = {c.PK: pk(cid), c.SK: META, **meta}
    tables.table(c.TABLE_MESSAGES).put_item(Item=tables.stamp(item, c.CLASS_MESSAGES, at))


def get(cid: str) -> dict[str, Any] | None:
    return tables.get_live(c.TABLE_MESSAGES, pk(cid), META)


def listing(limit: int = 100) -> list[str]:
    from boto3.dynamodb.conditions import Key

    items = tables.table(c.TABLE_MESSAGES).query(
        KeyConditionExpression=Key(c.PK).eq(LISTING), ScanIndexForward=False, Limit=limit
    )
    return [str(i["id"]) for i in items.get("Items", []) if tables.is_live(i)]


def due(now: int) -> list[str]:
    """Scheduled campaigns whose `send_at` has come."""
    from boto3.dynamodb.conditions import Key

    cond = Key(c.PK).eq(DUE) & Key(c.SK).lt(f"{now + 1:012d}")
    return [str(i["id"]) for i in tables.query_live(c.TABLE_MESSAGES, cond)]


def forget_due(meta: dict[str, Any]) -> None:
    cid = str(meta["id"])
    key = {c.PK: DUE, c.SK: f"{int(meta.get('send_epoch') or 0):012d}#{cid}"}
    tables.table(c.TABLE_MESSAGES).delete_item(Key=key)


def set_status(cid: str, status: str, allowed_from: tuple[str, ...], **extra: Any) -> bool:
    """Move the campaign to `status` when it is in one of `allowed_from`; False otherwise."""
    names = {"#s": "status"}
    values: dict[str, Any] = {":s": status}
    sets = ["#s = :s", *_set_extra(extra, names, values)]
    froms = []
    for i, state in enumerate(allowed_from):
        values[f":f{i}"] = state
        froms.append(f":f{i}")
    return _update_if(
        cid,
        META,
        "SET " + ", ".join(sets),
        f"attribute_exists(pk) AND #s IN ({', '.join(froms)})",
        names,
        values,
    )


def advance_cursor(cid: str, old: str | None, new: str | None, prepared: bool) -> bool:
    """Move the preparation cursor from `old` to `new` (one step at a time: a redelivered step that lost
    the race stops there)."""
    values: dict[str, Any] = {":new": new or "", ":done": prepared}
    names = {"#c": "prep_cursor", "#d": "prepared"}
    condition = "attribute_exists(pk) AND "
    if old:
        condition += "#c = :old"
        values[":old"] = old
    else:
        condition += "(attribute_not_exists(#c) OR #c = :empty)"
        values[":empty"] = ""
    return _update_if(cid, META, "SET #c = :new, #d = :done", condition, names, values)


def encode_cursor(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if value is not None else ""


def decode_cursor(value: str | None) -> Any:
    return json.loads(value) if value else None


def entries(cid: str, start: int, limit: int) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    cond = Key(c.PK).eq(pk(cid)) & Key(c.SK).between(f"{ENTRY}{start:06d}", f"{ENTRY}999999")
    page = tables.table(c.TABLE_MESSAGES).query(KeyConditionExpression=cond, Limit=limit, ConsistentRead=True)
    return [i for i in page.get("Items", []) if tables.is_live(i)]


def add_recipient(meta: dict[str, Any], key: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """Write a recipient once; None when it was new, else the item already stored under `key`."""
    record = {c.PK: pk(str(meta["id"])), c.SK: RECIPIENT + key, **item}
    tables.stamp(record, c.CLASS_MESSAGES, _ttl_at(meta))
    try:
        tables.table(c.TABLE_MESSAGES).put_item(Item=record, ConditionExpression="attribute_not_exists(pk)")
        return None
    except Exception as exc:
        if not _conditional(exc):
            raise
    return tables.get_live(c.TABLE_MESSAGES, record[c.PK], record[c.SK]) or record


def move(cid: str, key: str, status: str, only_from: str | None = None, **extra: Any) -> bool:
    """Move a recipient to the bucket `status` (a higher rank only; `only_from`: from that bucket only)."""
    names = {"#s": "status"}
    values: dict[str, Any] = {":s": status, ":r": RANK[status]}
    sets = ["#s = :s", "rank_n = :r"]
    sets += _set_extra(extra, names, values)
    condition = "attribute_exists(pk) AND rank_n < :r"
    if only_from:
        condition += " AND #s = :from"
        values[":from"] = only_from
    return _update_if(cid, RECIPIENT + key, "SET " + ", ".join(sets), condition, names, values)


def move_extra(cid: str, key: str, **extra: Any) -> None:
    """Record attributes of a recipient (its message id) without moving its bucket."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets = _set_extra(extra, names, values)
    tables.table(c.TABLE_MESSAGES).update_item(
        Key={c.PK: pk(cid), c.SK: RECIPIENT + key},
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def recipients(cid: str, status: str | None = None) -> Any:
    """Every recipient item of the campaign, in key order (an iterator over pages)."""
    from boto3.dynamodb.conditions import Attr, Key

    cond = Key(c.PK).eq(pk(cid)) & Key(c.SK).begins_with(RECIPIENT)
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    if status:
        kwargs["FilterExpression"] = Attr("status").eq(status)
    return tables.query_live(c.TABLE_MESSAGES, cond, **kwargs)


def recipients_page(
    cid: str, status: str | None, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of recipients (`after`: the key to start after) and the next page's cursor."""
    out: list[dict[str, Any]] = []
    for item in recipients(cid, status):
        if after and str(item[c.SK]) <= RECIPIENT + after:
            continue
        out.append(item)
        if len(out) == limit + 1:
            break
    more = len(out) > limit
    out = out[:limit]
    return out, (str(out[-1][c.SK])[len(RECIPIENT) :] if more and out else None)


def counts(cid: str) -> dict[str, Any]:
    """The buckets of the campaign's recipients (each recipient in exactly one)."""
    buckets = dict.fromkeys(BUCKETS, 0)
    skipped_by = dict.fromkeys(SKIP_REASONS, 0)
    total = 0
    for item in recipients(cid):
        total += 1
        status = str(item.get("status", "pending"))
        buckets[status if status in buckets else "pending"] += 1
        if status == "skipped" and item.get("skipped_by") in skipped_by:
            skipped_by[str(item["skipped_by"])] += 1
    return {"recipients": total, **buckets, "skipped_by": skipped_by}
