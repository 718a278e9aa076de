"""Media the business sends, on moto against the Graph fake: `POST /media` as API Gateway delivers binary
bodies (base64), the sender's copy for the contact and Meta's multipart upload, and what happens when
Meta refuses or fails part of the way."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from shared import constants as c
from tests import factory as f
from tests.integration.test_sender_flow import (  # noqa: F401
    PHONE,
    again,
    fake,
    inbound,
    outbound_item,
    receive,
    run_sender,
    view,
)

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(2 * 1024 * 1024 + 77)  # three chunks of the streaming cipher


def upload(data: bytes, content_type: str) -> dict:
    headers = {"Content-Type": content_type}
    return f.call_messages(f.rest_event("POST", "/media", body=data, headers=headers, base64_body=True))


def send_image(media_id: str) -> str:
    body = {"to": PHONE, "purpose": "service", "image": {"media_id": media_id}}
    reply = f.call_messages(f.messages_post(body))
    assert reply["statusCode"] == 202, reply
    return json.loads(reply["body"])["id"]


def media_records(stack, direction: str) -> list[dict]:
    return [
        i
        for i in stack.items(c.TABLE_CONTACTS)
        if str(i[c.SK]).startswith("MEDIA#") and i.get("direction") == direction
    ]


def test_an_upload_is_sealed_and_recorded_for_the_business(aws_stack, fake) -> None:  # noqa: F811
    reply = upload(JPEG, "image/jpeg")
    assert reply["statusCode"] == 201, reply
    answer = json.loads(reply["body"])
    assert answer["size"] == len(JPEG) and answer["mime_type"] == "image/jpeg"
    (record,) = media_records(aws_stack, "upload")
    assert record[c.PK] == c.MEDIA_UPLOADS_PK and record["size"] == len(JPEG)
    s3 = aws_stack.client("s3")
    (obj,) = s3.list_objects_v2(Bucket=os.environ[c.ENV_MEDIA_BUCKET])["Contents"]
    assert obj["Key"].startswith(c.MEDIA_PREFIX)
    stored = s3.get_object(Bucket=os.environ[c.ENV_MEDIA_BUCKET], Key=obj["Key"])["Body"].read()
    assert JPEG[:64] not in stored and JPEG[-64:] not in stored


def test_a_send_by_upload_copies_it_for_the_contact_once_and_uploads_to_meta(aws_stack, fake) -> None:  # noqa: F811
    inbound(aws_stack)
    media_id = json.loads(upload(JPEG, "image/jpeg")["body"])["id"]
    msg_id = send_image(media_id)
    fake.script([{}, {"code": 131000}])  # the upload goes through, the send fails once: retried
    (record,) = receive(aws_stack)
    assert run_sender(record) == [record["messageId"]]
    (record,) = receive(aws_stack, visibility_timeout=0) or [record]
    assert run_sender(again(record)) == []
    assert view(msg_id)["status"] == "sent"
    uploads = fake.calls("/media")
    assert len(uploads) == 2 and all(u["status"] == 200 for u in uploads)
    assert {u["body"]["file"]["sha256"] for u in uploads} == {hashlib.sha256(JPEG).hexdigest()}
    (copy,) = media_records(aws_stack, "out")  # made once, found by the retry
    assert copy[c.PK] != c.MEDIA_UPLOADS_PK and copy["size"] == len(JPEG)
    sent = fake.calls("/messages")[-1]["body"]
    assert sent["image"] == {"id": uploads[-1]["response"]["id"]}


def test_meta_refusing_the_upload_fails_the_message_without_a_send(aws_stack, fake) -> None:  # noqa: F811
    inbound(aws_stack)
    msg_id = send_image(json.loads(upload(JPEG, "image/jpeg")["body"])["id"])
    fake.script([{"code": 100, "title": "Invalid parameter"}])
    assert run_sender(*receive(aws_stack)) == []
    got = view(msg_id)
    assert got["status"] == "failed" and got["error"]["code"] == 100
    assert fake.calls("/messages") == []


def test_the_contacts_own_media_is_sent_back_without_a_copy(aws_stack, fake) -> None:  # noqa: F811
    from store import contacts, media

    inbound(aws_stack)
    pk = contacts.chash(PHONE)
    own = "med_" + "a" * 24
    stored = media.put_object(pk, [JPEG], c.MEDIA_MAX_BYTES["image"])
    assert media.save(own, pk, "in", "image/jpeg", stored)
    msg_id = send_image(own)
    assert run_sender(*receive(aws_stack)) == []
    assert view(msg_id)["status"] == "sent"
    (up,) = fake.calls("/media")
    assert up["body"]["file"]["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert media_records(aws_stack, "out") == []


@pytest.mark.parametrize(
    ("content_type", "size", "status", "code"),
    [
        ("application/zip", 10, 400, "unsupported_media"),
        ("image/jpeg", c.MEDIA_MAX_BYTES["image"] + 1, 400, "too_large"),
        ("video/mp4", 4 * 1024 * 1024 + 1, 413, "too_large"),  # Meta takes it; the API cannot carry it
        ("image/jpeg; charset=binary", 10, 201, None),
    ],
)
def test_upload_limits(aws_stack, content_type, size, status, code) -> None:
    reply = upload(os.urandom(size), content_type)
    assert reply["statusCode"] == status
    if code:
        assert json.loads(reply["body"])["error"] == code
        assert media_records(aws_stack, "upload") == []


def get_media(media_id: str, range_header: str | None = None) -> dict:
    import base64

    headers = {"Range": range_header} if range_header else {}
    event = f.rest_event(
        "GET", "/media/{id}", path=f"/media/{media_id}", path_params={"id": media_id}, headers=headers
    )
    reply = f.call_messages(event)
    body = reply.get("body") or ""
    reply["bytes"] = base64.b64decode(body) if reply.get("isBase64Encoded") else body.encode()
    return reply


def _headers(reply: dict) -> dict:
    out = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
    out.update({k.lower(): v[0] for k, v in (reply.get("multiValueHeaders") or {}).items() if v})
    return out


def test_parts_of_media_are_served_by_range(aws_stack) -> None:
    media_id = json.loads(upload(JPEG, "image/jpeg")["body"])["id"]
    size = len(JPEG)
    whole = get_media(media_id)
    assert whole["statusCode"] == 200 and whole["bytes"] == JPEG
    assert _headers(whole)["accept-ranges"] == "bytes"
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1048570-1048600": (1048570, 1048600),  # across a chunk of the streaming cipher
        "bytes=-10": (size - 10, size - 1),
        f"bytes={size - 5}-": (size - 5, size - 1),
        "bytes=2097150-99999999": (2097150, size - 1),
    }
    for header, (first, last) in cases.items():
        part = get_media(media_id, header)
        assert part["statusCode"] == 206, header
        assert part["bytes"] == JPEG[first : last + 1], header
        assert _headers(part)["content-range"] == f"bytes {first}-{last}/{size}"
    past = get_media(media_id, f"bytes={size}-")
    assert past["statusCode"] == 416 and _headers(past)["content-range"] == f"bytes */{size}"
    assert get_media(media_id, "bytes=5-2")["statusCode"] == 200  # not a valid range: ignored
    assert get_media(media_id, "bytes=0-1,5-6")["statusCode"] == 200  # several ranges: ignored


def test_media_larger_than_one_answer_is_read_in_parts(aws_stack) -> None:
    from store import media

    data = os.urandom(9 * 1024 * 1024 + 123)
    stored = media.put_object(c.MEDIA_UPLOADS_PK, [data], c.MEDIA_MAX_BYTES["video"])
    assert media.save("med_" + "b" * 24, c.MEDIA_UPLOADS_PK, "upload", "video/mp4", stored)
    whole = get_media("med_" + "b" * 24)
    assert whole["statusCode"] == 413 and "Range" in json.loads(whole["body"])["message"]
    got, first = b"", 0
    while first < len(data):
        part = get_media("med_" + "b" * 24, f"bytes={first}-")
        assert part["statusCode"] == 206 and len(part["bytes"]) <= 4 * 1024 * 1024
        got += part["bytes"]
        first += len(part["bytes"])
    assert got == data


def test_a_large_document_streams_through_the_sender_in_bounded_memory() -> None:
    """`make bench` runs this too (section media_send_memory): Meta's largest document, 100 MB."""
    from bench import media_send

    out = media_send.run(size_mb=100)
    assert out["meta_media_id"] and out["copy_size"] == 100 * 1024 * 1024
    assert out["sent_to_meta_mb"] >= 100.0
    assert out["peak_traced_mb"] < 0.75 * 100  # never the document whole (copy and upload both stream)
    assert out["met"]


def test_a_second_delivery_during_the_upload_to_meta_neither_sends_nor_fails_it(
    aws_stack,
    fake,  # noqa: F811
) -> None:
    """SQS may deliver a record twice: while one attempt uploads the media to Meta (inside the send lease),
    the other finds the lease and steps back; the message is sent once and ends `sent`."""
    import threading

    inbound(aws_stack)
    msg_id = send_image(json.loads(upload(JPEG, "image/jpeg")["body"])["id"])
    (record,) = receive(aws_stack)
    fake.script([{"delay": 1.5}])  # Meta takes its time over the upload
    first: list[list[str]] = []
    slow = threading.Thread(target=lambda: first.append(run_sender(record)))
    slow.start()
    deadline = time.monotonic() + 5
    while not fake.calls("/media") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_sender(again(record)) == [record["messageId"]]  # deferred: the lease is held
    slow.join()
    assert first == [[]]
    assert view(msg_id)["status"] == "sent"
    assert len(fake.calls("/messages")) == 1 and len(fake.calls("/media")) == 1


def test_media_sends_wait_for_an_invocation_with_time_left(aws_stack, fake) -> None:  # noqa: F811
    from domain import delivery
    from shared.secrets import get_secret_field

    inbound(aws_stack)
    msg_id = send_image(json.loads(upload(JPEG, "image/jpeg")["body"])["id"])
    (record,) = receive(aws_stack)
    outcome = delivery.deliver(
        msg_id, 1, time.time(), get_secret_field(c.SECRET_ACCESS_TOKEN), deadline=time.monotonic() + 5
    )
    assert outcome.result == "deferred" and outcome.retry
    assert fake.calls("/media") == [] and view(msg_id)["status"] == "queued"
    assert outbound_item(aws_stack, msg_id)["attempts"] == 0  # no attempt counted, no lease taken
    assert run_sender(record) == [] and view(msg_id)["status"] == "sent"
