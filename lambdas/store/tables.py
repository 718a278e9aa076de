"""DynamoDB access shared by every store module: table handles, TTL stamping, expiry filtering, paging.

DynamoDB's TTL deletes late (up to days), so every read drops items whose `expires_at` has passed.
No function here Scans: every read is by key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import get_settings, table_name


@cache
def _resource() -> Any:
    import boto3

    resource = boto3.resource("dynamodb")
    _builder_per_request(resource.meta.client.meta.events)
    return resource


def _builder_per_request(events: Any) -> None:
    """Give every request of the resource its own condition-expression builder.

    boto3's DynamoDB resource turns `Key(...)`/`Attr(...)` conditions into placeholders (`#n0`, `:v0`, ...)
    with ONE builder per resource, which each request first resets. The resource is shared by the threads
    of a process (the sender's batch, the local runtime), so a request made on another thread while one is
    being built restarts its numbering: a Query's key condition then takes the placeholders its filter
    already holds (`#n0 = :v0` and `#n0 > :v0`, the expiry filter now comparing the partition key with
    itself), and DynamoDB answers no items, no error (a consented recipient read as having no consent).
    The handler registered first here builds each request's conditions with a builder of its own, so the
    shared one never sees a condition (its own handler is removed; were it still there, it would find
    only strings). boto3's guidance: resources are not thread-safe, clients are."""
    from boto3.dynamodb.conditions import ConditionExpressionBuilder
    from boto3.dynamodb.transform import TransformationInjector

    def inject(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        injector = TransformationInjector(condition_builder=ConditionExpressionBuilder())
        injector.inject_condition_expressions(params, model, **kwargs)

    event = "before-parameter-build.dynamodb"
    events.unregister(event, unique_id="dynamodb-condition-expression")
    events.register_first(event, inject, unique_id="waguard-condition-expression")


@cache
def table(logical: str) -> Any:
    """The boto3 Table for a logical table name (see constants.TABLES)."""
    return _resource().Table(table_name(logical))


def client() -> Any:
    """The low-level client behind the resource (it takes and returns plain Python values)."""
    return _resource().meta.client


def reset() -> None:
    """Forget cached clients and tables (tests switch endpoints and environments)."""
    table.cache_clear()
    _resource.cache_clear()


def now() -> int:
    return int(time.time())


def now_us() -> int:
    """Epoch microseconds: the order of two writes within one second (Meta's timestamps have seconds)."""
    return time.time_ns() // 1000


def expires_at(data_class: str, at: float | None = None) -> int:
    return get_settings().expires_at(data_class, at)


def stamp(item: dict[str, Any], data_class: str, at: float | None = None) -> dict[str, Any]:
    """Set the item's Number TTL from its data class's retention."""
    item[c.TTL_ATTRIBUTE] = expires_at(data_class, at)
    return item


def is_live(item: dict[str, Any] | None, at: float | None = None) -> bool:
    if not item:
        return False
    ttl = item.get(c.TTL_ATTRIBUTE)
    return ttl is not None and int(ttl) > (at if at is not None else now())


def get_live(logical: str, pk: str, sk: str, consistent: bool = True) -> dict[str, Any] | None:
    item = table(logical).get_item(Key={c.PK: pk, c.SK: sk}, ConsistentRead=consistent).get("Item")
    return item if is_live(item) else None


def batch_get(
    wanted: dict[str, list[tuple[str, str]]], consistent: bool = True
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Many items of several tables in one BatchGetItem (100 keys a call; unprocessed keys asked again):
    {(logical table, pk, sk): item} of the live ones found."""
    from shared.settings import table_name

    names = {table_name(logical): logical for logical in wanted}
    keys = [
        (name, {c.PK: pk, c.SK: sk})
        for logical, ks in wanted.items()
        for pk, sk in dict.fromkeys(ks)
        for name in (table_name(logical),)
    ]
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {}
        for name, key in keys[start : start + 100]:
            request.setdefault(name, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(key)
        for attempt in range(8):
            answer = client().batch_get_item(RequestItems=request)
            for name, items in (answer.get("Responses") or {}).items():
                for item in items:
                    if is_live(item):
                        out[(names[name], str(item[c.PK]), str(item[c.SK]))] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        if request:
            raise RuntimeError("DynamoDB left keys of a batch read unprocessed")
    return out


def find_message(msg_id: str, sk_condition: Any, confirm: bool = True) -> dict[str, Any] | None:
    """The live messages-table item with waguard's message id `msg_id` whose sort key meets
    `sk_condition`: found through GSI `by_msg_id` (eventually consistent), then read consistently from
    the table, which is the truth (unless not `confirm`: the index's copy, which may lag the table)."""
    from boto3.dynamodb.conditions import Key

    found = next(
        query_live(
            c.TABLE_MESSAGES, Key("msg_id").eq(msg_id), index=c.GSI_BY_MSG_ID, FilterExpression=sk_condition
        ),
        None,
    )
    if found is None or not confirm:
        return found
    return get_live(c.TABLE_MESSAGES, str(found[c.PK]), str(found[c.SK]))


def query_live(logical: str, key_condition: Any, index: str | None = None, **kwargs: Any) -> Iterator[dict]:
    """All live items matching `key_condition`, across pages, expired ones filtered out server-side."""
    from boto3.dynamodb.conditions import Attr

    args: dict[str, Any] = {"KeyConditionExpression": key_condition, **kwargs}
    expiry = Attr(c.TTL_ATTRIBUTE).gt(now())
    args["FilterExpression"] = expiry & args["FilterExpression"] if "FilterExpression" in args else expiry
    if index:
        args["IndexName"] = index
    while True:
        page = table(logical).query(**args)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def partition(logical: str, pk: str, include_expired: bool = False) -> list[dict[str, Any]]:
    """Every item of one partition (a contact's, by pseudonym)."""
    from boto3.dynamodb.conditions import Key

    if include_expired:
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {"KeyConditionExpression": Key(c.PK).eq(pk)}
        while True:
            page = table(logical).query(**args)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return list(query_live(logical, Key(c.PK).eq(pk)))


def delete_keys(logical: str, keys: Iterable[dict[str, Any]]) -> int:
    """Delete items by key in batches of 25; returns how many keys were deleted."""
    count = 0
    with table(logical).batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key={c.PK: key[c.PK], c.SK: key[c.SK]})
            count += 1
    return count
