"""The sender on the moto stack against the fake Graph API: Meta's request, retries by visibility change,
permanent failures, the last attempt and the DLQ, 131050, send-time gate, duplicates, concurrency."""

from __future__ import annotations

import json

import pytest

from shared import constants as c
from tests import factory as f

PHONE = "4915112345678"
PHONE_NUMBER_ID = "106540352242922"
SEND_ARN = "arn:aws:sqs:eu-central-1:123456789012:waguard-send"
TEXT = {"to": "+" + PHONE, "purpose": "service", "text": {"body": "Yes, it ships today."}}
PROMO = {
    "to": PHONE,
    "purpose": "marketing",
    "template": {"name": "spring_sale", "language": {"code": "en_US"}},
}


@pytest.fixture
def fake(aws_stack, graph_api, monkeypatch):
    from domain import idempotency
    from shared import settings
    from store import outbound

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_PHONE_NUMBER_ID, PHONE_NUMBER_ID)
    monkeypatch.setenv(c.ENV_RETRY_BASE_SECONDS, "1")
    settings.reset()
    idempotency.reset()
    outbound.reset()
    yield graph_api
    graph_api.reset()
    settings.reset()


@pytest.fixture
def visibility(monkeypatch):
    """Every ChangeMessageVisibility the sender makes: (receipt handle, seconds)."""
    from store import outbound

    calls: list[tuple[str, int]] = []
    real = outbound.defer

    def spy(receipt_handle: str, seconds: int, source_arn: str | None = None) -> None:
        calls.append((receipt_handle, seconds))
        real(receipt_handle, seconds, source_arn)

    monkeypatch.setattr(outbound, "defer", spy)
    return calls


# ---- helpers ---------------------------------------------------------------------------------------
def inbound(stack, phone: str = PHONE) -> None:
    f.deliver(stack, f.webhook_body(messages=[f.text_message(phone, "Is my order ready?")]))


def consent(phone: str, purpose: str, status: str = "granted") -> None:
    reply = f.call_contacts(
        "PUT", phone, "/consent", {"purpose": purpose, "status": status, "source": "web_form"}
    )
    assert reply["statusCode"] == 200


def accept(body) -> str:
    reply = f.call_messages(f.messages_post(body))
    assert reply["statusCode"] == 202, reply
    return json.loads(reply["body"])["id"]


def view(message_id: str) -> dict:
    reply = f.call_messages(f.messages_get(message_id))
    assert reply["statusCode"] == 200
    return json.loads(reply["body"])


def receive(stack, visibility_timeout: int = 60) -> list[dict]:
    """Receive the send queue's messages as the event-source mapping does: Lambda SQS records."""
    sqs = stack.client("sqs")
    got = sqs.receive_message(
        QueueUrl=stack.queues["send"],
        MaxNumberOfMessages=10,
        VisibilityTimeout=visibility_timeout,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {
                "ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"],
                "SentTimestamp": m["Attributes"]["SentTimestamp"],
            },
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": SEND_ARN,
            "awsRegion": "eu-central-1",
        }
        for m in got
    ]


def again(record: dict) -> dict:
    """The same record delivered once more (ApproximateReceiveCount + 1)."""
    count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
    return {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}


def run_sender(*records: dict) -> list[str]:
    """Invoke the sender on the records, in the sender's environment (which names no queue URL: the
    queue is the records' eventSourceARN); the message ids reported as batch item failures."""
    import os

    from handlers import sender

    saved = os.environ.pop(c.ENV_SEND_QUEUE_URL, None)
    try:
        reply = sender.handler({"Records": list(records)}, f.LambdaContext())
    finally:
        if saved is not None:
            os.environ[c.ENV_SEND_QUEUE_URL] = saved
    return [x["itemIdentifier"] for x in reply["batchItemFailures"]]


def outbound_item(stack, message_id: str) -> dict:
    (item,) = [i for i in stack.items(c.TABLE_MESSAGES) if i.get("msg_id") == message_id]
    return item


def metric_sum(stdout: str, name: str) -> float:
    """The sum of one metric over the EMF lines Powertools printed."""
    total = 0.0
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            total += sum(json.loads(line).get(name, []))
    return total


def queue_depth(stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


# ---- sent ------------------------------------------------------------------------------------------
def test_reply_reaches_graph_once_and_ends_sent(aws_stack, fake, visibility):
    inbound(aws_stack)
    message_id = accept(TEXT)
    (record,) = receive(aws_stack)
    assert run_sender(record) == []
    (call,) = fake.calls()
    assert call["path"] == f"/v25.0/{PHONE_NUMBER_ID}/messages"
    assert call["headers"]["Authorization"] == "Bearer test-access-token"
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"body": "Yes, it ships today.", "preview_url": False},
    }
    wamid = call["response"]["messages"][0]["id"]
    assert view(message_id) == {"id": message_id, "status": "sent", "wamid": wamid}
    item = outbound_item(aws_stack, message_id)
    assert wamid not in repr(item) and item["wamid_h"] and int(item["attempts"]) == 1
    assert visibility == []
    # a duplicate delivery of the same queue message sends nothing
    assert run_sender(again(record)) == []
    assert len(fake.calls()) == 1


def test_status_webhooks_move_forward_only(aws_stack, fake):
    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    for status in ("delivered", "read", "delivered", "sent"):
        f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, status, PHONE)]))
    assert view(message_id)["status"] == "read"


def test_a_status_naming_another_recipient_changes_nothing(aws_stack, fake, capsys):
    """Contact B named as the recipient of A's wamid: A's message does not move, B's consent stays,
    nothing is stored under B, and the drop is counted (issue 21)."""
    other = "4915199990021"
    inbound(aws_stack)
    message_id = accept(TEXT)
    run_sender(*receive(aws_stack))
    wamid = view(message_id)["wamid"]
    consent(other, "marketing")
    stopped = [f.meta_error(131050, "User has stopped marketing messages")]
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "failed", other, errors=stopped)]))
    assert view(message_id)["status"] == "sent"
    marketing = f.reply_json(f.call_contacts("GET", other, "/consent"))["purposes"]["marketing"]
    assert marketing["status"] == "granted"
    exported = f.reply_json(f.call_contacts("GET", other, "/export"))
    assert exported["messages"] == [] and exported["statuses"] == []
    assert metric_sum(capsys.readouterr().out, "MismatchedRecipients") == 1
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "delivered", PHONE)]))
    assert view(message_id)["status"] == "delivered"


def test_template_body_is_metas(aws_stack, fake):
    consent(PHONE, "utility")
    components = [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-7"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-7"}]},
    ]
    template = {"name": "order_update", "language": {"code": "en_US"}, "components": components}
    message_id = accept({"to": PHONE, "template": template})  # the purpose comes from the category
    assert run_sender(*receive(aws_stack)) == []
    (call,) = fake.calls()
    assert call["body"]["type"] == "template"
    assert call["body"]["template"] == template
    assert view(message_id)["status"] == "sent"


# ---- retries -----------------------------------------------------------------------------------------
def test_throttled_twice_then_sent_after_three_calls(aws_stack, fake, visibility, capsys):
    inbound(aws_stack)
    message_id = accept(TEXT)
    fake.script([{"code": 130429}, {"code": 130429}])
    (record,) = receive(aws_stack)
    first = run_sender(record)
    assert first == [record["messageId"]]
    assert view(message_id)["status"] == "queued"
    second = run_sender(again(record))
    assert second == [record["messageId"]]
    assert run_sender(again(again(record))) == []
    assert len(fake.calls()) == 3
    assert view(message_id)["status"] == "sent"
    # backoff by visibility change of that record: full jitter, base 1 s (WA_RETRY_BASE_SECONDS)
    assert [h for h, _ in visibility] == [record["receiptHandle"]] * 2
    assert 1 <= visibility[0][1] <= 1 and 1 <= visibility[1][1] <= 2
    assert int(outbound_item(aws_stack, message_id)["attempts"]) == 3
    out = capsys.readouterr().out
    assert metric_sum(out, "GraphThrottled") == 2 and metric_sum(out, "MessagesSent") == 1


@pytest.mark.parametrize(
    "script", [[{"status": 503, "body": "busy"}], [{"code": 131000}], [{"code": 131056}]]
)
def test_transient_errors_are_retried(aws_stack, fake, visibility, script):
    inbound(aws_stack)
    message_id = accept(TEXT)
    fake.script(script)
    (record,) = receive(aws_stack)
    assert run_sender(record) == [record["messageId"]]
    assert len(visibility) == 1
    if script[0].get("code") == 131056:
        assert visibility[0][1] == 4  # Meta's 4^X: 4 s after the first attempt
    assert run_sender(again(record)) == []
    assert view(message_id)["status"] == "sent"


def test_timeout_is_retried(aws_stack, fake, visibility, monkeypatch):
    from domain import graph

    monkeypatch.setattr(graph, "TIMEOUT_SECONDS", 0.3)
    inbound(aws_stack)
    message_id = accept(TEXT)
    fake.script([{"delay": 1.0}])
    (record,) = receive(aws_stack)
    assert run_sender(record) == [record["messageId"]]
    assert outbound_item(aws_stack, message_id)["last_error"]["code"] == "network"
    assert run_sender(again(record)) == []
    assert view(message_id)["status"] == "sent"


# ---- failed --------------------------------------------------------------------------------------------
def test_permanent_error_fails_with_metas_code_and_title(aws_stack, fake, visibility):
    inbound(aws_stack)
    message_id = accept(TEXT)
    fake.script([{"code": 131026}])
    (record,) = receive(aws_stack)
    assert run_sender(record) == []  # done: deleted from the queue
    assert view(message_id) == {
        "id": message_id,
        "status": "failed",
        "error": {"code": 131026, "title": "Message Undeliverable"},
    }
    assert visibility == [] and len(fake.calls()) == 1


def test_131050_fails_and_revokes_marketing(aws_stack, fake):
    consent(PHONE, "marketing")
    message_id = accept(PROMO)
    fake.script([{"code": 131050, "title": "User stopped marketing messages"}])
    assert run_sender(*receive(aws_stack)) == []
    got = view(message_id)
    assert got["status"] == "failed" and got["error"]["code"] == 131050
    state = f.reply_json(f.call_contacts("GET", PHONE, "/consent"))["purposes"]["marketing"]
    assert state["status"] == "revoked" and state["source"] == "meta_error_131050"
    reply = f.call_messages(f.messages_post(PROMO))
    assert reply["statusCode"] == 403


def test_auth_error_fails_and_is_counted(aws_stack, fake, capsys):
    inbound(aws_stack)
    message_id = accept(TEXT)
    fake.expected_token = "another-token"
    try:
        assert run_sender(*receive(aws_stack)) == []
    finally:
        fake.expected_token = None
    assert view(message_id)["error"]["code"] == 190
    out = capsys.readouterr().out
    assert metric_sum(out, "GraphAuthErrors") == 1 and metric_sum(out, "MessagesFailed") == 1


def test_last_attempt_fails_and_lands_in_the_dlq(aws_stack, fake, visibility):
    inbound(aws_stack)
    message_id = accept(TEXT)
    for _ in range(5):  # five earlier receives (as if five attempts had failed)
        assert receive(aws_stack, visibility_timeout=0)
    (record,) = receive(aws_stack)
    assert record["attributes"]["ApproximateReceiveCount"] == "6"
    fake.script([{"code": 131000}])
    assert run_sender(record) == [record["messageId"]]  # reported: SQS redrives it
    got = view(message_id)
    assert got["status"] == "failed" and got["error"] == {"code": 131000, "title": "Something went wrong"}
    assert visibility == [(record["receiptHandle"], 0)]
    assert receive(aws_stack) == []  # the next receive moves it to the DLQ (maxReceiveCount 6)
    assert queue_depth(aws_stack, aws_stack.dlqs["send"]) == 1
    body = aws_stack.client("sqs").receive_message(QueueUrl=aws_stack.dlqs["send"])["Messages"][0]["Body"]
    assert json.loads(body) == {"message_id": message_id}


# ---- gate at send time, duplicates, concurrency --------------------------------------------------------
def test_refused_sends_never_reach_graph(aws_stack, fake):
    for body in (TEXT, PROMO):
        assert f.call_messages(f.messages_post(body))["statusCode"] in (403, 422)
    assert queue_depth(aws_stack, aws_stack.queues["send"]) == 0
    assert run_sender(*receive(aws_stack)) == []
    assert fake.calls() == []


def test_consent_revoked_after_acceptance_is_not_sent(aws_stack, fake):
    consent(PHONE, "marketing")
    message_id = accept(PROMO)
    consent(PHONE, "marketing", "revoked")
    assert run_sender(*receive(aws_stack)) == []
    assert fake.calls() == []
    got = view(message_id)
    assert got["status"] == "failed" and got["error"]["code"] == "consent_required"


def test_restricted_after_acceptance_is_not_sent_and_not_told(aws_stack, fake):
    """GDPR Art. 18 (issue 24): the gate's restriction row at the sender's turn; no status event."""
    inbound(aws_stack)
    message_id = accept(TEXT)
    assert f.call_contacts("PUT", PHONE, "/restriction", {"restricted": True})["statusCode"] == 200
    aws_stack.events()
    assert run_sender(*receive(aws_stack)) == []
    assert fake.calls() == []
    got = view(message_id)
    assert got["status"] == "failed" and got["error"]["code"] == "restricted"
    assert aws_stack.events() == []  # the failed status is withheld too


def test_erased_before_sending_is_dropped(aws_stack, fake):
    inbound(aws_stack)
    accept(TEXT)
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    records = [r for r in receive(aws_stack) if "message_id" in json.loads(r["body"])]
    old = [{**r, "attributes": {**r["attributes"], "SentTimestamp": "1000"}} for r in records]
    assert run_sender(*old) == []
    assert fake.calls() == []
    assert not [i for i in aws_stack.items(c.TABLE_MESSAGES) if i["sk"].startswith("OUT#")]


def test_unknown_id_is_retried_while_the_index_may_lag(aws_stack, fake, visibility):
    fresh = f.sqs_event([json.dumps({"message_id": "msg_" + "1" * 24})], queue_arn=SEND_ARN)["Records"][0]
    assert run_sender(fresh) == [fresh["messageId"]]
    assert visibility[0][1] == 2
    old = {**fresh, "attributes": {**fresh["attributes"], "SentTimestamp": "1000"}}
    assert run_sender(old) == []
    garbage = f.sqs_event(["not json", json.dumps({"message_id": 7})])["Records"]
    assert run_sender(*garbage) == []


def test_duplicate_queue_messages_send_once(aws_stack, fake):
    inbound(aws_stack)
    message_id = accept(TEXT)
    (record,) = receive(aws_stack)
    twin = {**record, "messageId": "twin-" + record["messageId"], "receiptHandle": "twin"}
    fake.script([{"delay": 0.3}])
    failures = run_sender(record, twin)
    assert len(fake.calls()) == 1
    assert view(message_id)["status"] == "sent"
    assert failures in ([], [twin["messageId"]], [record["messageId"]])


def test_batch_is_sent_concurrently(aws_stack, fake):
    phones = [f"49151000000{i:02d}" for i in range(6)]
    for phone in phones:
        inbound(aws_stack, phone)
    ids = [accept({**TEXT, "to": phone}) for phone in phones]
    fake.script([{"delay": 0.5}] * len(phones))
    records = receive(aws_stack)
    assert len(records) == len(phones)
    assert run_sender(*records) == []
    assert {view(i)["status"] for i in ids} == {"sent"}
    calls = fake.calls()
    assert sorted(call["body"]["to"] for call in calls) == sorted(phones)
    overlapping = max(
        sum(1 for o in calls if o["started"] < c["finished"] and c["started"] < o["finished"]) for c in calls
    )
    assert overlapping >= 3  # several Graph calls were in flight at once


def test_spent_budget_defers_without_counting_an_attempt(aws_stack, fake, visibility, monkeypatch):
    from store import ratelimit

    inbound(aws_stack)
    message_id = accept(TEXT)
    monkeypatch.setattr(ratelimit, "acquire", lambda *a, **k: False)
    (record,) = receive(aws_stack)
    assert run_sender(record) == [record["messageId"]]
    assert visibility == [(record["receiptHandle"], 1)]
    assert int(outbound_item(aws_stack, message_id)["attempts"]) == 0
    assert fake.calls() == []
    # on the last receive a deferral must not push it into the DLQ: a fresh queue message replaces it
    last = {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "6"}}
    assert run_sender(last) == []
    attrs = aws_stack.client("sqs").get_queue_attributes(
        QueueUrl=aws_stack.queues["send"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert int(outbound_item(aws_stack, message_id)["attempts"]) == 0


def test_stop_confirmation_is_sent(aws_stack, fake, monkeypatch):
    from shared import settings

    raw = json.loads(aws_stack.env[c.ENV_SETTINGS])
    monkeypatch.setenv(
        c.ENV_SETTINGS, json.dumps({**raw, "stop_confirmation": "You will get no more messages."})
    )
    settings.reset()
    consent(PHONE, "marketing")
    f.deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "STOP")]))
    records = receive(aws_stack)
    assert len(records) == 1
    assert run_sender(*records) == []
    (call,) = fake.calls()
    assert call["body"]["text"] == {"body": "You will get no more messages.", "preview_url": False}
    assert f.call_messages(f.messages_post(PROMO))["statusCode"] == 403
