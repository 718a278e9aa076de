"""Inbound media: the processor queues a download, the media worker fetches it from Meta (the Graph fake,
Bearer token required) and keeps it in S3 sealed under the contact's key; erasure's shredding reaches it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from shared import constants as c
from tests import factory as f

TOKEN = "test-access-token"  # tests/conftest.py SECRETS
WA_ID = "15551230001"


@pytest.fixture(scope="module")
def graph_api():
    from waguard import graph_fake

    server, _ = graph_fake.start(expected_token=TOKEN)
    yield server
    server.shutdown()


@pytest.fixture
def fake(aws_stack, graph_api, monkeypatch):
    from shared import settings

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_RETRY_BASE_SECONDS, "1")
    settings.reset()
    return graph_api


def _inbound_image(stack: Any, meta_id: str, mime: str = "image/jpeg", kind: str = "image") -> None:
    msg = f.message(WA_ID, kind, {kind: {"id": meta_id, "mime_type": mime, "sha256": "x"}})
    f.deliver(stack, f.webhook_body([msg]))


def _receive(stack: Any) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    got = sqs.receive_message(
        QueueUrl=stack.queues["media"], MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
    )
    return got.get("Messages", [])


def _run_worker(stack: Any) -> dict[str, Any]:
    """Receive what is visible on the media queue and hand it to the worker as the mapping would."""
    from handlers import media_worker

    msgs = _receive(stack)
    arn = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queues["media"], AttributeNames=["QueueArn"]
    )
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn["Attributes"]["QueueArn"],
                "awsRegion": "eu-central-1",
            }
            for m in msgs
        ]
    }
    out = media_worker.handler(event, f.LambdaContext())
    failed = {x["itemIdentifier"] for x in out["batchItemFailures"]}
    for m in msgs:
        if m["MessageId"] not in failed:
            stack.client("sqs").delete_message(
                QueueUrl=stack.queues["media"], ReceiptHandle=m["ReceiptHandle"]
            )
    return {"records": len(msgs), "failed": len(failed)}


def _objects(stack: Any) -> list[bytes]:
    s3 = stack.client("s3")
    listed = s3.list_objects_v2(Bucket=stack.env[c.ENV_MEDIA_BUCKET]).get("Contents", [])
    return [s3.get_object(Bucket=stack.env[c.ENV_MEDIA_BUCKET], Key=o["Key"])["Body"].read() for o in listed]


def _after_backoff(stack: Any) -> dict[str, Any]:
    """Run the worker once the deferred job is visible again (WA_RETRY_BASE_SECONDS=1: a few seconds)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = _run_worker(stack)
        if out["records"]:
            return out
        time.sleep(0.25)
    raise AssertionError("the deferred job never came back")


def test_media_arrives_after_a_failure_and_is_sealed_under_the_contacts_key(aws_stack, fake) -> None:
    from store import contacts, media

    data = os.urandom(3 * 1024 * 1024 + 123)  # more than one 1 MiB chunk
    fake.add_media("meta-media-1", "image/jpeg", data)
    fake.fail_media(1)
    _inbound_image(aws_stack, "meta-media-1")
    (job,) = [m["Body"] for m in aws_stack.queue_messages(aws_stack.queues["media"])]
    assert "meta-media-1" not in job and WA_ID not in job  # Meta's id is sealed; no phone number
    assert json.loads(job)["media"] == contacts.media_ref("meta-media-1")

    from store import media as store_media

    deferred: list[int] = []
    real_defer = store_media.defer

    def spy(handle: str, seconds: int, source_arn: str | None = None) -> None:
        deferred.append(seconds)
        real_defer(handle, seconds, source_arn)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_media, "defer", spy)
        first = _run_worker(aws_stack)
    assert first == {"records": 1, "failed": 1}  # Meta answered 500: retried later, not lost
    assert _objects(aws_stack) == []
    assert len(deferred) == 1 and deferred[0] >= 1  # deferred by its backoff (not timed: CI may stall)
    assert _after_backoff(aws_stack) == {"records": 1, "failed": 0}
    assert _receive(aws_stack) == []

    calls = fake.calls("")
    media_calls = [x for x in calls if x["method"] == "GET"]
    assert len(media_calls) == 3 and all(x["authorized"] for x in media_calls)  # lookup, lookup, URL

    media_id = contacts.media_ref("meta-media-1")
    record = media.find(media_id)
    assert record is not None
    assert (record.mime_type, record.size, record.direction) == ("image/jpeg", len(data), "in")
    assert record.s3_key.startswith("media/") and WA_ID not in record.s3_key
    assert b"".join(media.read(record)) == data
    (obj,) = _objects(aws_stack)
    for at in range(0, len(data) - 32, 512 * 1024):
        assert data[at : at + 32] not in obj
    for logical in c.TABLES:
        dump = json.dumps(aws_stack.items(logical), default=repr)
        assert "meta-media-1" not in dump and data[:32].hex() not in dump

    _run_worker(aws_stack)  # nothing queued; a repeated job would find it kept
    _inbound_image(aws_stack, "meta-media-1")  # Meta's retry of the webhook: a second job
    assert _run_worker(aws_stack) == {"records": 1, "failed": 0}
    assert len(_objects(aws_stack)) == 1  # kept once


def test_erasure_makes_the_media_unreadable(aws_stack, fake) -> None:
    from store import contacts, media
    from store.crypto import KeyShredded, cipher

    fake.add_media("meta-media-2", "application/pdf", b"%PDF-1.4 personal letter" * 100)
    msg = f.message(WA_ID, "document", {"document": {"id": "meta-media-2", "mime_type": "application/pdf"}})
    f.deliver(aws_stack, f.webhook_body([msg]))
    assert _run_worker(aws_stack) == {"records": 1, "failed": 0}
    media_id = contacts.media_ref("meta-media-2")
    record = media.find(media_id)
    assert record is not None
    cipher().shred(record.chash)
    assert media.find(media_id) is None
    with pytest.raises(KeyShredded):
        b"".join(media.read(record))


@pytest.mark.parametrize(
    ("served", "size", "declared"),
    [
        ("image/png", 10, "image/jpeg"),  # another type than the webhook declared
        ("image/jpeg", c.MEDIA_MAX_BYTES["image"] + 1, "image/jpeg"),  # larger than Meta allows
    ],
)
def test_refused_media_is_dropped_and_nothing_is_kept(aws_stack, fake, served, size, declared) -> None:
    from store import contacts, media

    fake.add_media("meta-media-3", served, b"\0" * size)
    _inbound_image(aws_stack, "meta-media-3", mime=declared)
    assert _run_worker(aws_stack) == {"records": 1, "failed": 0}  # dropped, not retried
    assert _receive(aws_stack) == []
    assert _objects(aws_stack) == []
    assert media.find(contacts.media_ref("meta-media-3")) is None


def test_the_message_is_stored_whatever_happens_to_its_media(aws_stack, fake) -> None:
    fake.fail_media(10)
    _inbound_image(aws_stack, "meta-media-4")
    inbound = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]
    assert len(inbound) == 1
    assert _run_worker(aws_stack) == {"records": 1, "failed": 1}


def test_a_media_queue_outage_never_holds_up_the_message(aws_stack, fake, monkeypatch) -> None:
    from store import media

    def down(body: str) -> None:
        raise ConnectionError("sqs unreachable")

    monkeypatch.setattr(media, "enqueue", down)
    _inbound_image(aws_stack, "meta-media-5")  # f.deliver asserts the processor reported no failure
    inbound = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]
    assert len(inbound) == 1


def _get_media(media_id: str) -> dict[str, Any]:
    event = f.rest_event("GET", "/media/{id}", path=f"/media/{media_id}", path_params={"id": media_id})
    return f.call_messages(event)


def test_get_media_answers_the_bytes_then_404_after_erasure(aws_stack, fake) -> None:
    import base64

    from store import contacts
    from store.crypto import cipher

    data = os.urandom(70_000)
    fake.add_media("meta-media-6", "audio/ogg", data)
    msg = f.message(WA_ID, "audio", {"audio": {"id": "meta-media-6", "mime_type": "audio/ogg; codecs=opus"}})
    f.deliver(aws_stack, f.webhook_body([msg]))
    assert _run_worker(aws_stack) == {"records": 1, "failed": 0}
    media_id = contacts.media_ref("meta-media-6")
    reply = _get_media(media_id)
    assert reply["statusCode"] == 200, reply
    assert reply["multiValueHeaders"]["Content-Type"] == ["audio/ogg"] and reply["isBase64Encoded"] is True
    assert base64.b64decode(reply["body"]) == data
    assert _get_media("med_" + "0" * 24)["statusCode"] == 404
    assert _get_media("not-an-id")["statusCode"] == 404
    cipher().shred(contacts.chash(WA_ID))
    assert _get_media(media_id)["statusCode"] == 404


def test_a_large_document_streams_through_the_worker_in_bounded_memory() -> None:
    """`make bench` runs this at 100 MB (section media_memory); here 80 MB (a document limit is 100 MB)."""
    from bench import media as bench_media

    out = bench_media.run(size_mb=80)
    assert out["outcome"] == "done" and out["recorded_size"] == 80 * 1024 * 1024
    assert out["parts"] == 11 and out["largest_part_mb"] == 8.0  # multipart, one 8 MiB part at a time
    assert out["peak_traced_mb"] < 0.75 * 80  # never the document whole, let alone with its ciphertext
    assert out["met"]  # under a quarter of the function's memory size


def test_export_lists_the_media_and_erasure_deletes_objects_records_and_pointers(aws_stack, fake) -> None:
    from store import contacts

    fake.add_media("meta-media-7", "video/mp4", os.urandom(5000))
    msg = f.message(WA_ID, "video", {"video": {"id": "meta-media-7", "mime_type": "video/mp4"}})
    f.deliver(aws_stack, f.webhook_body([msg]))
    assert _run_worker(aws_stack) == {"records": 1, "failed": 0}
    media_id = contacts.media_ref("meta-media-7")
    doc = f.reply_json(f.call_contacts("GET", WA_ID, "/export"))
    (listed,) = doc["media"]
    assert listed == {
        "id": media_id,
        "direction": "in",
        "mime_type": "video/mp4",
        "size": 5000,
        "deletes_at": listed["deletes_at"],
    }
    assert len(_objects(aws_stack)) == 1
    assert f.call_contacts("DELETE", WA_ID)["statusCode"] == 200
    assert _objects(aws_stack) == []  # current versions deleted (the key was shredded first)
    left = [
        i for i in aws_stack.items(c.TABLE_CONTACTS) if "MEDIA" in str(i[c.SK]) or "MEDIA" in str(i[c.PK])
    ]
    assert left == []
    assert _get_media(media_id)["statusCode"] == 404
