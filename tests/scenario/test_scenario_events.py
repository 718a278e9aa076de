"""Business events through `waguard serve --forward-events URL`, received by a local endpoint of the tests,
as a business's bot or CRM would receive them from the deployed API destination."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.scenario.util import unique_phone
from waguard import aws
from waguard.demo import LocalStack, inbound_text, wait_for

NAME = "Demo User"  # inbound_text's profile name
ENVELOPE_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


class Endpoint(ThreadingHTTPServer):
    """Records every POST; answers 500 to the first `fail_first[detail-type]` deliveries of that type."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", aws.free_port()), _Handler)
        self.received: list[dict[str, Any]] = []
        self.fail_first: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"

    def events(self, detail_type: str | None = None, accepted: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r["event"]
                for r in self.received
                if (detail_type is None or r["event"].get("detail-type") == detail_type)
                and (r["status"] == 200 or not accepted)
            ]


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        event = json.loads(body)
        with self.server.lock:
            left = self.server.fail_first.get(event.get("detail-type"), 0)
            status = 500 if left else 200
            if left:
                self.server.fail_first[event["detail-type"]] = left - 1
            self.server.received.append(
                {"event": event, "status": status, "key": self.headers.get("X-Waguard-Events-Key")}
            )
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def forwarding(endpoint: Endpoint, graph: Any) -> Iterator[LocalStack]:
    local = LocalStack(env_extra={"WA_GRAPH_API_URL": graph.base_url}, forward_events=endpoint.url).start()
    yield local
    assert local.stop() == 0


def _by_contact(endpoint: Endpoint, ref: str, detail_type: str) -> list[dict[str, Any]]:
    return [e for e in endpoint.events(detail_type) if e["detail"].get("contact") == ref]


def test_every_event_type_arrives_with_the_key_and_no_personal_data(forwarding, endpoint, graph) -> None:
    client = forwarding.client()
    phone = unique_phone()
    assert forwarding.events_key
    assert client.deliver(inbound_text(phone, "Where is my parcel?")).status == 200
    received = wait_for(
        lambda: [
            e
            for e in endpoint.events("message.received")
            if e["detail"]["message"].get("text") == "Where is my parcel?"
        ]
    )
    (event,) = received
    assert set(event) == ENVELOPE_KEYS and event["source"] == "waguard" and event["resources"] == []
    ref = event["detail"]["contact"]
    assert ref.startswith("ct_") and event["detail"]["business_number"]
    # The bot answers by reference: Meta gets the number, the business never held it.
    reply = client.send({"to": ref, "purpose": "service", "text": {"body": "Tomorrow."}})
    assert reply.status == 202
    wait_for(lambda: _by_contact(endpoint, ref, "message.status"))
    (status,) = _by_contact(endpoint, ref, "message.status")
    assert status["detail"]["message"] == {"id": reply.json()["id"], "status": "sent"}
    assert [
        c["body"]["to"] for c in graph.calls() if c["body"].get("text", {}).get("body") == "Tomorrow."
    ] == [phone]
    assert client.set_consent(ref, "utility", "granted", "crm").status == 200
    wait_for(lambda: _by_contact(endpoint, ref, "consent.changed"))
    erased = client.erase(ref)
    assert erased.status == 200
    wait_for(lambda: _by_contact(endpoint, ref, "contact.erased"))
    assert (
        _by_contact(endpoint, ref, "contact.erased")[0]["detail"]["receipt_id"] == erased.json()["receipt_id"]
    )
    mine = [r for r in endpoint.received if r["event"]["detail"].get("contact") == ref]
    assert {r["key"] for r in mine} == {forwarding.events_key}
    text = json.dumps([r["event"] for r in mine])
    wamid = client.message(reply.json()["id"]).json().get("wamid")
    for secret in (phone, NAME, "wamid.", *([wamid] if wamid else [])):
        assert secret not in text, secret


def test_a_failing_endpoint_gets_the_same_event_id_again(forwarding, endpoint) -> None:
    client = forwarding.client()
    phone = unique_phone()
    endpoint.fail_first["consent.changed"] = 2
    assert client.set_consent(phone, "marketing", "granted", "web_form").status == 200

    def tries() -> list[dict[str, Any]]:
        return [
            r
            for r in endpoint.received
            if r["event"]["detail-type"] == "consent.changed"
            and r["event"]["detail"]["purpose"] == "marketing"
            and r["event"]["detail"]["source"] == "web_form"
        ]

    wait_for(lambda: any(r["status"] == 200 for r in tries()), timeout=60)
    attempts = tries()
    assert [r["status"] for r in attempts] == [500, 500, 200]
    assert len({r["event"]["id"] for r in attempts}) == 1


def test_the_conversation_by_reference_shows_both_directions(forwarding, endpoint) -> None:
    client = forwarding.client()
    phone = unique_phone()
    assert client.deliver(inbound_text(phone, "hello bot")).status == 200
    event = wait_for(
        lambda: next(
            (
                e
                for e in endpoint.events("message.received")
                if e["detail"]["message"].get("text") == "hello bot"
            ),
            None,
        )
    )
    ref = event["detail"]["contact"]
    assert client.send({"to": ref, "purpose": "service", "text": {"body": "hello human"}}).status == 202
    page = client.conversation(ref).json()
    assert page["contact"] == ref
    assert [(m["direction"], m["text"]) for m in page["messages"]] == [
        ("in", "hello bot"),
        ("out", "hello human"),
    ]
    assert page["messages"][0]["id"] == event["detail"]["message"]["id"]
    assert phone not in json.dumps(page)
