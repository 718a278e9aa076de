"""POST /webhook and GET /webhook on a moto account: what Meta sees, what gets queued, what gets stored."""

from __future__ import annotations

import json
import time

import pytest

from shared import constants as c
from tests import factory as f

PHONE = "4915112345678"


@pytest.fixture(autouse=True)
def _fresh_clients(aws_stack):
    from handlers import webhook

    webhook.reset()
    yield
    webhook.reset()


def everything(stack) -> dict:
    """Every item of every table and every queued message (test inspection only)."""
    out = {t: stack.items(t) for t in c.TABLES}
    sqs = stack.client("sqs")
    for url in [*stack.queues.values(), *stack.dlqs.values()]:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        out[url] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return out


def export(contact: str) -> dict:
    reply = f.call_contacts("GET", contact, "/export")
    return f.reply_json(reply) if reply["statusCode"] == 200 else {}


def texts(contact: str) -> list:
    return [m.get("text") for m in export(contact).get("messages", []) if m["direction"] == "in"]


# ---- handshake --------------------------------------------------------------------------------------
def _hub(**params: str) -> dict:
    return f.call_webhook(f.webhook_get({f"hub.{k}": v for k, v in params.items()}))


def test_handshake_with_the_secrets_verify_token(aws_stack) -> None:
    reply = _hub(mode="subscribe", verify_token="test-verify-token", challenge="1158201444")
    assert reply["statusCode"] == 200
    assert reply["body"] == "1158201444"
    assert reply["headers"]["Content-Type"].startswith("text/plain")
    assert _hub(mode="subscribe", verify_token="test-app-secret", challenge="1")["statusCode"] == 403


# ---- deliveries ------------------------------------------------------------------------------------
def test_signed_delivery_is_accepted_queued_verbatim_and_stored(aws_stack) -> None:
    raw = f.encode(f.webhook_body(messages=[f.text_message(PHONE, "where is my parcel?")]))
    reply = f.call_webhook(f.webhook_post(raw, f.APP_SECRET))
    assert reply["statusCode"] == 200 and json.loads(reply["body"]) == {"status": "accepted"}
    queued = f.drain(aws_stack.queues["inbound"])
    assert queued == [raw.decode()]
    assert f.run_processor(queued) == {"batchItemFailures": []}
    assert texts(PHONE) == ["where is my parcel?"]


def test_unsigned_or_wrongly_signed_gets_401_and_leaves_no_trace(aws_stack) -> None:
    body = f.webhook_body(messages=[f.text_message(PHONE, "forged text")])
    raw = f.encode(body)
    before = everything(aws_stack)
    for signature in [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=nothex",
        f.sign(raw, "not-the-app-secret"),
        f.sign(raw + b" ", f.APP_SECRET),
    ]:
        reply = f.call_webhook(f.webhook_post(raw, None, signature=signature))
        assert reply["statusCode"] == 401, signature
        assert json.loads(reply["body"])["error"] == "invalid_signature"
    assert everything(aws_stack) == before
    assert f.drain(aws_stack.queues["inbound"]) == []
    assert f.call_contacts("GET", PHONE, "/export")["statusCode"] == 404


def test_large_delivery_is_split_and_every_message_is_stored(aws_stack) -> None:
    phones = [f"4915100000{n:03d}" for n in range(2)]
    bodies = [
        f.webhook_body(messages=[f.text_message(p, f"{p} says " + "y" * 5000 + str(i)) for i in range(25)])
        for p in phones
    ]
    raw = f.encode(f.batched(*bodies))
    assert len(raw) > c.QUEUE_BODY_MAX_BYTES
    assert f.call_webhook(f.webhook_post(raw, f.APP_SECRET))["statusCode"] == 200
    queued = f.drain(aws_stack.queues["inbound"])
    assert len(queued) >= 2 and all(len(q.encode()) <= c.QUEUE_BODY_MAX_BYTES for q in queued)
    assert f.run_processor(queued) == {"batchItemFailures": []}
    for p in phones:
        assert len(texts(p)) == 25


def test_same_delivery_five_times_is_stored_once(aws_stack) -> None:
    body = f.webhook_body(
        messages=[f.text_message(PHONE, "only once please")],
        statuses=[f.status("wamid.out-1", "delivered", PHONE)],
    )
    for _ in range(5):
        assert f.deliver(aws_stack, body)["statusCode"] == 200
    assert texts(PHONE) == ["only once please"]
    messages = aws_stack.items(c.TABLE_MESSAGES)
    assert sum(1 for i in messages if i["sk"].startswith("IN#")) == 1
    assert sum(1 for i in messages if i["sk"].startswith("ST#")) == 1
    # Duplicates inside one SQS batch too.
    again = json.dumps(f.webhook_body(messages=[f.text_message(PHONE, "twice in a batch")]))
    assert f.run_processor([again, again, again]) == {"batchItemFailures": []}
    assert sorted(texts(PHONE)) == ["only once please", "twice in a batch"]


def test_non_ascii_text_escaped_as_meta_sends_it_is_stored_as_typed(aws_stack) -> None:
    typed = "Grüße aus Köln, ça va? é 👋🏽 Ñandú"
    raw = f.encode(f.webhook_body(messages=[f.text_message(PHONE, typed)]), ascii_only=True)
    assert b"\\u00e9" in raw and b"\\ud83d\\udc4b" in raw  # surrogate pairs, as Meta escapes emoji
    assert f.deliver(aws_stack, raw)["statusCode"] == 200
    assert texts(PHONE) == [typed]
    # Unescaped UTF-8 verifies too: the signature is over whatever bytes arrived.
    other = "naïve café 👋"
    raw = f.encode(
        f.webhook_body(messages=[f.text_message(PHONE, other, timestamp=int(time.time()) + 1)]),
        ascii_only=False,
    )
    assert "é".encode() in raw
    assert f.deliver(aws_stack, raw)["statusCode"] == 200
    assert texts(PHONE) == [typed, other]


def test_a_failing_record_is_reported_and_the_rest_of_the_batch_is_done(aws_stack, monkeypatch) -> None:
    from domain import ingest

    good = json.dumps(f.webhook_body(messages=[f.text_message(PHONE, "fine")]))
    bad = json.dumps(f.webhook_body(messages=[f.text_message("4915199999999", "boom")]))
    real = ingest.ingest

    def flaky(delivery, settings=None):
        if delivery.entry[0].changes[0].value["messages"][0]["text"]["body"] == "boom":
            raise RuntimeError("table throttled")
        return real(delivery, settings)

    monkeypatch.setattr(ingest, "ingest", flaky)
    event = f.sqs_event([good, bad])
    from handlers import processor

    result = processor.handler(event, f.LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert texts(PHONE) == ["fine"]


def test_garbage_queue_bodies_are_dropped_not_retried(aws_stack) -> None:
    assert f.run_processor(["not json", "[]", '{"entry": "nope"}']) == {"batchItemFailures": []}
    assert all(not aws_stack.items(t) for t in (c.TABLE_MESSAGES, c.TABLE_CONTACTS))
