"""Two business numbers on one `waguard serve` (issue 17), tried over HTTP as a business would: Meta's
`metadata.phone_number_id` routes each delivery; the service window is per number; a reply goes out
from the number the contact wrote to; a delivery for a number not configured is answered, not stored."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import ROOT, Client, LocalStack, inbound_text, wait_for

SUPPORT, SALES = "111000111000111", "222000222000222"
UNKNOWN = "999000999000999"
VERSION = json.loads((ROOT / "cdk.json").read_text())["context"]["waguard"]["graphApiVersion"]


@pytest.fixture(scope="module")
def two(graph: Any) -> Iterator[LocalStack]:
    local = LocalStack(
        env_extra={"WA_PHONE_NUMBER_ID": f"{SUPPORT},{SALES}", "WA_GRAPH_API_URL": graph.base_url}
    ).start()
    yield local
    code = local.stop()
    assert code == 0, "waguard serve did not stop cleanly:\n" + "\n".join(local.lines[-30:])


@pytest.fixture
def client(two: LocalStack) -> Client:
    return two.client()


def on(number: str, phone: str, text: str, wamid: str | None = None) -> dict[str, Any]:
    """`inbound_text`, as Meta delivers it for business number `number`."""
    body = inbound_text(phone, text, wamid=wamid)
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number
    return body


def _calls_to(graph: Any, phone: str) -> list[dict[str, Any]]:
    return [c for c in graph.calls() if isinstance(c["body"], dict) and c["body"].get("to") == phone]


def _sent(client: Client, message_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (b := client.message(message_id).json()).get("status") == "sent" and b, timeout=60
    )


def test_serve_prints_the_business_numbers_default_first(two: LocalStack) -> None:
    assert f"waguard: business-numbers {SUPPORT} {SALES} default={SUPPORT}" in two.lines


def test_the_window_opened_on_one_number_is_closed_on_the_other(client: Client, graph: Any) -> None:
    phone = unique_phone()
    assert client.deliver(on(SALES, phone, "a question for sales")).status == 200
    wait_for(lambda: exported_texts(client, phone), timeout=60)

    refused = client.send({"to": phone, "purpose": "service", "text": {"body": "x"}, "from": SUPPORT})
    assert (refused.status, refused.json()["error"]) == (422, "outside_service_window")
    unknown = client.send({"to": phone, "purpose": "service", "text": {"body": "x"}, "from": UNKNOWN})
    assert (unknown.status, unknown.json()["error"]) == (400, "unknown_business_number")

    # No `from`: the reply goes out from the number the contact wrote to (not the default).
    reply = client.send({"to": phone, "purpose": "service", "text": {"body": "sales here"}})
    assert reply.status == 202, reply.text
    _sent(client, reply.json()["id"])
    (call,) = _calls_to(graph, phone)
    assert call["path"] == f"/{VERSION}/{SALES}/messages"

    conversation = client.conversation(phone).json()["messages"]
    assert [(m["direction"], m["business_number"]) for m in conversation] == [("in", SALES), ("out", SALES)]


def test_each_number_replies_on_its_own_path_and_read_receipts_go_where_the_message_came_in(
    client: Client, graph: Any
) -> None:
    phone = unique_phone()
    wamid = "wamid." + secrets.token_hex(16)
    assert client.deliver(on(SALES, phone, "first, to sales", wamid=wamid)).status == 200
    wait_for(lambda: exported_texts(client, phone), timeout=60)
    time.sleep(1.1)  # the second message is newer by Meta's timestamp (seconds)
    assert client.deliver(on(SUPPORT, phone, "then, to support")).status == 200
    wait_for(lambda: len(exported_texts(client, phone)) == 2, timeout=60)

    by_default = client.send({"to": phone, "purpose": "service", "text": {"body": "support here"}})
    explicit = client.send({"to": phone, "purpose": "service", "text": {"body": "sales too"}, "from": SALES})
    assert (by_default.status, explicit.status) == (202, 202)
    _sent(client, by_default.json()["id"])
    _sent(client, explicit.json()["id"])
    paths = sorted(c["path"] for c in _calls_to(graph, phone))
    assert paths == sorted([f"/{VERSION}/{SUPPORT}/messages", f"/{VERSION}/{SALES}/messages"])
    bodies = {c["path"]: c["body"]["text"]["body"] for c in _calls_to(graph, phone)}
    assert bodies == {
        f"/{VERSION}/{SUPPORT}/messages": "support here",
        f"/{VERSION}/{SALES}/messages": "sales too",
    }

    first = next(m for m in client.export(phone).json()["messages"] if m.get("wamid") == wamid)
    assert first["business_number"] == SALES
    assert client.request("POST", f"/messages/{first['id']}/read").status == 200
    (receipt,) = [
        c for c in graph.calls() if isinstance(c["body"], dict) and c["body"].get("message_id") == wamid
    ]
    assert receipt["path"] == f"/{VERSION}/{SALES}/messages"


def test_a_delivery_for_a_number_not_configured_is_answered_and_not_stored(client: Client) -> None:
    phone, known = unique_phone(), unique_phone()
    assert client.deliver(on(UNKNOWN, phone, "not for this deployment")).status == 200
    assert client.deliver(on(SUPPORT, known, "for us")).status == 200  # processed after the other one
    wait_for(lambda: exported_texts(client, known), timeout=60)
    time.sleep(1)
    assert client.export(phone).status == 404
    assert client.conversation(phone).status == 404
    refused = client.send({"to": phone, "purpose": "service", "text": {"body": "x"}})
    assert (refused.status, refused.json()["error"]) == (422, "outside_service_window")  # opened nothing
