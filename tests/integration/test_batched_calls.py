"""The batched paths of issue 23's call budget, where they can fail: the sender's and the processor's
events told together (a failed entry retried, a refused batch failed back to SQS with nothing lost), the
restriction learned inside the writes, the status moving the outbound message inside its own write (and
written again without it when the index copy was stale), and the sender reading the index copy."""

from __future__ import annotations

import json

import pytest

from shared import constants as c
from tests import factory as f
from tests.integration.test_sender_flow import (
    PHONE,
    PHONE_NUMBER_ID,
    TEXT,
    accept,
    inbound,
    outbound_item,
    receive,
    run_sender,
    view,
)


@pytest.fixture
def fake(aws_stack, graph_api, monkeypatch):
    from domain import idempotency
    from shared import settings
    from store import outbound

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_PHONE_NUMBER_ID, PHONE_NUMBER_ID)
    settings.reset()
    idempotency.reset()
    outbound.reset()
    yield graph_api
    graph_api.reset()
    settings.reset()


def bus(monkeypatch, client) -> None:
    """EventBridge answered by `client` (store.events' cached client replaced, no backoff waits)."""
    from store import events

    def made():
        return client

    made.cache_clear = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setattr(events, "_client", made)
    monkeypatch.setattr(events, "BACKOFF_SECONDS", 0)


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e["detail"] for e in events if e["detail-type"] == kind]


def status_items(stack) -> list[dict]:
    return [i for i in stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("ST#")]


class Flaky:
    """An EventBridge client whose first `fail` PutEvents calls report the first entry failed."""

    def __init__(self, real, fail: int = 1, refuse: bool = False) -> None:
        self.real, self.fail, self.refuse, self.calls = real, fail, refuse, 0

    def put_events(self, Entries):
        self.calls += 1
        if self.refuse:
            raise RuntimeError("bus unavailable")
        if self.fail > 0:
            self.fail -= 1
            answer = self.real.put_events(Entries=Entries[1:])
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException"}, *answer["Entries"]],
            }
        return self.real.put_events(Entries=Entries)


def test_a_sender_batch_tells_its_statuses_in_one_call_and_retries_a_failed_entry(
    aws_stack, fake, monkeypatch
):
    from store import events

    phones = [f"49151000000{i:02d}" for i in range(6)]
    for phone in phones:
        inbound(aws_stack, phone)
    aws_stack.events()  # the inbound messages' own events
    ids = [accept({**TEXT, "to": phone}) for phone in phones]
    flaky = Flaky(events._client(), fail=1)
    bus(monkeypatch, flaky)
    assert run_sender(*receive(aws_stack)) == []
    assert flaky.calls == 2  # one call for the batch, one retry of the entry that failed
    told = of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS)
    assert sorted(d["message"]["id"] for d in told) == sorted(ids)
    assert {d["message"]["status"] for d in told} == {"sent"}


def test_a_bus_that_refuses_the_sender_batch_is_counted_and_nothing_is_resent(
    aws_stack, fake, monkeypatch, capsys
):
    inbound(aws_stack)
    message_id = accept(TEXT)
    aws_stack.events()
    bus(monkeypatch, Flaky(None, refuse=True))
    capsys.readouterr()
    assert run_sender(*receive(aws_stack)) == []  # the message is sent and recorded: not retried
    assert view(message_id)["status"] == "sent" and len(fake.calls()) == 1
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sum(sum(m.get("EventsUnpublished", [0])) for m in metrics if "EventsUnpublished" in m) == 1


def test_a_processor_batch_refused_by_the_bus_fails_back_and_is_told_on_the_retry(
    aws_stack, fake, monkeypatch
):
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    aws_stack.events()
    body = f.webhook_body(statuses=[f.status(wamid, s, PHONE) for s in ("delivered", "read")])
    assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
    bodies = f.drain(aws_stack.queues["inbound"])
    with monkeypatch.context() as patched:
        bus(patched, Flaky(None, refuse=True))
        try:
            f.run_processor(bodies)
            raise AssertionError("the batch should have failed back to SQS")
        except BatchProcessingError:
            pass
    assert {i["state"] for i in status_items(aws_stack)} == {"new"}  # not done: redone on the retry
    assert view(message_id)["status"] == "read"  # stored before it was told
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS) == []
    assert f.run_processor(bodies) == {"batchItemFailures": []}  # SQS delivers the record again
    told = of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS)
    assert [d["message"]["status"] for d in told] == ["delivered", "read"]
    assert {i["state"] for i in status_items(aws_stack)} == {"done"}
    assert f.run_processor(bodies) == {"batchItemFailures": []}  # Meta's retry: a duplicate, told nobody
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS) == []


def test_a_status_moves_its_message_inside_its_own_write(aws_stack, fake) -> None:
    from bench.meter import Meter

    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    from store import events

    with Meter() as meter:  # a warm container: the contact's key held (the first status reads it)
        events.reset()  # its client counted too
        f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "delivered", PHONE)]))
        body = f.webhook_body(statuses=[f.status(wamid, "read", PHONE)])
        assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
        bodies = f.drain(aws_stack.queues["inbound"])
        meter.reset()
        assert f.run_processor(bodies) == {"batchItemFailures": []}
    assert view(message_id)["status"] == "read"
    assert meter.count("dynamodb", "UpdateItem") == 1  # the status marked done; no separate move
    assert meter.count("dynamodb", "TransactWriteItems") == 1  # status, marker, move, restriction check
    assert meter.count("dynamodb", "GetItem") == 0  # the restriction was learned inside the write
    assert meter.count("events", "PutEvents") == 1


def test_a_stale_index_copy_writes_the_status_again_without_the_move(aws_stack, fake, monkeypatch) -> None:
    from store import outbound

    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    stale = outbound_item(aws_stack, message_id)  # its index copy says `sent`
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "read", PHONE)]))
    assert view(message_id)["status"] == "read"
    aws_stack.events()
    monkeypatch.setattr(outbound, "with_wamid", lambda wamid_h: [dict(stale)])
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "delivered", PHONE)]))
    assert view(message_id)["status"] == "read"  # never backwards
    kinds = sorted(str(i[c.SK]).rsplit("#", 1)[1] for i in status_items(aws_stack))
    assert kinds == ["delivered", "read"]  # the late status is stored all the same
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS) == []  # it moved nothing


def test_restricted_contacts_statuses_and_messages_are_stored_and_told_nobody(aws_stack, fake) -> None:
    other = "4915100000077"
    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    assert f.call_contacts("PUT", PHONE, "/restriction", {"restricted": True})["statusCode"] == 200
    aws_stack.events()
    body = f.webhook_body(
        messages=[f.text_message(PHONE, "still there?"), f.text_message(other, "hello")],
        statuses=[f.status(wamid, "delivered", PHONE)],
    )
    f.deliver(aws_stack, body)
    told = aws_stack.events()
    assert of_type(told, c.EVENT_MESSAGE_STATUS) == []
    received = of_type(told, c.EVENT_MESSAGE_RECEIVED)
    assert [d["message"]["text"] for d in received] == ["hello"]  # the unrestricted contact's only
    assert view(message_id)["status"] == "delivered"  # stored all the same
    texts = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]
    assert len(texts) == 3  # the first inbound message and both of this delivery


def test_the_sender_reading_a_stale_index_copy_sends_nothing_twice(aws_stack, fake, monkeypatch) -> None:
    from store import tables

    inbound(aws_stack)
    message_id = accept(TEXT)
    queued = outbound_item(aws_stack, message_id)  # the index copy before the send
    (record,) = receive(aws_stack)
    assert run_sender(record) == []
    assert len(fake.calls()) == 1
    with monkeypatch.context() as patched:
        patched.setattr(tables, "find_message", lambda msg_id, sk, confirm=True: dict(queued))
        assert run_sender({**record, "messageId": "again"}) == []
    assert len(fake.calls()) == 1  # the lease's condition on the table decided
    assert view(message_id)["status"] == "sent"


def test_the_statuses_of_one_message_in_one_delivery_are_one_write(aws_stack, fake) -> None:
    from bench.meter import Meter
    from store import events

    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    with Meter() as meter:
        events.reset()
        f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "sent", PHONE)]))  # warms the key
        aws_stack.events()
        body = f.webhook_body(statuses=[f.status(wamid, s, PHONE) for s in ("delivered", "read")])
        assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
        bodies = f.drain(aws_stack.queues["inbound"])
        meter.reset()
        assert f.run_processor(bodies) == {"batchItemFailures": []}
    assert view(message_id)["status"] == "read"
    told = of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS)
    assert [d["message"]["status"] for d in told] == ["delivered", "read"]  # as one at a time would
    kinds = sorted(str(i[c.SK]).rsplit("#", 1)[1] for i in status_items(aws_stack))
    assert kinds == ["delivered", "read", "sent"]
    assert {i["state"] for i in status_items(aws_stack)} == {"done"}
    assert [i.get("moved") for i in status_items(aws_stack) if i["status"] != "sent"] == [True, True]
    # one write for both statuses, their marks and the move; one to mark them done; one lookup
    assert meter.count("dynamodb", "TransactWriteItems") == 2
    assert meter.count("dynamodb", "Query") == 1
    assert meter.count("dynamodb", "UpdateItem") == 0
    # Meta's retry of the same delivery: duplicates, nothing told, nothing moved
    assert f.run_processor(bodies) == {"batchItemFailures": []}
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS) == []


def test_statuses_listed_together_over_a_stale_index_copy_go_one_by_one(aws_stack, fake, monkeypatch) -> None:
    from store import outbound

    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    stale = outbound_item(aws_stack, message_id)  # `sent`
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "read", PHONE)]))
    aws_stack.events()
    monkeypatch.setattr(outbound, "with_wamid", lambda wamid_h: [dict(stale)])
    body = f.webhook_body(statuses=[f.status(wamid, s, PHONE) for s in ("delivered", "played")])
    f.deliver(aws_stack, body)  # the joint write's move fails (the table says read): one by one
    assert view(message_id)["status"] == "read"
    kinds = sorted(str(i[c.SK]).rsplit("#", 1)[1] for i in status_items(aws_stack))
    assert kinds == ["delivered", "played", "read"]
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_STATUS) == []  # neither moved it (as before)
