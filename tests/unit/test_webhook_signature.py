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
