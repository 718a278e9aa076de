"""Inbound messages and status events in the messages table (outbound items belong to store.outbound).

- `<chash>` / `IN#<wamid_h>`: one inbound message; clear `direction`, `type`, `timestamp` (Meta's),
  `received_at`, `wamid_h`, `state`; encrypted `data` (wamid, sender ids, the minimized content).
- `<chash>` / `ST#<wamid_h>#<status>`: one status event; clear `status`, `timestamp`, `error` {code,
  title}, `state`; encrypted `data` (wamid, recipient ids). No clear `wamid_h` attribute, so status
  items stay out of the `by_wamid` index that finds outbound messages.

Both are written once (conditional put). `state` is `new` until the side effects of the event (consent,
outbound status) are done, then `done`; a retry of a `new` item redoes the side effects.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared import constants as c
from store import contacts, tables

IN_PREFIX = "IN#"
OUT_PREFIX = "OUT#"
STATUS_PREFIX = "ST#"
NEW = "new"
DONE = "done"
DUPLICATE = "duplicate"


def _put_once(item: dict[str, Any]) -> str:
    """Put the item unless it exists: NEW when written (or left unfinished), DUPLICATE when done before."""
    from botocore.exceptions import ClientError

    table = tables.table(c.TABLE_MESSAGES)
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        return NEW
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    existing = tables.get_live(c.TABLE_MESSAGES, item[c.PK], item[c.SK])
    if existing is None:  # expired but not yet deleted by TTL: write it again
        table.put_item(Item=item)
        return NEW
    return DUPLICATE if existing.get("state") == DONE else NEW


def inbound_sk(wamid_h: str) -> str:
    return IN_PREFIX + wamid_h


def status_sk(wamid_h: str, status: str) -> str:
    return f"{STATUS_PREFIX}{wamid_h}#{status}"


INBOUND_ID_PREFIX = "in_"


def inbound_msg_id(wamid_h: str) -> str:
    """Waguard's id of an inbound message: derived one-way from the wamid pseudonym, so a retry of Meta's
    gets the same id; opaque (no wamid, no pseudonym in it)."""
    return INBOUND_ID_PREFIX + hashlib.sha256(("msg_id:" + wamid_h).encode()).hexdigest()[:24]


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
    from boto3.dynamodb.conditions import Attr, Key

    if not is_inbound_id(msg_id):
        return None
    found = next(
        tables.query_live(
            c.TABLE_MESSAGES,
            Key("msg_id").eq(msg_id),
            index=c.GSI_BY_MSG_ID,
            FilterExpression=Attr(c.SK).begins_with(IN_PREFIX),
        ),
        None,
    )
    if found is None:
        return None
    return tables.get_live(c.TABLE_MESSAGES, str(found[c.PK]), str(found[c.SK]))


def put_inbound(
    pk: str, wamid_h: str, msg_type: str, timestamp: int | None, data: dict[str, Any], done: bool = False
) -> str:
    """Store an inbound message once per wamid. Returns NEW or DUPLICATE.

    `done=True` writes it finished at once: for a message whose side effects were all applied, and are
    idempotent, before this put (an ordinary message: only the PROFILE touch).
    """
    sk = inbound_sk(wamid_h)
    now = tables.now()
    item: dict[str, Any] = {
        c.PK: pk,
        c.SK: sk,
        "direction": "in",
        "type": msg_type,
        "received_at": now,
        "wamid_h": wamid_h,
        "msg_id": inbound_msg_id(wamid_h),
        "state": DONE if done else NEW,
        contacts.DATA: contacts.seal(pk, sk, data, table=c.TABLE_MESSAGES),
    }
    if timestamp is not None:
        item["timestamp"] = int(timestamp)
    return _put_once(tables.stamp(item, c.CLASS_MESSAGES, now))


def put_status(
    pk: str,
    wamid_h: str,
    status: str,
    timestamp: int | None,
    error: dict[str, Any] | None,
    data: dict[str, Any],
) -> str:
    """Store a status event once per (wamid, status). Returns NEW or DUPLICATE."""
    sk = status_sk(wamid_h, status)
    item: dict[str, Any] = {
        c.PK: pk,
        c.SK: sk,
        "status": status,
        "received_at": tables.now(),
        "state": NEW,
        contacts.DATA: contacts.seal(pk, sk, data, table=c.TABLE_MESSAGES),
    }
    if timestamp is not None:
        item["timestamp"] = int(timestamp)
    if error:
        item["error"] = error
    return _put_once(tables.stamp(item, c.CLASS_STATUSES))


def mark_done(pk: str, sk: str) -> None:
    tables.table(c.TABLE_MESSAGES).update_item(
        Key={c.PK: pk, c.SK: sk},
        UpdateExpression="SET #s = :d",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":d": DONE},
    )


def held(pk: str) -> list[dict[str, Any]]:
    """Every live item of one contact's partition (inbound, outbound, statuses), oldest key first."""
    return tables.partition(c.TABLE_MESSAGES, pk)


def open_attr(item: dict[str, Any], attr: str = contacts.DATA) -> Any:
    """Decrypt one encrypted attribute of a messages item; None when unreadable or absent."""
    return contacts.open_data(item[c.PK], item[c.SK], item.get(attr), table=c.TABLE_MESSAGES, attr=attr)
