"""The template registry's items (table `templates`, no personal data): one item per (name, language) in
one partition, read by key at a send and by one Query for the list; and the marker that limits syncs on a
miss to one a minute. See domain/templates.py.
"""

from __future__ import annotations

import json
from typing import Any

from shared import constants as c
from store import tables

PARTITION = "TEMPLATE"
SYNC_PK = "SYNC"
MISS_SK = "miss"


def _sk(name: str, language: str) -> str:
    return f"{name}#{language}"


_approved: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}  # (name, language) -> (read at, entry)


def get(name: str, language: str, max_age: float = 0) -> dict[str, Any] | None:
    """The entry; with `max_age`, an APPROVED one this container read less than `max_age` seconds ago
    (any other status is read again each time)."""
    import time

    at = time.monotonic()
    cached = _approved.get((name, language)) if max_age else None
    if cached is not None and 0 <= at - cached[0] < max_age:
        return dict(cached[1])
    item = tables.get_live(c.TABLE_TEMPLATES, PARTITION, _sk(name, language))
    found = _plain(item) if item else None
    if found is not None and str(found.get("status", "")).upper() == "APPROVED":
        _approved[(name, language)] = (at, found)
    else:
        _approved.pop((name, language), None)
    return dict(found) if found else None


def reset() -> None:
    """Forget the entries read (tests: a fresh container)."""
    _approved.clear()


def all_entries() -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    return [_plain(i) for i in tables.query_live(c.TABLE_TEMPLATES, Key(c.PK).eq(PARTITION))]


def put(entry: dict[str, Any], at: int | None = None) -> None:
    """Write one entry (`components` kept as JSON text), its TTL refreshed."""
    now = at if at is not None else tables.now()
    item = {
        c.PK: PARTITION,
        c.SK: _sk(entry["name"], entry["language"]),
        **{k: v for k, v in entry.items() if k != "components" and v is not None},
        "components": json.dumps(entry.get("components") or [], separators=(",", ":")),
        "updated_at": int(entry.get("updated_at") or now),
    }
    tables.table(c.TABLE_TEMPLATES).put_item(Item=tables.stamp(item, c.CLASS_TEMPLATES, now))
    _approved.pop((str(entry["name"]), str(entry["language"])), None)  # this container reads it again


def claim_miss_sync(every_seconds: int, at: int | None = None) -> bool:
    """True for the one caller per `every_seconds` that may sync because a send named a missing template."""
    from botocore.exceptions import ClientError

    now = at if at is not None else tables.now()
    item = tables.stamp({c.PK: SYNC_PK, c.SK: MISS_SK, "at": now}, c.CLASS_TEMPLATES, now)
    try:
        tables.table(c.TABLE_TEMPLATES).put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR #at < :since",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":since": now - every_seconds},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in (c.PK, c.SK, c.TTL_ATTRIBUTE)}
    try:
        out["components"] = json.loads(str(item.get("components") or "[]"))
    except ValueError:
        out["components"] = []
    if "updated_at" in out:
        out["updated_at"] = int(out["updated_at"])
    return out
