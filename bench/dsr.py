"""dsr_scaling: items read and time of the export and the erasure of a contact holding 100 messages, while
the tables hold 1e3, 1e4 and 1e5 other items.

Other items are synthetic contacts of ten items each, spread as the service writes them: a PROFILE
(contacts), a data key (keys), a consent event (consent), five inbound messages, one outbound message and
one status (messages). The subjects are two fresh contacts per size whose 100 messages each go through the
real webhook and processor, plus one consent grant. Export (`GET /contacts/{contact}/export`, median of 5)
and erasure (`DELETE /contacts/{contact}`, median of the two subjects) run through the contacts API
handler; DynamoDB items read are summed from the responses (Query/Scan ScannedCount, GetItem hits)
through botocore events.

Baselines, same run: the same measurement at the smallest size, and at every size the time of one plain
partition Query of another contact (moto's Query walks every item of the table, so moto's time grows with
the table where DynamoDB's does not). Flat means: the items read at 1e5 equal those at 1e3, and the time
measured in plain-Query units stays within 1.5x.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from bench.meter import Meter
from bench.stack import APP_SECRET, local_stack, median, quiet_logs

SIZES = (1_000, 10_000, 100_000)
SUBJECT_MESSAGES = 100
TIME_TOLERANCE = 1.5


def _fill(stack: Any, count: int) -> tuple[float, str]:
    """Add `count` other items (count/10 synthetic contacts); seconds taken and one of their pseudonyms."""
    import boto3

    from shared import constants as c

    started = time.perf_counter()
    ddb = boto3.resource("dynamodb", region_name=stack.region)
    writers = {
        name: ddb.Table(stack.tables[name]).batch_writer()
        for name in (c.TABLE_CONTACTS, c.TABLE_KEYS, c.TABLE_CONSENT, c.TABLE_MESSAGES)
    }
    expires = int(time.time()) + 90 * 86400
    blob = "v1:" + secrets.token_urlsafe(96)
    pk = ""
    try:
        for w in writers.values():
            w.__enter__()
        for _ in range(count // 10):
            pk = secrets.token_hex(32)
            now = int(time.time())
            writers[c.TABLE_CONTACTS].put_item(
                Item={
                    c.PK: pk,
                    c.SK: "PROFILE",
                    "d_wa_id": blob,
                    "first_seen_at": now,
                    "last_inbound_at": now,
                    c.TTL_ATTRIBUTE: expires,
                }
            )
            writers[c.TABLE_KEYS].put_item(
                Item={
                    c.PK: pk,
                    c.SK: "DK",
                    "wrapped": secrets.token_bytes(60),
                    "branch_id": "0#x",
                    "created_at": now,
                    c.TTL_ATTRIBUTE: expires,
                }
            )
            writers[c.TABLE_CONSENT].put_item(
                Item={
                    c.PK: pk,
                    c.SK: f"EV#2026-01-01T00:00:00.000000#{secrets.token_hex(4)}",
                    "purpose": "marketing",
                    "status": "granted",
                    "source": "bench",
                    "data": blob,
                    "recorded_at": "2026-01-01T00:00:00",
                    c.TTL_ATTRIBUTE: expires,
                }
            )
            for _ in range(5):
                wamid_h = secrets.token_hex(32)
                writers[c.TABLE_MESSAGES].put_item(
                    Item={
                        c.PK: pk,
                        c.SK: "IN#" + wamid_h,
                        "direction": "in",
                        "type": "text",
                        "timestamp": now,
                        "received_at": now,
                        "wamid_h": wamid_h,
                        "state": "done",
                        "data": blob,
                        c.TTL_ATTRIBUTE: expires,
                    }
                )
            msg_id = "msg_" + secrets.token_hex(12)
            wamid_h = secrets.token_hex(32)
            writers[c.TABLE_MESSAGES].put_item(
                Item={
                    c.PK: pk,
                    c.SK: "OUT#" + msg_id,
                    "direction": "out",
                    "msg_id": msg_id,
                    "purpose": "service",
                    "kind": "text",
                    "status": "read",
                    "status_rank": 3,
                    "wamid_h": wamid_h,
                    "attempts": 1,
                    "created_at": now,
                    "updated_at": now,
                    "data": blob,
                    c.TTL_ATTRIBUTE: expires,
                }
            )
            writers[c.TABLE_MESSAGES].put_item(
                Item={
                    c.PK: pk,
                    c.SK: f"ST#{wamid_h}#read",
                    "status": "read",
                    "timestamp": now,
                    "received_at": now,
                    "state": "done",
                    "data": blob,
                    c.TTL_ATTRIBUTE: expires,
                }
            )
    finally:
        for w in writers.values():
            w.__exit__(None, None, None)
    return time.perf_counter() - started, pk


def _bare_query_ms(stack: Any, pk: str, repeats: int = 7) -> float:
    """One plain partition Query on the messages table: moto's cost of a Query at this table size."""
    import boto3
    from boto3.dynamodb.conditions import Key

    from shared import constants as c

    table = boto3.resource("dynamodb", region_name=stack.region).Table(stack.tables[c.TABLE_MESSAGES])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        items = table.query(KeyConditionExpression=Key(c.PK).eq(pk))["Items"]
        times.append(time.perf_counter() - started)
        assert len(items) == 7
    return median(times) * 1000


def _subject(stack: Any, phone: str) -> None:
    from bench.esm import EventSourceMapping
    from handlers import contacts_api, processor, webhook
    from tests import factory as f

    mapping = EventSourceMapping(stack.queues["inbound"], processor.handler, region=stack.region)
    for start in range(0, SUBJECT_MESSAGES, 10):
        msgs = [f.text_message(phone, f"message {i} about my order") for i in range(start, start + 10)]
        event = f.webhook_post(f.webhook_body(msgs), APP_SECRET)
        assert webhook.handler(event, f.LambdaContext())["statusCode"] == 200
        mapping.drain()
    consent = {"purpose": "marketing", "status": "granted", "source": "bench"}
    reply = contacts_api.handler(f.contacts_event("PUT", phone, "/consent", consent), f.LambdaContext())
    assert reply["statusCode"] == 200, reply


def _erase(meter: Meter, phone: str) -> tuple[float, int, int, int]:
    from handlers import contacts_api
    from tests import factory as f

    meter.reset()
    started = time.perf_counter()
    reply = contacts_api.handler(f.contacts_event("DELETE", phone), f.LambdaContext())
    elapsed = time.perf_counter() - started
    assert reply["statusCode"] == 200, reply
    return elapsed, meter.items_read, meter.total(), json.loads(reply["body"])["items_deleted"]


def _measure(stack: Any, meter: Meter, phones: list[str], repeats: int) -> dict[str, Any]:
    from handlers import contacts_api
    from tests import factory as f

    exports: list[float] = []
    export_items = export_calls = 0
    held = 0
    for _ in range(repeats):
        meter.reset()
        started = time.perf_counter()
        reply = contacts_api.handler(f.contacts_event("GET", phones[0], "/export"), f.LambdaContext())
        exports.append(time.perf_counter() - started)
        assert reply["statusCode"] == 200, reply
        held = len(json.loads(reply["body"])["messages"])
        export_items, export_calls = meter.items_read, meter.total()
    assert held == SUBJECT_MESSAGES, f"the export holds {held} messages"
    erased = [_erase(meter, phone) for phone in phones]
    assert len({e[1:] for e in erased}) == 1, "two identical subjects erased differently"
    return {
        "export": {
            "ms": round(median(exports) * 1000, 1),
            "items_read": export_items,
            "aws_calls": export_calls,
        },
        "erase": {
            "ms": round(median([e[0] for e in erased]) * 1000, 1),
            "items_read": erased[0][1],
            "aws_calls": erased[0][2],
            "items_deleted": erased[0][3],
        },
    }


def run(sizes: tuple[int, ...] = SIZES, repeats: int = 5) -> dict[str, Any]:
    quiet_logs()
    results: dict[str, Any] = {}
    fill_seconds: dict[str, float] = {}
    with local_stack() as stack, Meter() as meter:
        from handlers import contacts_api, processor, webhook  # noqa: F401

        quiet_logs()
        held = 0
        for n, size in enumerate(sizes):
            with meter.suspended():
                seconds, other = _fill(stack, size - held)
                fill_seconds[str(size)] = round(seconds, 1)
            held = size
            phones = [str(4916000000000 + 10 * n + k) for k in range(2)]
            with meter.suspended():
                for phone in phones:
                    _subject(stack, phone)
            results[str(size)] = _measure(stack, meter, phones, repeats)
            with meter.suspended():
                bare = _bare_query_ms(stack, other)
            results[str(size)]["bare_query_ms"] = round(bare, 2)
            for op in ("export", "erase"):
                results[str(size)][op]["in_bare_queries"] = round(results[str(size)][op]["ms"] / bare, 1)
    base, top = results[str(sizes[0])], results[str(sizes[-1])]
    flat_items = all(
        r[op]["items_read"] == base[op]["items_read"] for r in results.values() for op in ("export", "erase")
    )
    time_ratio = {op: round(top[op]["ms"] / base[op]["ms"], 2) for op in ("export", "erase")}
    normalized_ratio = {
        op: round(top[op]["in_bare_queries"] / base[op]["in_bare_queries"], 2) for op in ("export", "erase")
    }
    return {
        "method": f"contact with {SUBJECT_MESSAGES} messages + 1 consent event; other items: synthetic "
        "contacts "
        "of 10 items across contacts/keys/consent/messages; moto in-process; export median of "
        f"{repeats}, erase median of 2 subjects",
        "subject_messages": SUBJECT_MESSAGES,
        "other_items": list(sizes),
        "by_size": results,
        "baseline": {"size": sizes[0], **base},
        "time_ratio_largest_to_baseline": time_ratio,
        "time_in_bare_queries_ratio_largest_to_baseline": normalized_ratio,
        "items_read_flat": flat_items,
        "fill_seconds": fill_seconds,
        "met": flat_items and all(v <= TIME_TOLERANCE for v in normalized_ratio.values()),
    }
