"""Privacy operations through `waguard serve` (own stack: a privacy notice set with WA_PRIVACY_NOTICE and
events forwarded to a local endpoint): every privacy-request route, the WhatsApp keywords, the notice (once,
not twice, again on the keyword and after an erasure), restriction end to end with the events withheld,
and the roles."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.scenario.test_scenario_events import Endpoint
from tests.scenario.util import calls_to, unique_phone
from waguard.demo import Client, LocalStack, inbound_text, wait_for

NOTICE = "Privacy notice: we keep your messages 90 days to answer you. Write PRIVACY to read this again."


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def local(endpoint: Endpoint, graph: Any) -> Iterator[LocalStack]:
    env = {"WA_GRAPH_API_URL": graph.base_url, "WA_PRIVACY_NOTICE": NOTICE}
    stack = LocalStack(env_extra=env, forward_events=endpoint.url).start()
    yield stack
    assert stack.stop() == 0


@pytest.fixture
def client(local: LocalStack) -> Client:
    return local.client()


def texts_to(graph: Any, phone: str) -> list[str]:
    return [c["body"]["text"]["body"] for c in calls_to(graph, phone) if c["body"].get("type") == "text"]


def events_of(endpoint: Endpoint, ref: str) -> list[str]:
    """The contact's events in order of arrival, each once: delivery to an endpoint is at least once (one
    answered too slowly under load is sent again, with the same id)."""
    seen: set[str] = set()
    out = []
    for e in endpoint.events():
        if e["detail"].get("contact") == ref and e["id"] not in seen:
            seen.add(e["id"])
            out.append(e["detail-type"])
    return out


def write(client: Client, phone: str, text: str) -> None:
    assert client.deliver(inbound_text(phone, text)).status == 200


def test_every_request_route(client: Client, endpoint: Endpoint) -> None:
    phone = unique_phone()
    write(client, phone, "hello")
    wait_for(lambda: client.export(phone).status == 200)
    late = client.open_request(
        {
            "contact": phone,
            "type": "access",
            "law": "gdpr",
            "received_at": "2026-01-31T09:00:00Z",
            "channel": "email",
        }
    )
    assert late.status == 201, late.text
    got = late.json()
    assert (
        got["due_at"] == "2026-02-28T09:00:00Z"
        and got["status"] == "open"
        and got["contact"].startswith("ct_")
    )
    ccpa = client.open_request({"contact": phone, "type": "objection", "law": "ccpa"}).json()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        client.open_request({"contact": phone, "type": "access", "law": "gdpr", "received_at": future}).status
        == 400
    )
    listed = [r["id"] for r in client.requests().json()["requests"]]
    assert listed.index(got["id"]) < listed.index(ccpa["id"])  # soonest due first
    assert got["id"] in [r["id"] for r in client.requests("overdue").json()["requests"]]
    assert ccpa["id"] not in [r["id"] for r in client.requests("overdue").json()["requests"]]
    assert client.privacy_request(got["id"]).json()["overdue"] is True
    assert client.privacy_request("dsr_nothing").status == 404
    extended = client.act(got["id"], "extend", {"reason": "many systems to search"})
    assert extended.status == 200 and extended.json()["due_at"] == "2026-04-28T09:00:00Z"
    again = client.act(got["id"], "extend", {"reason": "again"})
    assert (again.status, again.json()["error"]) == (409, "already_extended")
    done = client.act(got["id"], "complete")
    assert done.status == 200 and done.json()["status"] == "completed"
    export = client.privacy_request(got["id"], "/export")
    held = export.json()["messages"]
    assert export.status == 200 and [m.get("text") for m in held if m["direction"] == "in"] == ["hello"]
    assert [m.get("text") for m in held if m["direction"] == "out"] == [NOTICE]
    assert client.act(got["id"], "complete").status == 409
    rejected = client.act(ccpa["id"], "reject", {"reason": "no marketing data held"})
    assert rejected.status == 200 and rejected.json()["status"] == "rejected"
    assert ccpa["id"] in [r["id"] for r in client.requests("rejected").json()["requests"]]
    assert got["id"] in [r["id"] for r in client.requests("completed").json()["requests"]]
    wait_for(
        lambda: [
            e for e in endpoint.events("privacy.request_completed") if e["detail"]["request"] == got["id"]
        ]
    )
    told = [e["detail"] for e in endpoint.events() if e["detail-type"].startswith("privacy.")]
    assert all(set(d) == {"request", "type", "law", "due_at"} for d in told) and phone not in str(told)


def test_keywords_open_requests_and_the_notice_is_given_once_and_again(client: Client, graph: Any) -> None:
    phone = unique_phone()
    write(client, phone, "hello")
    wait_for(lambda: texts_to(graph, phone) == [NOTICE])
    write(client, phone, "hello again")
    wait_for(lambda: "hello again" in [m.get("text") for m in client.export(phone).json()["messages"]])
    write(client, phone, "Mes données")
    answer = wait_for(lambda: [t for t in texts_to(graph, phone) if "dsr_" in t])
    assert texts_to(graph, phone).count(NOTICE) == 1  # once, not twice
    opened = [r for r in client.requests("open").json()["requests"] if r["id"] in answer[0]]
    assert len(opened) == 1 and opened[0]["channel"] == "whatsapp" and opened[0]["type"] == "access"
    assert opened[0]["law"] == "gdpr" and opened[0]["due_at"][:10] in answer[0]
    write(client, phone, "privacy")
    wait_for(lambda: texts_to(graph, phone).count(NOTICE) == 2)  # again on the keyword
    export = client.export(phone).json()
    assert len(export["notices"]) == 2 and all(n["version"] == "local" for n in export["notices"])
    assert "Mes données" in [m.get("text") for m in export["messages"]]  # the keyword is kept
    write(client, phone, "DELETE MY DATA")
    wait_for(lambda: len([t for t in texts_to(graph, phone) if "dsr_" in t]) == 2)
    erasure = [
        r
        for r in client.requests("open").json()["requests"]
        if r["type"] == "erasure" and r["channel"] == "whatsapp"
    ]
    mine = [r for r in erasure if r["contact"] == opened[0]["contact"]]
    assert len(mine) == 1
    done = client.act(mine[0]["id"], "complete")
    assert done.status == 200 and done.json()["receipt_id"].startswith("rcpt_")
    assert client.export(phone).status == 404
    assert client.privacy_request(mine[0]["id"]).json()["status"] == "completed"  # survives the erasure
    write(client, phone, "back again")  # the first message after the erasure: the notice again
    wait_for(lambda: texts_to(graph, phone).count(NOTICE) == 3)


def test_restriction_end_to_end(client: Client, endpoint: Endpoint, graph: Any) -> None:
    phone = unique_phone()
    write(client, phone, "first")
    ref = wait_for(lambda: client.conversation(phone).json().get("contact"))
    wait_for(lambda: "message.received" in events_of(endpoint, ref))
    restricted = client.restrict(ref, True, "accuracy contested")
    assert restricted.status == 200
    assert restricted.json()["contact"] == ref and restricted.json()["restricted"] is True
    wait_for(lambda: "contact.restricted" in events_of(endpoint, ref))
    before = len(events_of(endpoint, ref))
    sent = client.send({"to": ref, "purpose": "service", "text": {"body": "may I help?"}})
    assert (sent.status, sent.json()["error"]) == (403, "restricted")
    read = client.conversation(ref)
    assert (read.status, read.json()["error"]) == (403, "restricted")
    write(client, phone, "stored but not told")
    assert client.set_consent(ref, "marketing", "granted", "crm").status == 200  # consent still works
    wait_for(lambda: "stored but not told" in [m.get("text") for m in client.export(ref).json()["messages"]])
    export = client.export(ref).json()
    assert (
        export["restriction"]["restricted"] is True
        and export["restriction"]["reason"] == "accuracy contested"
    )
    assert events_of(endpoint, ref)[before:] == []  # withheld: no message.received, no consent.changed
    assert "may I help?" not in texts_to(graph, phone)
    assert client.restrict(ref, False).status == 200
    wait_for(lambda: "contact.unrestricted" in events_of(endpoint, ref))
    write(client, phone, "told again")
    wait_for(
        lambda: [
            e
            for e in endpoint.events("message.received")
            if e["detail"]["contact"] == ref and e["detail"]["message"].get("text") == "told again"
        ]
    )
    assert client.conversation(ref).status == 200
    assert client.send({"to": ref, "purpose": "service", "text": {"body": "welcome back"}}).status == 202
    erased = client.erase(ref)  # erasure still works
    assert erased.status == 200


def test_the_privacy_routes_belong_to_the_privacy_officer(client: Client, local: LocalStack) -> None:
    phone = unique_phone()
    write(client, phone, "hi")
    wait_for(lambda: client.export(phone).status == 200)
    officer = local.roles["privacy-officer"]
    opened = client.open_request({"contact": phone, "type": "restriction", "law": "gdpr"}, key=officer)
    assert opened.status == 201
    rid = opened.json()["id"]
    assert client.requests(key=officer).status == 200
    assert client.privacy_request(rid, key=officer).status == 200
    assert client.act(rid, "extend", {"reason": "x"}, key=officer).status == 200
    assert client.act(rid, "complete", key=officer).status == 200
    assert client.privacy_request(rid, "/export", key=officer).status == 404  # no export for a restriction
    assert client.restrict(phone, False, key=officer).status == 200
    other = client.open_request({"contact": phone, "type": "access", "law": "ccpa"}, key=officer).json()["id"]
    assert client.act(other, "reject", {"reason": "duplicate"}, key=officer).status == 200
    for role in ("sender", "agent", "auditor"):
        key = local.roles[role]
        calls = {
            "open": client.open_request({"contact": phone, "type": "access", "law": "gdpr"}, key=key),
            "list": client.requests(key=key),
            "get": client.privacy_request(rid, key=key),
            "export": client.privacy_request(rid, "/export", key=key),
            "extend": client.act(rid, "extend", {"reason": "x"}, key=key),
            "complete": client.act(rid, "complete", key=key),
            "reject": client.act(rid, "reject", {"reason": "x"}, key=key),
            "restrict": client.restrict(phone, True, key=key),
        }
        assert {k: (r.status, r.json().get("error")) for k, r in calls.items()} == dict.fromkeys(
            calls, (403, "forbidden")
        ), role
