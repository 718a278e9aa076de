"""Inbound messages and status events in the messages table (outbound items belong to store.outbound).

- `<chash>` / `IN#<wamid_h>`: one inbound message; clear `direction`, `type`, `timestamp` (Meta's),
  `received_at`, `stored_us` (epoch µs: the order of one second's messages), `wamid_h`, `state`;
  encrypted `data` (wamid, sender ids, the minimized content).
- `<chash>` / `ST#<wamid_h>#<status>`: one status event; clear `status`, `timestamp`, `error` {code,
  title}, `state`; encrypted `data` (wamid, recipient ids). No clear `wamid_h` attribute, so status
  items stay out of the `by_wamid` index that finds outbound messages.

Both are written once (conditional put), each with its delivery marker (store.seen), which outlives an
erasure: a replayed body whose records were erased is still a duplicate. `state` is `new` until the
side effects of the event (consent, outbound status) are done, then `done`; a retry of a `new` item
redoes the side effects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from shared import constants as c
from store import contacts, seen, tables

IN_PREFIX = "IN#"
OUT_PREFIX = "OUT#"
STATUS_PREFIX = "ST#"
NEW = "new"
DONE = "done"
DUPLICATE = "duplicate"
GONE = "gone"  # a duplicate whose record is gone (erased or expired): only its delivery marker is left
REPEATS = (DUPLICATE, GONE)
MOVED = "moved"  # a status item whose own write moved its outbound message (store.outbound.declare_status)


def settle(
    item: dict[str, Any],
    rebuild: Callable[[Any], dict[str, Any]],
    marker: tuple[str, str] | None = None,
    moved: list[bool] | None = None,
) -> str:
    """After a conditional put of `item` found the key taken: DUPLICATE when that item is done, NEW when
    it is unfinished (its side effects are redone; `moved[0]`: its own write moved the outbound message
    already, `MOVED`). When it is expired but not yet deleted by TTL, it is a DUPLICATE while its
    delivery marker (`marker`: kind, digest; store.seen) is held, else `rebuild(write)` is stored in its
    place with the marker (NEW)."""
    from store import sealed

    existing = tables.get_live(c.TABLE_MESSAGES, item[c.PK], item[c.SK])
    if existing is not None:
        if moved is not None:
            moved[:] = [bool(existing.get(MOVED))]
        return DUPLICATE if existing.get("state") == DONE else NEW
    if marker is not None and seen.held(*marker):
        return GONE

    def build(write: Any) -> None:
        write.put(c.TABLE_MESSAGES, rebuild(write))
        if marker is not None:
            seen.declare(write, *marker)

    try:
        sealed.run(build)
    except sealed.Cancelled:  # the marker appeared meanwhile: another delivery of the same item
        return GONE
    return NEW


def _put_once(
    build_item: Callable[[Any], dict[str, Any]],
    marker: tuple[str, str],
    known: dict[str, bool] | None = None,
    also: Callable[[Any], int | None] | None = None,
    applied: list[bool] | None = None,
) -> str:
    """Put the item and its delivery marker (store.seen) unless either is held: NEW when written (or left
    unfinished), DUPLICATE when done before, GONE when only the marker is left (the item was erased or
    expired: a replay or a redrive changes nothing and is told to nobody). With `known`, the write also
    checks that its contact is not restricted and records what it learned (`known[pk]`, no extra read).
    `also` declares one more conditional op in the same write (its index, or None; the ops it declares
    after that one belong to it); when a condition of them fails the write is made again without them.
    `applied[0]` says whether it was written."""
    from store import privacy, sealed

    built: list[dict[str, Any]] = []
    index: list[int] = []
    check = known is not None

    def build(write: Any) -> None:
        nonlocal check
        built[:] = [build_item(write)]
        index[:] = [
            write.put(c.TABLE_MESSAGES, built[0], "attribute_not_exists(pk)"),
            seen.declare(write, *marker),
        ]
        check = check and str(built[0][c.PK]) not in (known or {})  # learned already in this delivery
        index.append(privacy.declare_unrestricted(write, str(built[0][c.PK])) if check else -1)
        index.append(-1 if joined is None else (-1 if (at := joined(write)) is None else at))
        index.append(len(write.ops))  # the end of what `joined` declared (a campaign recipient's move too)
        if index[3] >= 0:  # written with the move: a retry before `done` knows it moved the message
            built[0][MOVED] = True

    joined = also  # the write `also` adds to this one (dropped when its own condition fails)
    while True:
        try:
            sealed.run(build)
            if known is not None and check:
                known[str(built[0][c.PK])] = False
            if applied is not None:
                applied[:] = [index[3] >= 0]
            return NEW
        except sealed.Cancelled as exc:
            if exc.failed(index[0]):
                return settle(built[0], build_item, marker, applied)
            if exc.failed(index[1]):
                return GONE
            if index[3] >= 0 and exc.failed(index[3], index[4]):
                joined = None  # its conditions decide nothing here: written again without it
            if index[2] >= 0 and exc.failed(index[2]) and known is not None:
                known[str(built[0][c.PK])], check = True, False  # restricted: stored all the same
            elif not (index[3] >= 0 and exc.failed(index[3], index[4])):
                return GONE


def gone(pk: str, sk: str, marker: tuple[str, str]) -> bool:
    """Whether the item was processed before and its record is gone (erased or expired): its delivery
    marker is held and the item is not. Read before anything is built, so a replay creates no data key
    and fetches nothing; the put's own guard still catches a replay racing this check."""
    return seen.held(*marker) and tables.get_live(c.TABLE_MESSAGES, pk, sk) is None


def id_for_wamid(wamid: str) -> str:
    """waguard's id of the message Meta calls `wamid`: an outbound message's own id when one is held
    (found through `by_wamid`), else the id an inbound message with that wamid has or would have."""
    from boto3.dynamodb.conditions import Attr, Key

    wamid_h = contacts.wamid_hash(wamid)
    for item in tables.query_live(
        c.TABLE_MESSAGES,
        Key("wamid_h").eq(wamid_h),
        index=c.GSI_BY_WAMID,
        FilterExpression=Attr(c.SK).begins_with(OUT_PREFIX),
    ):
        if item.get("msg_id"):
            return str(item["msg_id"])
    return inbound_msg_id(wamid_h)


def inbound_sk(wamid_h: str) -> str:
    return IN_PREFIX + wamid_h


def status_sk(wamid_h: str, status: str) -> str:
    return f"{STATUS_PREFIX}{wamid_h}#{status}"


INBOUND_ID_PREFIX = "in_"


def inbound_msg_id(wamid_h: str) -> str:
    """Waguard's id of an inbound message: derived one-way from the wamid pseudonym, so a retry of Meta's
    gets the same id; opaque (no wamid, no pseudonym in it)."""
    return INBOUND_ID_PREFIX + hashlib.sha256(("msg_id:" + wamid_h).encode()).hexdigest()[:24]


inbound_id = inbound_msg_id


def is_inbound_id(value: str) -> bool:
    return (
        len(value) == len(INBOUND_ID_PREFIX) + 24
        and value.startswith(INBOUND_ID_PREFIX)
        and all(ch in "0123456789abcdef" for ch in value[len(INBOUND_ID_PREFIX) :])
    )


def msg_id_of(item: dict[str, Any]) -> str | None:
    """Waguard's id of a stored message item (inbound: `msg_id`, or derived for items stored before)."""
    if item.get("msg_id"):
        return str(item["msg_id"])
    if str(item.get(c.SK, "")).startswith(IN_PREFIX) and item.get("wamid_h"):
        return inbound_msg_id(str(item["wamid_h"]))
    return None


def get_inbound_by_id(msg_id: str) -> dict[str, Any] | None:
    """The live inbound message with waguard's id `msg_id` (GSI `by_msg_id`, then a consistent read)."""
    from boto3.dynamodb.conditions import Attr

    if not is_inbound_id(msg_id):
        return None
    return tables.find_message(msg_id, Attr(c.SK).begins_with(IN_PREFIX))


def put_inbound(
    pk: str,
    wamid_h: str,
    msg_type: str,
    timestamp: int | None,
    data: dict[str, Any],
    done: bool = False,
    number: str | None = None,
) -> str:
    """Store an inbound message once per wamid. Returns NEW, DUPLICATE or GONE (see `_put_once`).

    `done=True` writes it finished at once: for a message whose side effects were all applied, and are
    idempotent, before this put (an ordinary message: only the PROFILE touch).
    """
    return _put_once(
        lambda w: inbound_item(w, pk, wamid_h, msg_type, timestamp, data, done, number),
        (seen.MESSAGE, wamid_h),
    )


def stored_order(item: dict[str, Any]) -> int:
    """The tie-break of two messages with the same second (0 for items older than the attribute)."""
    return int(item.get(c.ATTR_STORED_US) or 0)


def inbound_item(
    write: Any,
    pk: str,
    wamid_h: str,
    msg_type: str,
    timestamp: int | None,
    data: dict[str, Any],
    done: bool = False,
    number: str | None = None,
) -> dict[str, Any]:
    """The `IN#` item of an inbound message, its `data` sealed in the guarded `write`; `number` is the
    business phone number id it came in on (the business's own, not personal)."""
    sk = inbound_sk(wamid_h)
    now = tables.now()
    item: dict[str, Any] = {
        c.PK: pk,
        c.SK: sk,
        "direction": "in",
        "type": msg_type,
        "received_at": now,
        c.ATTR_STORED_US: tables.now_us(),
        "wamid_h": wamid_h,
        "msg_id": inbound_msg_id(wamid_h),
        "state": DONE if done else NEW,
        contacts.DATA: write.seal(pk, c.TABLE_MESSAGES, pk, sk, contacts.DATA, data),
    }
    if timestamp is not None:
        item["timestamp"] = int(timestamp)
    if number:
        item["business_number"] = number
    return tables.stamp(item, c.CLASS_MESSAGES, now)


def put_status(
    pk: str,
    wamid_h: str,
    status: str,
    timestamp: int | None,
    error: dict[str, Any] | None,
    data: dict[str, Any],
    known: dict[str, bool] | None = None,
    also: Callable[[Any], int | None] | None = None,
    applied: list[bool] | None = None,
) -> str:
    """Store a status event once per (wamid, status). Returns NEW, DUPLICATE or GONE (`known`, `also`,
    `applied`: see `_put_once`)."""

    def build_item(write: Any) -> dict[str, Any]:
        return _status_item(write, pk, wamid_h, status, timestamp, error, data)

    return _put_once(build_item, (seen.STATUS, f"{wamid_h}#{status}"), known, also, applied)


def _status_item(
    write: Any,
    pk: str,
    wamid_h: str,
    status: str,
    timestamp: int | None,
    error: dict[str, Any] | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    sk = status_sk(wamid_h, status)
    item: dict[str, Any] = {
        c.PK: pk,
        c.SK: sk,
        "status": status,
        "received_at": tables.now(),
        c.ATTR_STORED_US: tables.now_us(),
        "state": NEW,
        contacts.DATA: write.seal(pk, c.TABLE_MESSAGES, pk, sk, contacts.DATA, data),
    }
    if timestamp is not None:
        item["timestamp"] = int(timestamp)
    if error:
        item["error"] = error
    return tables.stamp(item, c.CLASS_STATUSES)


def put_statuses(
    pk: str,
    wamid_h: str,
    entries: list[tuple[str, int | None, dict[str, Any]]],
    out_item: dict[str, Any],
    known: dict[str, bool],
) -> dict[str, bool]:
    """Several statuses of one outbound message (`out_item`, the index copy), without errors, in one
    guarded write: each status item with its delivery marker, one forward-only move of the message to the
    highest of them (store.outbound.declare_status) and, unless `known`, the restriction check.
    {status: whether it moved the message (as one at a time, in order, would have)}; empty when any
    condition refused the write (nothing was written: the caller stores them one by one)."""
    from store import outbound, privacy, sealed

    def rank(status: str) -> int:
        return c.STATUS_RANK[c.STATUS_ALIASES.get(status, status)]

    moved: dict[str, bool] = {}
    current = int(out_item.get("status_rank", -1))
    for status, _, _ in entries:
        moved[status] = rank(status) > current
        current = max(current, rank(status))
    top = max(entries, key=lambda e: rank(e[0]))
    check = pk not in known

    def build(write: Any) -> None:
        at = top[1] if top[1] is not None else tables.now()
        items = [_status_item(write, pk, wamid_h, s, ts, None, data) for s, ts, data in entries]
        if outbound.declare_status(write, out_item, top[0], at) is None:
            moved.update(dict.fromkeys(moved, False))
        for item, (status, _, _) in zip(items, entries, strict=True):
            if moved[status]:
                item[MOVED] = True
            write.put(c.TABLE_MESSAGES, item, "attribute_not_exists(pk)")
            seen.declare(write, seen.STATUS, f"{wamid_h}#{status}")
        if check:
            privacy.declare_unrestricted(write, pk)

    try:
        sealed.run(build)
    except sealed.Cancelled:
        return {}
    if check:
        known[pk] = False
    return moved


def mark_done(pk: str, sk: str) -> None:
    tables.table(c.TABLE_MESSAGES).update_item(
        Key={c.PK: pk, c.SK: sk},
        UpdateExpression="SET #s = :d",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":d": DONE},
    )


def mark_done_all(keys: list[tuple[str, str]]) -> None:
    """`mark_done` of many items: one TransactWriteItems per 100 (one UpdateItem for a single one)."""
    from shared.settings import table_name

    unique = list(dict.fromkeys(keys))
    if len(unique) == 1:
        mark_done(*unique[0])
        return
    for start in range(0, len(unique), 100):
        tables.client().transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table_name(c.TABLE_MESSAGES),
                        "Key": {c.PK: pk, c.SK: sk},
                        "UpdateExpression": "SET #s = :d",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":d": DONE},
                    }
                }
                for pk, sk in unique[start : start + 100]
            ]
        )


def held(pk: str) -> list[dict[str, Any]]:
    """Every live item of one contact's partition (inbound, outbound, statuses), oldest key first."""
    return tables.partition(c.TABLE_MESSAGES, pk)


def open_attr(item: dict[str, Any], attr: str = contacts.DATA) -> Any:
    """Decrypt one encrypted attribute of a messages item; None when unreadable or absent."""
    return contacts.open_data(item[c.PK], item[c.SK], item.get(attr), table=c.TABLE_MESSAGES, attr=attr)


def marketing_sent_since(hashes: tuple[str, ...] | list[str], since: int) -> int:
    """Marketing templates sent (or on their way) to the identity set since `since` (the frequency cap)."""
    from boto3.dynamodb.conditions import Attr, Key

    found = 0
    wanted = Attr("purpose").eq("marketing") & Attr("created_at").gte(since) & Attr("status").ne("failed")
    for pk in hashes:
        cond = Key(c.PK).eq(pk) & Key(c.SK).begins_with("OUT#")
        found += sum(1 for _ in tables.query_live(c.TABLE_MESSAGES, cond, FilterExpression=wanted))
    return found
