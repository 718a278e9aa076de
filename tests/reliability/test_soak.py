"""Soak: thousands of inbound messages with duplicates mixed in, through the webhook, the inbound queue and
the processor (the handlers the local stack runs, in-process on moto, the queue consumed as the
event-source mapping does). Each message must be stored exactly once and none lost.

Duplicates come in the three ways they happen in production: Meta retrying a delivery (the same bytes
again, later), a message repeated inside another delivery (batched with new ones), and SQS delivering the
same queue message twice (at-least-once).

Size: `make test` soaks 600 messages; `make fuzz` (WAGUARD_RELIABILITY=full) 10,000; and
`WAGUARD_SOAK_MESSAGES=N` overrides both. moto's Scan walks every item of a table (its Query reads one
partition since waguard/moto_fixes.py), so a soak on moto still costs more per message the more are
stored: `make test` keeps the soak short, `make fuzz` keeps its full size.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from typing import Any

import pytest

from bench.esm import EventSourceMapping, queue_bodies
from shared import constants as c
from shared import ids
from tests import factory as f
from tests.reliability.profile import scale

pytestmark = pytest.mark.xdist_group("soak")  # its own group: runs beside the other reliability tests

CONTACTS = 250


def _messages(n: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(wa_id, message) for n unique inbound messages from CONTACTS senders, mostly text."""
    senders = [str(4915000000000 + rng.randrange(10**8)) for _ in range(CONTACTS)]
    out = []
    for i in range(n):
        wa_id = rng.choice(senders)
        kind = rng.random()
        if kind < 0.8:
            msg = f.text_message(wa_id, f"soak message {i}")
        elif kind < 0.9:
            msg = f.message(wa_id, "image", {"image": {"id": str(10**15 + i), "mime_type": "image/jpeg"}})
        else:
            msg = f.message(
                wa_id,
                "interactive",
                {"interactive": {"type": "button_reply", "button_reply": {"id": f"b{i}", "title": "Yes"}}},
            )
        out.append((wa_id, msg))
    return out


def _delivery(batch: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    bodies = [f.webhook_body([m], contacts=[f.contact(wa, "Soak User")]) for wa, m in batch]
    return bodies[0] if len(bodies) == 1 else f.batched(*bodies)


@pytest.fixture
def quiet() -> Any:
    """The service logger at WARNING for the soak (ten thousand INFO lines would only cost time)."""
    import logging

    log = logging.getLogger(c.SERVICE_NAME)
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


def test_soak_every_message_stored_exactly_once(aws_stack: Any, contact_key: str, quiet: Any) -> None:
    from handlers import processor, webhook

    n = int(os.environ.get("WAGUARD_SOAK_MESSAGES") or scale(600, 10_000))
    rng = random.Random(20261124)
    unique = _messages(n, rng)
    mapping = EventSourceMapping(aws_stack.queues["inbound"], processor.handler, region=aws_stack.region)
    sent: list[bytes] = []  # every delivery body, for Meta's retries
    expected_duplicates = 0
    deliveries = 0
    started = time.perf_counter()

    def post(raw: bytes) -> None:
        nonlocal deliveries
        reply = webhook.handler(f.webhook_post(raw, f.APP_SECRET), f.LambdaContext())
        assert reply["statusCode"] == 200, reply
        deliveries += 1

    i = 0
    while i < len(unique):
        size = 1 if rng.random() < 0.85 else rng.randint(2, 5)
        batch = unique[i : i + size]
        i += size
        roll = rng.random()
        if roll < 0.05 and i > 50:  # a delivery repeating an earlier message next to new ones
            batch = [*batch, rng.choice(unique[: i - size])]
            expected_duplicates += 1
        raw = json.dumps(_delivery(batch)).encode()
        post(raw)
        sent.append(raw)
        if rng.random() < 0.08:  # Meta retries an earlier delivery (it saw no 200 in time)
            again = rng.choice(sent)
            post(again)
            expected_duplicates += len(json.loads(again)["entry"])
        if deliveries % 10 == 0:
            if rng.random() < 0.05:  # SQS at-least-once: one queued body delivered twice
                bodies = queue_bodies(aws_stack.queues["inbound"], aws_stack.region, delete=False)
                if bodies:
                    twice = bodies[0]
                    result = processor.handler(f.sqs_event([twice, twice]), f.LambdaContext())
                    assert result == {"batchItemFailures": []}
                    expected_duplicates += 2  # the second copy, and the queued original later
            mapping.drain()
    mapping.drain()
    elapsed = time.perf_counter() - started

    assert mapping.failures == 0, "a record was reported for retry"
    assert queue_bodies(aws_stack.queues["inbound"], aws_stack.region) == []
    assert queue_bodies(aws_stack.dlqs["inbound"], aws_stack.region) == [], "a delivery ended in the DLQ"

    items = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]
    stored = Counter((str(i[c.PK]), str(i[c.SK])) for i in items)
    assert max(stored.values()) == 1
    expected = {
        (ids.contact_pseudonym(contact_key, wa), "IN#" + ids.wamid_pseudonym(contact_key, m["id"]))
        for wa, m in unique
    }
    missing = expected - set(stored)
    extra = set(stored) - expected
    assert not missing, f"{len(missing)} of {n} messages lost"
    assert not extra, f"{len(extra)} items stored that were never sent"
    assert all(i.get("state") == "done" for i in items), "a message's side effects never completed"
    print(
        f"\nsoak: {n} messages in {deliveries} deliveries ({expected_duplicates} duplicate sightings), "
        f"{mapping.invocations} processor invocations, {elapsed:.1f} s, {n / elapsed:.0f} msg/s"
    )
    assert expected_duplicates > 0
