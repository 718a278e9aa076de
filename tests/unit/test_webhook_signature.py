"""Webhook building blocks without AWS: signature checks, raw body, queue splitting, cheap import."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from handlers import webhook
from shared import constants as c
from tests import factory as f

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t"
BODY = json.dumps(f.webhook_body(messages=[f.text_message("4915112345678", "Grüße 👋")])).encode()


def test_a_correct_signature_verifies() -> None:
    assert webhook.signature_valid(BODY, f.sign(BODY, SECRET), SECRET)


def test_uppercase_hex_and_prefix_still_verify() -> None:
    sig = f.sign(BODY, SECRET)
    assert webhook.signature_valid(BODY, "SHA256=" + sig[7:].upper(), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=nothex",
        "sha256=é" + "0" * 63,
        "md5=" + "0" * 32,
        "0" * 64,
    ],
)
def test_missing_or_wrong_signatures_fail(header) -> None:
    assert not webhook.signature_valid(BODY, header, SECRET)


def test_signature_of_other_bytes_or_secret_fails() -> None:
    sig = f.sign(BODY, SECRET)
    assert not webhook.signature_valid(BODY + b" ", sig, SECRET)
    assert not webhook.signature_valid(BODY, f.sign(BODY, "other"), SECRET)
    assert not webhook.signature_valid(BODY, sig, "")


def test_reserialized_body_no_longer_verifies() -> None:
    """Meta escapes non-ASCII; re-serializing with the characters themselves changes the bytes."""
    raw = f.encode(f.webhook_body(messages=[f.text_message("4915112345678", "ça va? 👋")]))
    assert b"\\u00e7" in raw and b"\\ud83d\\udc4b" in raw
    sig = f.sign(raw, SECRET)
    reserialized = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert webhook.signature_valid(raw, sig, SECRET)
    assert not webhook.signature_valid(reserialized, sig, SECRET)


def test_raw_body_is_the_bytes_received() -> None:
    assert webhook.raw_body({"body": '{"a":"\\u00e9"}'}) == b'{"a":"\\u00e9"}'
    assert webhook.raw_body({"body": "é"}) == "é".encode()
    encoded = base64.b64encode(b"\x00\xffbytes").decode()
    assert webhook.raw_body({"body": encoded, "isBase64Encoded": True}) == b"\x00\xffbytes"
    assert webhook.raw_body({"body": None}) == b""
    with pytest.raises(ValueError):
        webhook.raw_body({"body": "not base64!", "isBase64Encoded": True})


def test_header_lookup_is_case_insensitive() -> None:
    event = {"headers": {"x-HUB-signature-256": "sha256=ab"}}
    assert webhook._header(event, "x-hub-signature-256") == "sha256=ab"
    event = {"headers": {}, "multiValueHeaders": {"X-Hub-Signature-256": ["sha256=cd"]}}
    assert webhook._header(event, "x-hub-signature-256") == "sha256=cd"


def test_small_deliveries_are_queued_verbatim() -> None:
    text = BODY.decode()
    assert webhook.queue_bodies(text, json.loads(text)) == [text]


def _big_delivery(entries: int, messages_per_change: int, text_size: int = 4000) -> dict:
    bodies = [
        f.webhook_body(
            messages=[
                f.text_message("49151" + str(1000000 + e), "x" * text_size)
                for _ in range(messages_per_change)
            ]
        )
        for e in range(entries)
    ]
    return f.batched(*bodies)


def test_large_deliveries_are_split_per_change_in_the_same_envelope() -> None:
    delivery = _big_delivery(entries=3, messages_per_change=40)
    text = json.dumps(delivery)
    assert len(text) > c.QUEUE_BODY_MAX_BYTES
    parts = webhook.queue_bodies(text, delivery)
    assert len(parts) >= 3
    wamids = []
    for part in parts:
        assert len(part.encode()) <= c.QUEUE_BODY_MAX_BYTES
        doc = json.loads(part)
        assert doc["object"] == "whatsapp_business_account" and len(doc["entry"]) == 1
        (change,) = doc["entry"][0]["changes"]
        assert change["field"] == "messages" and change["value"]["contacts"]
        wamids += [m["id"] for m in change["value"]["messages"]]
    expected = [m["id"] for e in delivery["entry"] for ch in e["changes"] for m in ch["value"]["messages"]]
    assert sorted(wamids) == sorted(expected)


def test_a_change_too_large_alone_is_halved_until_it_fits() -> None:
    delivery = _big_delivery(entries=1, messages_per_change=200)
    text = json.dumps(delivery)
    parts = webhook.queue_bodies(text, delivery)
    assert len(parts) > 1 and all(len(p.encode()) <= c.QUEUE_BODY_MAX_BYTES for p in parts)
    assert sum(len(json.loads(p)["entry"][0]["changes"][0]["value"]["messages"]) for p in parts) == 200


def test_import_is_cheap() -> None:
    """No boto3, pydantic or Event Handler at import (Meta waits on cold starts), and far below boto3."""
    heavy = (
        "boto3",
        "botocore.client",
        "botocore.session",
        "pydantic",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.parameters",
        "aws_xray_sdk",
    )
    code = (
        "import sys, time; t=time.perf_counter(); import handlers.webhook; d=time.perf_counter()-t; "
        f"print(d); print([m for m in {heavy!r} if m in sys.modules])"
    )
    boto = "import time; t=time.perf_counter(); import boto3; print(time.perf_counter()-t)"
    env_path = str(ROOT / "lambdas")

    def run(src: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", src],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        return out.stdout.split("\n")

    webhook_times, boto_times = [], []
    for _ in range(3):
        first, heavy = run(code)[:2]
        assert heavy == "[]", heavy
        webhook_times.append(float(first))
        boto_times.append(float(run(boto)[0]))
    assert sorted(webhook_times)[1] <= 1.3 * sorted(boto_times)[1]


# ---- the handler with the secret and the queue faked (no AWS) -------------------------------------------
VERIFY = "verify-me"


class FakeSQS:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:
        if self.fail:
            raise RuntimeError("queue unavailable")
        self.sent.append(MessageBody)
        return {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        if self.fail:
            return {"Successful": [], "Failed": [{"Id": e["Id"]} for e in Entries]}
        assert len(Entries) <= 10
        self.sent += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> FakeSQS:
    fake = FakeSQS()
    values = {c.SECRET_APP_SECRET: SECRET, c.SECRET_VERIFY_TOKEN: VERIFY}
    monkeypatch.setattr(webhook, "_secret", lambda name, required=False: values[name])
    monkeypatch.setattr(webhook, "_sqs", lambda: fake)
    monkeypatch.setenv(c.ENV_INBOUND_QUEUE_URL, "https://sqs.local/inbound")
    return fake


def _hub(**params: str) -> dict:
    return webhook.handler(f.webhook_get({f"hub.{k}": v for k, v in params.items()}), None)


def test_handshake_answers_the_challenge_as_text(sqs) -> None:
    reply = _hub(mode="subscribe", verify_token=VERIFY, challenge="1158201444")
    assert reply["statusCode"] == 200 and reply["body"] == "1158201444"
    assert reply["headers"]["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"mode": "subscribe", "verify_token": "wrong", "challenge": "1"},
        {"mode": "subscribe", "verify_token": VERIFY + " ", "challenge": "1"},
        {"mode": "unsubscribe", "verify_token": VERIFY, "challenge": "1"},
        {"verify_token": VERIFY, "challenge": "1"},
        {"mode": "subscribe", "challenge": "1"},
        {"mode": "subscribe", "verify_token": VERIFY},
        {},
    ],
)
def test_handshake_refuses_anything_else(sqs, query) -> None:
    reply = _hub(**query)
    assert reply["statusCode"] == 403 and reply["body"] != "1"


def test_handshake_reads_multi_value_query_too(sqs) -> None:
    event = f.webhook_get({})
    event["multiValueQueryStringParameters"] = {
        "hub.mode": ["subscribe"],
        "hub.verify_token": [VERIFY],
        "hub.challenge": ["42"],
    }
    assert webhook.handler(event, None)["body"] == "42"


def test_signed_delivery_is_queued_verbatim(sqs) -> None:
    raw = f.encode(f.webhook_body(messages=[f.text_message("4915112345678", "ça va? 👋")]))
    reply = webhook.handler(f.webhook_post(raw, SECRET), None)
    assert reply["statusCode"] == 200 and json.loads(reply["body"]) == {"status": "accepted"}
    assert sqs.sent == [raw.decode()]


def test_base64_bodies_are_verified_on_the_decoded_bytes(sqs) -> None:
    raw = f.encode(f.webhook_body(messages=[f.text_message("4915112345678", "b64")]))
    event = f.webhook_post(raw, SECRET, base64_body=True)
    assert event["isBase64Encoded"] is True
    assert webhook.handler(event, None)["statusCode"] == 200 and sqs.sent == [raw.decode()]
    bad = f.webhook_post(raw, SECRET)
    bad.update({"body": "%%%not-base64", "isBase64Encoded": True})
    assert webhook.handler(bad, None)["statusCode"] == 400


def test_signature_header_name_is_case_insensitive(sqs) -> None:
    raw = f.encode(f.webhook_body(messages=[f.text_message("4915112345678", "hi")]))
    event = f.webhook_post(raw, None)
    event["headers"]["x-hub-signature-256"] = f.sign(raw, SECRET)
    event["multiValueHeaders"] = {}
    assert webhook.handler(event, None)["statusCode"] == 200


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc", "sha256=nothex"])
def test_unsigned_or_wrongly_signed_is_401_and_not_queued(sqs, signature) -> None:
    reply = webhook.handler(f.webhook_post(BODY, None, signature=signature), None)
    assert reply["statusCode"] == 401 and json.loads(reply["body"])["error"] == "invalid_signature"
    assert sqs.sent == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"",
        b"\xff\xfe{}",
        b'{"a": 1',
        b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_signed_body_that_is_not_a_json_object_is_400(sqs, body) -> None:
    event = f.webhook_post(body, None, signature=f.sign(body, SECRET), base64_body=True)
    reply = webhook.handler(event, None)
    assert reply["statusCode"] == 400 and json.loads(reply["body"])["error"] == "invalid_body"
    assert sqs.sent == []


def test_over_3_mb_is_413_before_anything_else(sqs) -> None:
    body = b'{"pad": "' + b"x" * c.WEBHOOK_MAX_BYTES + b'"}'
    reply = webhook.handler(f.webhook_post(body, None, signature="sha256=whatever"), None)
    assert reply["statusCode"] == 413 and json.loads(reply["body"])["error"] == "payload_too_large"
    assert sqs.sent == []


def test_exactly_3_mb_is_accepted(sqs) -> None:
    pad = c.WEBHOOK_MAX_BYTES - len(b'{"object":"x","pad":""}')
    body = b'{"object":"x","pad":"' + b"x" * pad + b'"}'
    assert len(body) == c.WEBHOOK_MAX_BYTES
    assert webhook.handler(f.webhook_post(body, SECRET), None)["statusCode"] == 200


def test_queue_failure_is_503_so_meta_retries(sqs) -> None:
    sqs.fail = True
    reply = webhook.handler(f.webhook_post(BODY, SECRET), None)
    assert reply["statusCode"] == 503 and json.loads(reply["body"])["error"] == "unavailable"
    delivery = _big_delivery(entries=3, messages_per_change=40)
    reply = webhook.handler(f.webhook_post(delivery, SECRET), None)
    assert reply["statusCode"] == 503


def test_secret_store_failure_is_503(sqs, monkeypatch) -> None:
    def broken(name: str, required: bool = False) -> str:
        raise RuntimeError("secrets manager unreachable")

    monkeypatch.setattr(webhook, "_secret", broken)
    assert webhook.handler(f.webhook_post(BODY, SECRET), None)["statusCode"] == 503
    assert _hub(mode="subscribe", verify_token=VERIFY, challenge="1")["statusCode"] == 503


def test_large_delivery_goes_out_in_batches_of_at_most_ten(sqs) -> None:
    delivery = _big_delivery(entries=12, messages_per_change=6)
    assert webhook.handler(f.webhook_post(delivery, SECRET), None)["statusCode"] == 200
    assert len(sqs.sent) >= 12
    ids_sent = [
        m["id"] for s in sqs.sent for m in json.loads(s)["entry"][0]["changes"][0]["value"]["messages"]
    ]
    assert len(ids_sent) == 72 == len(set(ids_sent))


def test_other_methods_are_refused(sqs) -> None:
    assert webhook.handler(f.rest_event("PUT", "/webhook", body="{}"), None)["statusCode"] == 405
