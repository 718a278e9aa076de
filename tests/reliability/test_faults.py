"""Fault injection: DynamoDB throttling and unavailability, SQS send failures, KMS and Secrets Manager
failures, Graph API 5xx, 429 and timeouts. Each test asserts where the work ended: done after a retry,
`failed` with a reason, or in the dead-letter queue; and that nothing accepted was lost or done twice.

AWS faults are injected through botocore events (`bench.meter`): the call gets the service's error answer
(or no answer) as it would after the SDK's own retries. The queues are consumed by an in-process
event-source mapping (`bench.esm`) with the stack's redrive policies (inbound: 5 receives, send: 6), so
a record that keeps failing really moves to the DLQ; visibility timeouts are fast-forwarded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import meter as faults
from bench.esm import EventSourceMapping, queue_bodies
from bench.meter import Meter, transact_ops, untyped
from shared import constants as c
from shared import ids
from tests import factory as f
from tests.reliability import flows

pytestmark = pytest.mark.xdist_group("reliability-faults")

WA_ID = "4917612398745"


# ---- helpers -----------------------------------------------------------------------------------
def inbound_items(stack: Any, key: str, wa_id: str = WA_ID) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    table = stack_table(stack, c.TABLE_MESSAGES)
    pk = ids.contact_pseudonym(key, wa_id)
    with Meter.suspended():
        items = table.query(KeyConditionExpression=Key(c.PK).eq(pk))["Items"]
    return [i for i in items if str(i[c.SK]).startswith("IN#")]


def stack_table(stack: Any, logical: str) -> Any:
    import boto3

    return boto3.resource("dynamodb", region_name=stack.region).Table(stack.tables[logical])


def processor(stack: Any) -> EventSourceMapping:
    return flows.processor_mapping(stack)


def sender(stack: Any) -> EventSourceMapping:
    return flows.sender_mapping(stack)


def dlq(stack: Any, name: str) -> list[str]:
    return queue_bodies(stack.dlqs[name], stack.region, delete=False)


def text_delivery(text: str = "where is my parcel", wa_id: str = WA_ID) -> tuple[dict[str, Any], str]:
    msg = f.text_message(wa_id, text)
    return f.webhook_body([msg]), msg["id"]


def send_text(stack: Any, text: str = "your parcel ships today") -> str:
    """Open the service window with an inbound message, then POST /messages; the message id."""
    body, _ = text_delivery()
    assert flows.inbound(stack, body)["statusCode"] == 200
    reply = flows.send(WA_ID, text=text)
    assert reply["statusCode"] == 202, reply
    return flows.body_of(reply)["id"]


def cold_container() -> None:
    """Forget cached secrets and keys, as a new Lambda container would."""
    from shared import secrets
    from store import crypto

    secrets.clear_cache()
    crypto.cipher().forget()


def visibility_delays(meter: Meter) -> list[int]:
    return [
        int(p["VisibilityTimeout"]) for s, op, p in meter.log if (s, op) == ("sqs", "ChangeMessageVisibility")
    ]


# ---- the webhook: 5xx when it cannot enqueue or verify -----------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        faults.unavailable("sqs", "SendMessage"),
        faults.throttle("sqs", "SendMessage"),
        faults.unreachable("sqs", "SendMessage"),
        faults.Fault("sqs", "SendMessage", code="KMS.KMSThrottlingException", status=400),
    ],
    ids=["sqs-5xx", "sqs-throttled", "sqs-unreachable", "sqs-kms-throttled"],
)
def test_webhook_answers_503_when_it_cannot_enqueue(
    aws_stack: Any, meter: Meter, fault: faults.Fault
) -> None:
    meter.inject(fault)
    body, _ = text_delivery()
    reply = flows.webhook(body)
    assert reply["statusCode"] == 503
    assert flows.body_of(reply)["error"] == "unavailable"
    assert fault.hits == 1
    assert queue_bodies(aws_stack.queues["inbound"], aws_stack.region) == []
    assert meter.count("dynamodb", "PutItem") == 0
    # Meta retries the delivery; once SQS is back it is accepted and stored once.
    meter.heal()
    assert flows.inbound(aws_stack, body)["statusCode"] == 200


def test_webhook_answers_503_when_a_split_delivery_is_partly_refused(
    aws_stack: Any, meter: Meter, contact_key: str
) -> None:
    """A delivery over the queue limit goes out as a batch; one refused entry means 503, and Meta's retry
    of the whole delivery stores every message exactly once (the parts queued first are deduplicated)."""
    msgs = [f.text_message(WA_ID, f"message {i} " + "x" * 5000) for i in range(50)]
    body = f.webhook_body(msgs)
    assert len(json.dumps(body)) > c.QUEUE_BODY_MAX_BYTES
    fault = meter.inject(
        faults.Fault(
            "sqs",
            "SendMessageBatch",
            kind="answer",
            times=1,
            answer={
                "Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
            },
        )
    )
    assert flows.webhook(body)["statusCode"] == 503
    assert fault.hits == 1
    assert flows.inbound(aws_stack, body)["statusCode"] == 200
    assert len(inbound_items(aws_stack, contact_key)) == 50


@pytest.mark.parametrize(
    "fault",
    [
        faults.unavailable("secretsmanager"),
        faults.throttle("secretsmanager"),
        faults.unreachable("secretsmanager"),
    ],
    ids=["5xx", "throttled", "unreachable"],
)
def test_webhook_answers_503_when_the_secret_is_unavailable(
    aws_stack: Any, meter: Meter, fault: faults.Fault
) -> None:
    meter.inject(fault)
    body, _ = text_delivery()
    reply = flows.webhook(body)
    assert reply["statusCode"] == 503
    assert meter.writes() == 0
    from handlers import webhook

    get = webhook.handler(
        f.webhook_get(
            {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"}
        ),
        f.LambdaContext(),
    )
    assert get["statusCode"] == 503


# ---- the processor: retried, then done; or in the DLQ, nothing lost ----------------------------
def _is_message_put(params: dict[str, Any]) -> bool:
    """A guarded write (store.sealed) that stores an inbound message."""
    return any(
        kind == "Put" and str(op.get("Item", {}).get(c.SK, "")).startswith("IN#")
        for kind, op in transact_ops(params)
    )


def _writes_for(pk: str) -> Any:
    return lambda p: any(op.get("Item", op.get("Key", {})).get(c.PK) == pk for _, op in transact_ops(p))


def _is_mark_done(params: dict[str, Any]) -> bool:
    return untyped(params).get("ExpressionAttributeValues", {}).get(":d") == "done"


@pytest.mark.parametrize(
    "fault",
    [
        faults.throttle("dynamodb", "TransactWriteItems", when=_is_message_put, times=2),
        faults.unavailable("dynamodb", "TransactWriteItems", times=1),  # PROFILE and message
        faults.throttle(
            "dynamodb", "UpdateItem", when=_is_mark_done, times=1
        ),  # a keyword message: stored, consent events applied, done marker pending
        faults.unreachable("dynamodb", "TransactWriteItems", times=1),
        faults.unavailable("kms", times=1),
        faults.throttle("kms", "GenerateDataKey", times=1),
        faults.unavailable("secretsmanager", times=1),
    ],
    ids=[
        "ddb-write-throttled",
        "ddb-write-5xx",
        "ddb-done-marker-throttled",
        "ddb-unreachable",
        "kms-5xx",
        "kms-throttled",
        "secret-5xx",
    ],
)
def test_processor_retries_a_transient_fault_and_stores_once(
    aws_stack: Any, meter: Meter, contact_key: str, fault: faults.Fault
) -> None:
    # Only a keyword message is stored before its side effects and marked done after them.
    body, wamid = text_delivery("STOP" if fault.when is _is_mark_done else "where is my parcel")
    assert flows.webhook(body)["statusCode"] == 200
    cold_container()
    meter.inject(fault)
    mapping = processor(aws_stack)
    mapping.drain()
    assert fault.hits >= 1, "the fault never fired"
    assert mapping.failures + len(mapping.errors) >= 1, "the faulted record was not reported for retry"
    items = inbound_items(aws_stack, contact_key)
    assert len(items) == 1
    assert items[0][c.SK] == "IN#" + ids.wamid_pseudonym(contact_key, wamid)
    assert items[0]["state"] == "done"
    assert dlq(aws_stack, "inbound") == []


@pytest.mark.parametrize(
    "fault",
    [
        faults.unavailable("dynamodb"),
        faults.throttle("dynamodb"),
        faults.unavailable("kms"),
        faults.unreachable("secretsmanager"),
    ],
    ids=["ddb-5xx", "ddb-throttled", "kms-5xx", "secret-unreachable"],
)
def test_processor_persistent_fault_lands_in_the_dlq_intact(
    aws_stack: Any, meter: Meter, contact_key: str, fault: faults.Fault
) -> None:
    body, _ = text_delivery()
    raw = f.encode(body).decode()
    assert flows.webhook(body)["statusCode"] == 200
    cold_container()
    meter.inject(fault)
    mapping = processor(aws_stack)
    mapping.drain()
    assert mapping.invocations == 5  # maxReceiveCount of the inbound queue
    assert queue_bodies(aws_stack.queues["inbound"], aws_stack.region) == []
    assert dlq(aws_stack, "inbound") == [raw], "the verified body must wait in the DLQ, unchanged"
    assert inbound_items(aws_stack, contact_key) == []
    # Nothing is lost: a redrive after the outage stores it once.
    meter.heal()
    redriven = queue_bodies(aws_stack.dlqs["inbound"], aws_stack.region)
    result = flows.processor_mapping(aws_stack).handler(f.sqs_event(redriven), f.LambdaContext())
    assert result == {"batchItemFailures": []}
    assert len(inbound_items(aws_stack, contact_key)) == 1


def test_processor_fault_on_one_record_retries_only_that_record(
    aws_stack: Any, meter: Meter, contact_key: str
) -> None:
    others = ["4915112340001", "4915112340002", "4915112340003"]
    for wa in [WA_ID, *others]:
        assert flows.webhook(text_delivery(wa_id=wa)[0])["statusCode"] == 200
    target = ids.contact_pseudonym(contact_key, WA_ID)
    fault = meter.inject(faults.throttle("dynamodb", "TransactWriteItems", times=1, when=_writes_for(target)))
    mapping = processor(aws_stack)
    mapping.drain()
    assert fault.hits == 1
    assert mapping.failures == 1 and mapping.records == 5
    for wa in [WA_ID, *others]:
        assert len(inbound_items(aws_stack, contact_key, wa)) == 1


# ---- the messages API ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        faults.unavailable("sqs", "SendMessage"),
        faults.throttle("sqs", "SendMessage"),
        faults.unreachable("sqs", "SendMessage"),
    ],
    ids=["sqs-5xx", "sqs-throttled", "sqs-unreachable"],
)
def test_send_api_answers_503_and_keeps_nothing_when_it_cannot_enqueue(
    aws_stack: Any, meter: Meter, graph: Any, fault: faults.Fault
) -> None:
    assert flows.inbound(aws_stack, text_delivery()[0])["statusCode"] == 200
    meter.inject(fault)
    reply = flows.send(WA_ID)
    assert reply["statusCode"] == 503
    assert flows.body_of(reply)["error"] == "unavailable"
    outbound = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("OUT#")]
    assert outbound == [], "a message that was never queued must not linger as queued"
    assert queue_bodies(aws_stack.queues["send"], aws_stack.region) == []


@pytest.mark.parametrize(
    "fault",
    [
        faults.throttle("dynamodb", "TransactWriteItems"),
        faults.unavailable("dynamodb", "GetItem"),
        faults.unavailable("kms"),
    ],
    ids=["ddb-write-throttled", "ddb-get-5xx", "kms-5xx"],
)
def test_send_api_storage_fault_is_a_5xx_and_nothing_is_queued(
    aws_stack: Any, meter: Meter, graph: Any, fault: faults.Fault
) -> None:
    assert flows.inbound(aws_stack, text_delivery()[0])["statusCode"] == 200
    cold_container()
    meter.inject(fault)
    reply = flows.send(WA_ID)
    assert fault.hits >= 1
    assert reply["statusCode"] >= 500, reply
    assert flows.body_of(reply)["error"] in ("internal_error", "unavailable")
    assert queue_bodies(aws_stack.queues["send"], aws_stack.region) == []


# ---- the sender: Graph API faults ---------------------------------------------------------------
@pytest.mark.parametrize(
    "script",
    [
        [{"status": 500, "body": {"error": {"message": "boom", "code": 1}}}],
        [{"status": 503, "body": {}}],
        [{"code": 131000}],
        [{"status": 429, "body": {"error": {"message": "slow down"}}}],
        [{"code": 130429}],
        [{"code": 80007}, {"code": 4}],
        [{"status": 502, "body": "<html>bad gateway</html>"}],
    ],
    ids=["500-unknown", "503", "131000", "429", "130429", "80007-then-4", "502-html"],
)
def test_sender_retries_graph_5xx_and_throttling_with_backoff(
    aws_stack: Any, meter: Meter, graph: Any, script: list[dict[str, Any]]
) -> None:
    msg_id = send_text(aws_stack)
    graph.script(script)
    mapping = sender(aws_stack)
    mapping.drain()
    view = flows.view(msg_id)
    assert view["status"] == "sent", view
    assert len(graph.calls()) == len(script) + 1
    delays = visibility_delays(meter)
    assert len(delays) == len(script) and all(d >= 1 for d in delays), delays
    assert dlq(aws_stack, "send") == []


def test_sender_retries_a_graph_timeout(aws_stack: Any, meter: Meter, graph: Any, monkeypatch: Any) -> None:
    from domain import graph as client

    original = client.send
    monkeypatch.setattr(
        client, "send", lambda url, token, body, timeout=0.3: original(url, token, body, timeout)
    )
    msg_id = send_text(aws_stack)
    graph.script([{"delay": 1.0}])
    mapping = sender(aws_stack)
    mapping.drain()
    view = flows.view(msg_id)
    assert view["status"] == "sent"
    assert len(visibility_delays(meter)) == 1


def test_sender_unreachable_graph_is_retried(
    aws_stack: Any, meter: Meter, graph: Any, monkeypatch: Any
) -> None:
    msg_id = send_text(aws_stack)
    monkeypatch.setenv("WA_GRAPH_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    from shared import settings

    settings.reset()
    mapping = sender(aws_stack)
    mapping.poll_once()
    assert flows.view(msg_id)["status"] == "queued"
    monkeypatch.setenv("WA_GRAPH_API_URL", graph.base_url)
    settings.reset()
    mapping.drain()
    assert flows.view(msg_id)["status"] == "sent"


def test_sender_persistent_graph_5xx_ends_failed_and_in_the_dlq(
    aws_stack: Any, meter: Meter, graph: Any
) -> None:
    msg_id = send_text(aws_stack)
    graph.script([{"code": 131000}] * 20)
    mapping = sender(aws_stack)
    mapping.drain()
    view = flows.view(msg_id)
    assert view["status"] == "failed"
    assert view["error"]["code"] == 131000 and view["error"]["title"]
    assert len(graph.calls()) == 6  # max_send_attempts
    assert [json.loads(b) for b in dlq(aws_stack, "send")] == [{"message_id": msg_id}]
    delays = visibility_delays(meter)
    # five backoffs (base 1 s, exponential with full jitter: attempt k waits 1..2^(k-1) s), then visible
    # at once after the last attempt so that SQS moves it to the DLQ on the next receive
    assert len(delays) == 6 and delays[-1] == 0, delays
    assert all(1 <= d <= 2**k for k, d in enumerate(delays[:5])), delays


@pytest.mark.parametrize("code", [131026, 131047, 132001, 131050])
def test_sender_permanent_graph_error_fails_with_the_reason_at_once(
    aws_stack: Any, meter: Meter, graph: Any, code: int
) -> None:
    msg_id = send_text(aws_stack)
    graph.script([{"code": code}])
    sender(aws_stack).drain()
    view = flows.view(msg_id)
    assert view["status"] == "failed"
    assert view["error"]["code"] == code
    assert len(graph.calls()) == 1
    assert dlq(aws_stack, "send") == []


@pytest.mark.parametrize(
    "fault",
    [
        faults.unavailable("dynamodb", "Query", times=1),
        faults.throttle("dynamodb", "TransactWriteItems", times=1),  # the lease and rate token
        faults.unreachable("dynamodb", "GetItem", times=1),
        faults.unavailable("kms", "Decrypt", times=1),
        faults.throttle("secretsmanager", times=1),
    ],
    ids=["ddb-query-5xx", "ddb-update-throttled", "ddb-unreachable", "kms-decrypt-5xx", "secret-throttled"],
)
def test_sender_aws_fault_is_retried_and_sends_once(
    aws_stack: Any, meter: Meter, graph: Any, fault: faults.Fault
) -> None:
    msg_id = send_text(aws_stack)
    cold_container()  # a fresh sender container: keys and the secret come from KMS / Secrets Manager
    meter.inject(fault)
    mapping = sender(aws_stack)
    mapping.drain()
    assert fault.hits >= 1
    assert mapping.failures >= 1
    assert flows.view(msg_id)["status"] == "sent"
    assert len(graph.calls()) == 1, "a retried record must not send twice"
    assert dlq(aws_stack, "send") == []


def test_sender_persistent_dynamodb_outage_lands_in_the_dlq(aws_stack: Any, meter: Meter, graph: Any) -> None:
    msg_id = send_text(aws_stack)
    meter.inject(faults.unavailable("dynamodb"))
    mapping = sender(aws_stack)
    mapping.drain()
    assert mapping.invocations == 6
    assert [json.loads(b) for b in dlq(aws_stack, "send")] == [{"message_id": msg_id}]
    assert graph.calls() == []
    meter.heal()
    assert flows.view(msg_id)["status"] == "queued"  # not lost: it waits in the DLQ for a redrive
