"""Rich messages through `waguard serve`, pointed at the tests' own Graph fake: every kind reaches the
Graph API as a body Meta's published schema accepts, replies and reactions carry the right wamid,
refused bodies call nothing, read receipts reach Meta, and inbound answers are exported with the
waguard id of the message they answer."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from tests.scenario.util import unique_phone
from waguard import meta_schema
from waguard.demo import envelope, inbound_text, wait_for

LINK = "https://example.com/files/"
KINDS: dict[str, dict[str, Any]] = {
    "text": {"text": {"body": "See you at 10", "preview_url": True}},
    "image": {"image": {"link": LINK + "a.jpg", "caption": "your receipt"}},
    "video": {"video": {"link": LINK + "a.mp4"}},
    "audio": {"audio": {"link": LINK + "a.ogg"}},
    "document": {"document": {"link": LINK + "a.pdf", "caption": "invoice", "filename": "invoice.pdf"}},
    "sticker": {"sticker": {"link": LINK + "a.webp"}},
    "button": {
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Your order"},
            "body": {"text": "Deliver tomorrow?"},
            "footer": {"text": "Reply below"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        }
    },
    "list": {
        "interactive": {
            "type": "list",
            "body": {"text": "Pick a slot"},
            "action": {
                "button": "Slots",
                "sections": [
                    {"title": "Morning", "rows": [{"id": "m9", "title": "9:00", "description": "early"}]},
                    {"title": "Afternoon", "rows": [{"id": "a2", "title": "14:00"}]},
                ],
            },
        }
    },
    "cta_url": {
        "interactive": {
            "type": "cta_url",
            "body": {"text": "Track your parcel"},
            "action": {"name": "cta_url", "parameters": {"display_text": "Track", "url": LINK + "t"}},
        }
    },
    "location": {"location": {"latitude": 52.52, "longitude": 13.405, "name": "Shop", "address": "Main 1"}},
}


def _calls(graph: Any, phone: str) -> list[dict[str, Any]]:
    return [c for c in graph.calls() if isinstance(c["body"], dict) and c["body"].get("to") == phone]


def _open_window(client: Any, phone: str) -> str:
    """The contact writes in; returns waguard's id of that inbound message (from the export)."""
    assert client.deliver(inbound_text(phone, "hi there")).status == 200

    def inbound_id() -> str | None:
        reply = client.export(phone)
        if reply.status != 200:
            return None
        found = [m["id"] for m in reply.json()["messages"] if m["direction"] == "in"]
        return found[-1] if found else None

    return wait_for(inbound_id, timeout=60)


def _sent(client: Any, message_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.message(message_id).json()
        return body if body.get("status") in ("sent", "failed") else None

    got = wait_for(check, timeout=60)
    assert got["status"] == "sent", got
    return got


def _assert_metas_schema(body: dict[str, Any]) -> None:
    schema = meta_schema.load()
    if schema is not None:  # the fake refused anything else already; this names the reason if not
        assert schema.message_errors(body) == []


def _inbound(phone: str, msg: dict[str, Any]) -> dict[str, Any]:
    wamid = "wamid." + secrets.token_hex(16)
    base = {"from": phone, "id": wamid, "timestamp": str(int(time.time()))}
    return envelope({"contacts": [{"wa_id": phone, "profile": {"name": "U"}}], "messages": [{**base, **msg}]})


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_reaches_the_graph_api_as_metas_body(client, graph, kind) -> None:
    phone = unique_phone()
    _open_window(client, phone)
    accepted = client.send({"to": phone, "purpose": "service", **KINDS[kind]})
    assert accepted.status == 202, accepted.json()
    sent = _sent(client, accepted.json()["id"])
    (call,) = _calls(graph, phone)
    body = call["body"]
    _assert_metas_schema(body)
    meta_kind = "interactive" if kind in ("button", "list", "cta_url") else kind
    assert body["type"] == meta_kind and sent["wamid"] == call["response"]["messages"][0]["id"]
    expected = dict(KINDS[kind][meta_kind])
    if kind == "text":
        expected = {"body": "See you at 10", "preview_url": True}
    assert body[meta_kind] == expected
    doc = client.export(phone).json()
    (out,) = [m for m in doc["messages"] if m["direction"] == "out"]
    assert out["type"] == meta_kind and out["id"] == accepted.json()["id"]
    if kind != "text":
        assert out["content"] == {meta_kind: KINDS[kind][meta_kind]}


def test_replies_and_reactions_carry_metas_wamid(client, graph) -> None:
    phone = unique_phone()
    inbound_wamid = "wamid." + secrets.token_hex(16)
    assert client.deliver(inbound_text(phone, "is it in stock?", wamid=inbound_wamid)).status == 200
    in_id = wait_for(
        lambda: (
            next(
                (m["id"] for m in client.export(phone).json().get("messages", []) if m["direction"] == "in"),
                None,
            )
            if client.export(phone).status == 200
            else None
        ),
        timeout=60,
    )
    assert in_id.startswith("in_") and inbound_wamid not in in_id
    reply = client.send({"to": phone, "purpose": "service", "reply_to": in_id, "text": {"body": "yes"}})
    react = client.send({"to": phone, "purpose": "service", "reaction": {"message_id": in_id, "emoji": "👍"}})
    assert reply.status == react.status == 202
    first = _sent(client, reply.json()["id"])
    _sent(client, react.json()["id"])
    by_type = {c["body"]["type"]: c["body"] for c in _calls(graph, phone)}
    assert by_type["text"]["context"] == {"message_id": inbound_wamid}
    assert by_type["reaction"]["reaction"] == {"message_id": inbound_wamid, "emoji": "👍"}
    for body in by_type.values():
        _assert_metas_schema(body)
    # a reply to our own outbound message carries its wamid; removing the reaction is ""
    again = client.send(
        {"to": phone, "purpose": "service", "reaction": {"message_id": reply.json()["id"], "emoji": ""}}
    )
    _sent(client, again.json()["id"])
    last = _calls(graph, phone)[-1]["body"]
    assert last["reaction"] == {"message_id": first["wamid"], "emoji": ""}


def test_refused_bodies_never_reach_the_graph_api(client, graph, stack) -> None:
    phone, other = unique_phone(), unique_phone()
    _open_window(client, phone)
    others_id = _open_window(client, other)
    too_many = {"type": "reply", "reply": {"id": "x", "title": "x"}}
    cases = [
        ({"reply_to": others_id, "text": {"body": "x"}}, "unknown_message", "reply_to"),
        ({"reaction": {"message_id": others_id, "emoji": "👍"}}, "unknown_message", "reaction.message_id"),
        ({"reaction": {"message_id": "msg_" + "0" * 24, "emoji": "👍"}}, "unknown_message", "reaction"),
        ({"image": {"media_id": "med_unknown"}}, "unknown_media", "image.media_id"),
        ({"from": "999999", "text": {"body": "x"}}, "unknown_business_number", "from"),
        (
            {"interactive": {**KINDS["button"]["interactive"], "action": {"buttons": [too_many] * 4}}},
            "invalid_body",
            "buttons",
        ),
        ({"location": {"latitude": 91, "longitude": 0}}, "invalid_body", "latitude"),
        ({"image": {"link": "http://example.com/a.jpg"}}, "invalid_body", "link"),
        ({"reaction": {"message_id": others_id, "emoji": "ok"}}, "invalid_body", "emoji"),
        ({"interactive": {"type": "list", "body": {"text": "x"}}}, "invalid_body", "action"),
    ]
    for extra, code, field in cases:
        reply = client.send({"to": phone, "purpose": "service", **extra})
        assert (reply.status, reply.json()["error"]) == (400, code), (extra, reply.json())
        assert field in reply.json()["message"], (field, reply.json())
    fresh = unique_phone()  # no window: every free-form kind is 422, templates stay on consent (403)
    for kind in ("image", "location", "button"):
        reply = client.send({"to": fresh, "purpose": "service", **KINDS[kind]})
        assert (reply.status, reply.json()["error"]) == (422, "outside_service_window")
    time.sleep(2)
    assert _calls(graph, phone) == [] and _calls(graph, fresh) == []


def test_read_receipt_with_typing_reaches_meta(client, graph, stack) -> None:
    phone = unique_phone()
    inbound_wamid = "wamid." + secrets.token_hex(16)
    assert client.deliver(inbound_text(phone, "hello?", wamid=inbound_wamid)).status == 200
    in_id = wait_for(
        lambda: next(
            (m["id"] for m in (client.export(phone).json().get("messages") or []) if m["direction"] == "in"),
            None,
        ),
        timeout=60,
    )
    read = client.request("POST", f"/messages/{in_id}/read", json.dumps({"typing": True}).encode())
    assert (read.status, read.json()) == (200, {"read": True})
    plain = client.request("POST", f"/messages/{in_id}/read")
    assert (plain.status, plain.json()) == (200, {"read": True})
    calls = [
        c
        for c in graph.calls()
        if isinstance(c["body"], dict) and c["body"].get("message_id") == inbound_wamid
    ]
    assert [c["body"] for c in calls] == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": inbound_wamid,
            "typing_indicator": {"type": "text"},
        },
        {"messaging_product": "whatsapp", "status": "read", "message_id": inbound_wamid},
    ]
    assert calls[0]["path"].endswith(f"/{stack.secrets['WA_PHONE_NUMBER_ID']}/messages")
    schema = meta_schema.load()
    if schema is not None:
        assert all(schema.read_errors(c["body"]) == [] for c in calls)
    assert client.request("POST", "/messages/in_" + "0" * 24 + "/read").status == 404
    outbound = client.send({"to": phone, "purpose": "service", "text": {"body": "x"}}).json()["id"]
    assert client.request("POST", f"/messages/{outbound}/read").status == 404
    bad = client.request("POST", f"/messages/{in_id}/read", json.dumps({"typing": "yes"}).encode())
    assert (bad.status, bad.json()["error"]) == (400, "invalid_body")
    if "sender" in stack.roles:  # the contract's role table: a sender may not mark messages read
        refused = client.request("POST", f"/messages/{in_id}/read", key=stack.roles["sender"])
        assert (refused.status, refused.json()["error"]) == (403, "forbidden")


def test_inbound_answers_are_exported_with_the_id_they_answer(client, graph) -> None:
    phone = unique_phone()
    _open_window(client, phone)
    sent_id = client.send({"to": phone, "purpose": "service", **KINDS["button"]}).json()["id"]
    wamid = _sent(client, sent_id)["wamid"]
    context = {"from": "15550783881", "id": wamid}
    button = {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    row = {"type": "list_reply", "list_reply": {"id": "m9", "title": "9:00", "description": "x"}}
    answers = [
        {"type": "interactive", "context": context, "interactive": button},
        {"type": "interactive", "context": context, "interactive": row},
        {"type": "reaction", "reaction": {"message_id": wamid, "emoji": "❤️"}},
        {"type": "text", "context": context, "text": {"body": "and tomorrow?"}},
    ]
    for msg in answers:
        assert client.deliver(_inbound(phone, msg)).status == 200

    def answered() -> list[dict[str, Any]] | None:
        got = [m for m in client.export(phone).json()["messages"] if m["direction"] == "in"]
        return got if len(got) == 1 + len(answers) else None

    inbound = wait_for(answered, timeout=60)[1:]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for m in inbound:
        by_type.setdefault(m["type"], []).append(m)
    replies = by_type["interactive"]
    assert {m["reply_to"] for m in replies} == {sent_id}
    assert sorted(m["content"]["selection"]["id"] for m in replies) == ["m9", "yes"]
    assert by_type["reaction"][0]["reaction"] == {"message_id": sent_id, "emoji": "❤️"}
    assert by_type["text"][0]["reply_to"] == sent_id and by_type["text"][0]["text"] == "and tomorrow?"
    assert all(m["id"].startswith("in_") for m in inbound)
