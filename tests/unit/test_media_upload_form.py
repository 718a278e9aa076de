"""Meta's multipart media upload: the Graph fake's check (written from Meta's documentation) against a form
built by urllib3 (an independent encoder), and waguard's own streamed form against the fake's check."""

from __future__ import annotations

import hashlib
import os

import pytest
from urllib3.filepost import encode_multipart_formdata

from waguard import graph_fake_media as fake

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)


def form(fields: dict) -> tuple[str, bytes]:
    body, content_type = encode_multipart_formdata(fields)
    return content_type, body


def test_a_form_as_meta_documents_it_is_taken() -> None:
    ct, body = form(
        {"messaging_product": "whatsapp", "type": "image/png", "file": ("a.png", PNG, "image/png")}
    )
    got = fake.parse_upload(ct, body)
    assert isinstance(got, fake.Upload) and got.data == PNG and got.mime_type == "image/png"
    assert got.summary["file"]["sha256"] == hashlib.sha256(PNG).hexdigest()


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"type": "image/png", "file": ("a.png", PNG, "image/png")}, "messaging_product"),
        ({"messaging_product": "whatsapp", "type": "image/png"}, "file is required"),
        ({"messaging_product": "whatsapp", "file": ("a.gif", PNG, "image/gif")}, "not supported"),
        (
            {"messaging_product": "whatsapp", "type": "image/jpeg", "file": ("a.png", PNG, "image/png")},
            "match",
        ),
        (
            {"messaging_product": "whatsapp", "file": ("s.webp", os.urandom(500 * 1024 + 1), "image/webp")},
            "larger",
        ),
    ],
)
def test_what_meta_refuses_is_refused(fields: dict, why: str) -> None:
    ct, body = form(fields)
    got = fake.parse_upload(ct, body)
    assert isinstance(got, str) and why in got


def test_a_json_body_is_not_an_upload() -> None:
    assert isinstance(fake.parse_upload("application/json", b"{}"), str)


def test_waguards_streamed_form_is_what_meta_takes() -> None:
    from domain import media_out
    from store import media

    record = media.Record("med_x", "UPLOADS", "upload", "image/png", len(PNG), "", "media/x", "k", 0)
    head, tail, length = media_out._form(record, "b0undary")
    body = b"".join(head) + PNG + tail
    assert len(body) == length
    got = fake.parse_upload("multipart/form-data; boundary=b0undary", body)
    assert isinstance(got, fake.Upload) and got.data == PNG and got.mime_type == "image/png"


def test_sends_by_id_name_known_media_of_the_right_type() -> None:
    known = {"111": "image/png", "222": "application/pdf"}
    assert fake.check_send_by_id({"type": "image", "image": {"id": "111"}}, known) is None
    assert "not a valid media id" in str(
        fake.check_send_by_id({"type": "image", "image": {"id": "9"}}, known)
    )
    assert "cannot be sent as image" in str(
        fake.check_send_by_id({"type": "image", "image": {"id": "222"}}, known)
    )
    assert fake.check_send_by_id({"type": "image", "image": {"link": "https://x"}}, known) is None
