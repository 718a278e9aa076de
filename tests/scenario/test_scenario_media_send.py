"""Media the business sends, through `waguard serve`: `POST /media` uploads, `POST /messages` by `media_id`.

The Graph fake checks Meta's multipart upload and refuses a send naming a media id it never handed out;
the upload fails once at Meta and is retried. The contact gets its own sealed copy: the export lists it,
the conversation names it, `GET /media/{id}` serves the bytes, and an erasure takes it (not the upload).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from tests.scenario.test_scenario_media import _all_objects
from tests.scenario.util import calls_to, quiet, unique_phone
from waguard.demo import inbound_text, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(1200 * 1024)  # two chunks of the streaming cipher


def _status(client: Any, msg_id: str) -> str | None:
    reply = client.message(msg_id)
    return reply.json().get("status") if reply.status == 200 else None


def test_an_upload_is_sent_by_id_and_the_contact_holds_its_own_copy(client, stack, graph, aws) -> None:
    sender, agent = stack.roles["sender"], stack.roles["agent"]
    phone = unique_phone()
    assert client.deliver(inbound_text(phone, "send me the photo")).status == 200
    wait_for(lambda: client.export(phone).status == 200, timeout=30)

    uploaded = client.upload(PNG, "image/png", key=sender)
    assert uploaded.status == 201, uploaded.body
    upload = uploaded.json()
    assert upload["mime_type"] == "image/png" and upload["size"] == len(PNG)
    assert upload["id"].startswith("med_")

    quiet(graph)  # no other test's send takes the scripted failure
    graph.reset()
    graph.script([{"code": 131000}])  # Meta's upload fails once: retried
    body = {"to": phone, "purpose": "service", "image": {"media_id": upload["id"], "caption": "the photo"}}
    accepted = client.send(body, key=sender)
    assert accepted.status == 202, accepted.body
    msg_id = accepted.json()["id"]
    assert wait_for(lambda: _status(client, msg_id) == "sent", timeout=60)

    digest = hashlib.sha256(PNG).hexdigest()
    uploads = [
        c
        for c in graph.calls("/media")
        if isinstance(c["body"], dict) and (c["body"].get("file") or {}).get("sha256") == digest
    ]
    assert [c["status"] for c in uploads] == [500, 200]
    assert all(c["authorized"] for c in uploads)
    assert uploads[-1]["body"]["type"] == "image/png"
    assert uploads[-1]["body"]["file"] == {"size": len(PNG), "sha256": digest}
    (sent,) = calls_to(graph, phone, "/messages")
    assert sent["body"]["image"] == {"id": uploads[-1]["response"]["id"], "caption": "the photo"}

    (held,) = client.export(phone).json()["media"]
    assert held["direction"] == "out" and held["mime_type"] == "image/png" and held["size"] == len(PNG)
    assert held["id"] != upload["id"]  # the contact's own copy, sealed under the contact's key
    entries = client.conversation(phone, key=agent).json()["messages"]
    out = next(m for m in entries if m["id"] == msg_id)
    assert out["media"] == {"id": held["id"], "caption": "the photo"}
    copy = client.media(held["id"], key=agent)
    assert copy.status == 200 and copy.body == PNG
    part = client.media(held["id"], key=agent, headers={"Range": "bytes=1048570-1048599"})
    assert part.status == 206 and part.body == PNG[1048570:1048600]
    assert part.headers.get("Content-Range") == f"bytes 1048570-1048599/{len(PNG)}"

    assert client.erase(phone).status == 200
    assert client.media(held["id"], key=agent).status == 404
    assert client.media(upload["id"], key=agent).body == PNG  # the business's upload is not the contact's
    items = [i for table in aws.all_items().values() for i in table]
    audit = [i for i in items if i.get("route") == "GET /media/{id}"]
    assert audit and all(phone not in str(i) for i in audit)
    assert any(i.get("subject") for i in audit if i.get("outcome") == "200")


def test_uploads_meta_would_refuse_are_400_and_nothing_is_kept(client, stack, aws) -> None:
    sender = stack.roles["sender"]
    before = len(_all_objects(aws))
    cases = [
        (b"<html></html>", "text/html", "unsupported_media"),
        (b"", "image/png", "invalid_body"),
        (os.urandom(500 * 1024 + 1), "image/webp", "too_large"),
    ]
    for data, content_type, code in cases:
        reply = client.upload(data, content_type, key=sender)
        assert (reply.status, reply.json()["error"]) == (400, code), (content_type, reply.body)
    assert len(_all_objects(aws)) == before
    denied = client.upload(PNG, "image/png", key=stack.roles["privacy-officer"])
    assert denied.status == 403


def test_a_media_id_must_be_held_for_this_conversation_and_fit_the_kind(client, stack, graph) -> None:
    sender = stack.roles["sender"]
    phone, other = unique_phone(), unique_phone()
    for who in (phone, other):
        assert client.deliver(inbound_text(who, "hi")).status == 200
    wait_for(lambda: client.export(phone).status == 200 and client.export(other).status == 200, timeout=30)
    upload = client.upload(b"%PDF-1.7\n" + os.urandom(2048), "application/pdf", key=sender).json()
    graph.reset()
    refused = [
        ({"video": {"media_id": upload["id"]}}, "invalid_body", "video.media_id"),
        ({"image": {"media_id": "med_" + "0" * 24}}, "unknown_media", "image.media_id"),
    ]
    for kind, code, field in refused:
        reply = client.send({"to": phone, "purpose": "service", **kind}, key=sender)
        assert reply.status == 400 and reply.json()["error"] == code and field in reply.json()["message"]
    ok = client.send(
        {
            "to": phone,
            "purpose": "service",
            "document": {"media_id": upload["id"], "filename": "invoice.pdf"},
        },
        key=sender,
    )
    assert ok.status == 202
    assert wait_for(lambda: _status(client, ok.json()["id"]) == "sent", timeout=60)
    (held,) = client.export(phone).json()["media"]
    # The first contact's copy is not media of the second contact's conversation.
    reply = client.send({"to": other, "purpose": "service", "document": {"media_id": held["id"]}}, key=sender)
    assert reply.status == 400 and reply.json()["error"] == "unknown_media"
    assert len(calls_to(graph, phone, "/messages")) == 1 and calls_to(graph, other) == []
