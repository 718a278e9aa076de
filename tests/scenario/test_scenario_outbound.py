"""Outbound messaging, tried as a new user would: `waguard serve` pointed at the tests' own Graph fake."""

from __future__ import annotations

import json
import time
from typing import Any

from tests import factory as f
from tests.scenario.util import calls_to, exported_texts, quiet, unique_phone
from waguard.demo import ROOT, inbound_text, status_update, wait_for


def _header(call: dict[str, Any], name: str) -> str:
    return next((v for k, v in call["headers"].items() if k.lower() == name.lower()), "")


def _in_window(client: Any, phone: str) -> None:
    assert client.deliver(inbound_text(phone, "hello, a question")).status == 200
    wait_for(lambda: exported_texts(client, phone))


def _status(client: Any, message_id: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.message(message_id).json()
        return body if body.get("status") == wanted else None

    return wait_for(check, timeout=timeout)


def test_reply_inside_the_window_reaches_the_graph_api_once_and_ends_sent(client, graph, stack) -> None:
    phone = unique_phone()
    _in_window(client, phone)
    accepted = client.send({"to": "+" + phone, "purpose": "service", "text": {"body": "Ships today ✓"}})
    assert accepted.status == 202 and accepted.json()["status"] == "queued"
    sent = _status(client, accepted.json()["id"], "sent")
    (call,) = calls_to(graph, phone)
    version = json.loads((ROOT / "cdk.json").read_text())["context"]["waguard"]["graphApiVersion"]
    assert call["path"] == f"/{version}/{stack.secrets['WA_PHONE_NUMBER_ID']}/messages"
    assert _header(call, "Authorization") == "Bearer " + stack.secrets["WA_ACCESS_TOKEN"]
    assert call["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": phone,
        "type": "text",
        "text": {"body": "Ships today ✓", "preview_url": False},
    }
    assert sent["wamid"] == call["response"]["messages"][0]["id"]


def test_throttled_twice_ends_sent_after_exactly_three_calls(client, graph) -> None:
    phone = unique_phone()
    _in_window(client, phone)
    quiet(graph)
    graph.script([{"code": 130429}, {"code": 130429}])
    accepted = client.send({"to": phone, "purpose": "service", "text": {"body": "retry me"}})
    assert accepted.status == 202
    _status(client, accepted.json()["id"], "sent", timeout=90)
    assert len(calls_to(graph, phone)) == 3


def test_a_permanent_error_ends_failed_with_metas_code(client, graph) -> None:
    phone = unique_phone()
    _in_window(client, phone)
    quiet(graph)
    graph.script([{"code": 131026}])
    accepted = client.send({"to": phone, "purpose": "service", "text": {"body": "undeliverable"}})
    failed = _status(client, accepted.json()["id"], "failed")
    assert failed["error"]["code"] == 131026 and failed["error"]["title"]
    assert len(calls_to(graph, phone)) == 1


def test_refused_sends_never_reach_the_graph_api(client, graph) -> None:
    phone = unique_phone()
    outside = client.send({"to": phone, "purpose": "service", "text": {"body": "unsolicited"}})
    assert outside.status == 422 and outside.json()["error"] == "outside_service_window"
    no_consent = client.send({"to": phone, "purpose": "marketing", "template": f.template_for("marketing")})
    assert no_consent.status == 403 and no_consent.json()["error"] == "consent_required"
    bad = client.send({"to": phone, "purpose": "service", "text": {"body": ""}})
    assert bad.status == 400 and bad.json()["error"] == "invalid_body"
    time.sleep(2)
    assert calls_to(graph, phone) == []


def test_statuses_never_move_backwards(client, graph) -> None:
    phone = unique_phone()
    _in_window(client, phone)
    accepted = client.send({"to": phone, "purpose": "service", "text": {"body": "status check"}})
    wamid = _status(client, accepted.json()["id"], "sent")["wamid"]
    for status in ("read", "delivered", "sent"):
        assert client.deliver(status_update(phone, wamid, status)).status == 200
    _status(client, accepted.json()["id"], "read")
    time.sleep(1.5)
    assert client.message(accepted.json()["id"]).json()["status"] == "read"


def test_idempotency_key_returns_the_same_answer_and_sends_once(client, graph) -> None:
    phone = unique_phone()
    _in_window(client, phone)
    body = {"to": phone, "purpose": "service", "text": {"body": "exactly once"}}
    first = client.send(body, idempotency_key="order-1042-confirmation")
    again = client.send(body, idempotency_key="order-1042-confirmation")
    assert first.status == again.status == 202 and first.json() == again.json()
    _status(client, first.json()["id"], "sent")
    time.sleep(1.5)
    assert len(calls_to(graph, phone)) == 1
