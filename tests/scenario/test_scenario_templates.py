"""Templates as a governed registry (issue 22), driven through `waguard serve` and the Graph fake's WABA:
the registry as Meta holds it, the gate's refusals (nothing stored or queued, Meta not called), pause and
reinstatement and recategorization by webhook, the sender's re-check, paging, a failed sync, submission,
and the rendered body in the conversation and the export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import factory as f
from tests.scenario.util import calls_to, quiet, unique_phone
from waguard.demo import Client, wait_for

ORDER = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-7"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-7"}]},
    ],
}


@pytest.fixture
def registry(client: Client, graph: Any) -> Iterator[Any]:
    """The fake's WABA as every test finds it: its default templates, all APPROVED, synced. A test that
    changes it leaves it so again."""
    yield graph.waba
    graph.waba.reset()
    assert client.sync_templates().status == 200


def list_calls(graph: Any) -> list[dict[str, Any]]:
    return [c for c in graph.calls("") if "/message_templates" in c["path"] and c["method"] == "GET"]


def entry(client: Client, name: str, language: str = "en_US") -> dict[str, Any] | None:
    listed = client.templates().json()["templates"]
    return next((t for t in listed if (t["name"], t["language"]) == (name, language)), None)


def change(client: Client, waba: Any, **what: Any) -> None:
    """Change a template at Meta and deliver the webhook Meta sends for it (signed, as Meta does)."""
    webhook = waba.update({"language": "en_US", **what})["webhook"]
    assert client.deliver(webhook).status == 200


def test_the_registry_lists_the_wabas_templates_with_their_parameters(client: Client) -> None:
    reply = client.templates()
    assert reply.status == 200
    by_name = {t["name"]: t for t in reply.json()["templates"]}
    assert set(by_name) == {
        "spring_sale",
        "new_arrivals",
        "order_update",
        "account_notice",
        "parcel_window",
        "login_code",
    }
    assert by_name["order_update"]["parameters"] == {"header": None, "body": ["1", "2"], "buttons": [0]}
    assert by_name["new_arrivals"]["parameters"] == {"header": "image", "body": ["1"], "buttons": []}
    assert by_name["login_code"]["parameters"] == {"header": None, "body": ["1"], "buttons": [0]}
    assert by_name["login_code"]["category"] == "AUTHENTICATION"
    assert by_name["parcel_window"]["parameters"]["body"] == ["parcel", "day"]
    assert all(t["status"] == "APPROVED" and t["updated_at"].endswith("Z") for t in by_name.values())
    assert client.templates(status="PAUSED").json() == {"templates": []}


@pytest.mark.parametrize(
    ("template", "purpose", "status", "code"),
    [
        ({"name": "no_such_template", "language": {"code": "en_US"}}, "marketing", 400, "unknown_template"),
        ({"name": "spring_sale", "language": {"code": "de"}}, "marketing", 400, "unknown_template"),
        ({**ORDER, "components": ORDER["components"][:1]}, None, 400, "template_parameters"),
        (
            {**ORDER, "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]},
            None,
            400,
            "template_parameters",
        ),
        ({"name": "new_arrivals", "language": {"code": "en_US"}}, None, 400, "template_parameters"),
        (
            {**f.template_for("authentication"), "components": f.OTP_COMPONENTS[:1]},
            None,
            400,
            "template_parameters",
        ),
        (
            {
                "name": "parcel_window",
                "language": {"code": "de"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "P-7"}] * 2}],
            },
            None,
            400,
            "template_parameters",
        ),
        (f.template_for("marketing"), "utility", 400, "purpose_mismatch"),
        (f.template_for("utility"), "marketing", 400, "purpose_mismatch"),
    ],
    ids=[
        "unknown",
        "unknown-language",
        "missing-button",
        "body-count",
        "missing-image-header",
        "missing-copy-code",
        "unnamed-parameters",
        "marketing-as-utility",
        "utility-as-marketing",
    ],
)
def test_a_template_the_registry_refuses_is_never_stored_queued_or_sent(
    client: Client, graph: Any, template: dict[str, Any], purpose: str | None, status: int, code: str
) -> None:
    phone = unique_phone()
    for granted in ("marketing", "utility", "authentication"):
        assert client.set_consent(phone, granted, "granted", "form").status == 200
    body = {"to": phone, "template": template, **({"purpose": purpose} if purpose else {})}
    reply = client.send(body)
    assert (reply.status, reply.json()["error"]) == (status, code), reply.json()
    assert calls_to(graph, phone) == []
    assert [m for m in client.export(phone).json()["messages"]] == []


def test_the_purpose_comes_from_the_category_and_the_body_is_shown_as_read(
    client: Client, graph: Any
) -> None:
    phone = unique_phone()
    assert client.send({"to": phone, "template": ORDER}).json()["error"] == "consent_required"
    assert client.set_consent(phone, "utility", "granted", "form").status == 200
    sent = client.send({"to": phone, "template": ORDER})  # no purpose: UTILITY's
    assert sent.status == 202
    also = client.send({"to": phone, "purpose": "service", "template": f.template_for("utility")})
    assert also.status == 202  # service counts as utility
    wait_for(lambda: client.message(sent.json()["id"]).json()["status"] == "sent")
    (call, *_) = calls_to(graph, phone)
    assert call["body"]["template"] == ORDER
    (shown, _) = client.conversation(phone).json()["messages"]
    assert shown["template"] == {"name": "order_update", "language": "en_US"}
    assert shown["text"] == "Hi Ana, your order A-7 has shipped."
    exported = [m for m in client.export(phone).json()["messages"] if m.get("template")]
    assert exported[0]["template"] == {"name": "order_update", "language": "en_US"}
    assert exported[0]["text"] == "Hi Ana, your order A-7 has shipped."
    assert exported[0]["purpose"] == "utility"


def test_a_paused_template_is_refused_until_reinstated(client: Client, registry: Any) -> None:
    phone = unique_phone()
    assert client.set_consent(phone, "marketing", "granted", "form").status == 200
    change(client, registry, name="spring_sale", status="PAUSED")
    wait_for(lambda: (entry(client, "spring_sale") or {}).get("status") == "PAUSED")
    refused = client.send({"to": phone, "template": f.template_for("marketing")})
    assert (refused.status, refused.json()["error"]) == (422, "template_not_approved")
    assert "PAUSED" in refused.json()["message"]
    assert [t["name"] for t in client.templates(status="PAUSED").json()["templates"]] == ["spring_sale"]
    change(client, registry, name="spring_sale", status="REINSTATED")
    wait_for(lambda: (entry(client, "spring_sale") or {}).get("status") == "APPROVED")
    assert client.send({"to": phone, "template": f.template_for("marketing")}).status == 202


def test_a_recategorized_template_needs_the_consent_of_its_new_category(
    client: Client, registry: Any
) -> None:
    phone = unique_phone()
    assert client.set_consent(phone, "utility", "granted", "form").status == 200
    notice = f.template_for("utility")
    # Meta announces a correction for later: nothing changes yet.
    change(client, registry, name="account_notice", correct_category="MARKETING")
    change(client, registry, name="account_notice", quality="YELLOW")
    wait_for(lambda: (entry(client, "account_notice") or {}).get("quality") == "YELLOW")
    assert entry(client, "account_notice")["category"] == "UTILITY"  # type: ignore[index]
    assert client.send({"to": phone, "template": notice}).status == 202
    change(client, registry, name="account_notice", category="MARKETING")
    wait_for(lambda: (entry(client, "account_notice") or {}).get("category") == "MARKETING")
    refused = client.send({"to": phone, "template": notice})
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")
    mismatch = client.send({"to": phone, "purpose": "utility", "template": notice})
    assert (mismatch.status, mismatch.json()["error"]) == (400, "purpose_mismatch")
    assert client.set_consent(phone, "marketing", "granted", "form").status == 200
    assert client.send({"to": phone, "template": notice}).status == 202


def test_a_message_queued_before_a_pause_is_not_sent(client: Client, graph: Any, registry: Any) -> None:
    phone = unique_phone()
    assert client.set_consent(phone, "marketing", "granted", "form").status == 200
    quiet(graph)
    graph.script([{"delay": 4, "code": 131000}])  # Meta is slow and fails once: the message waits
    queued = client.send({"to": phone, "template": f.template_for("marketing")})
    assert queued.status == 202
    wait_for(lambda: calls_to(graph, phone))
    change(client, registry, name="spring_sale", status="PAUSED")
    wait_for(lambda: (entry(client, "spring_sale") or {}).get("status") == "PAUSED")
    view = wait_for(lambda: (v := client.message(queued.json()["id"]).json())["status"] == "failed" and v)
    assert view["error"]["code"] == "template_not_approved"
    assert len(calls_to(graph, phone)) == 1  # the one slow attempt; never again once paused


def test_a_queued_message_whose_template_became_marketing_is_not_sent(
    client: Client, graph: Any, registry: Any
) -> None:
    phone = unique_phone()
    assert client.set_consent(phone, "utility", "granted", "form").status == 200
    quiet(graph)
    graph.script([{"delay": 4, "code": 131000}])
    queued = client.send({"to": phone, "template": f.template_for("utility")})
    assert queued.status == 202
    wait_for(lambda: calls_to(graph, phone))
    change(client, registry, name="account_notice", category="MARKETING")
    view = wait_for(lambda: (v := client.message(queued.json()["id"]).json())["status"] == "failed" and v)
    assert view["error"]["code"] == "consent_required"
    assert len(calls_to(graph, phone)) == 1


def test_a_sync_reads_every_page(client: Client, graph: Any, registry: Any) -> None:
    registry.page_size = 2
    before = len(list_calls(graph))
    reply = client.sync_templates()
    assert reply.json() == {"templates": 6} and reply.status == 200
    pages = list_calls(graph)[before:]
    assert len(pages) == 3
    assert "after=" not in pages[0]["path"] and all("after=" in p["path"] for p in pages[1:])
    assert all(p["authorized"] for p in pages)


def test_a_failed_sync_leaves_the_registry_as_it_was(client: Client, graph: Any, registry: Any) -> None:
    registry.update({"name": "spring_sale", "language": "en_US", "status": "DISABLED"})  # no webhook sent
    registry.page_size = 2
    registry.failures = 1
    failed = client.sync_templates()
    assert (failed.status, failed.json()["error"]) == (502, "upstream_unavailable")
    assert entry(client, "spring_sale")["status"] == "APPROVED"  # type: ignore[index]
    assert client.sync_templates().json() == {"templates": 6}
    assert entry(client, "spring_sale")["status"] == "DISABLED"  # type: ignore[index]


def test_a_template_meta_stopped_listing_is_marked_deleted(client: Client, registry: Any) -> None:
    with registry._lock:
        registry._templates = [t for t in registry._templates if t["name"] != "parcel_window"]
    assert client.sync_templates().json() == {"templates": 5}
    assert entry(client, "parcel_window", "de")["status"] == "DELETED"  # type: ignore[index]


def test_a_new_template_is_submitted_for_review(client: Client, graph: Any, registry: Any) -> None:
    body = {
        "name": "winter_sale",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Winter sale: {{1}} off.", "example": {"body_text": [["30%"]]}}
        ],
    }
    created = client.create_template(body)
    assert created.status == 201, created.json()
    assert created.json()["status"] == "PENDING" and created.json()["category"] == "MARKETING"
    assert entry(client, "winter_sale")["status"] == "PENDING"  # type: ignore[index]
    again = client.create_template(body)
    assert (again.status, again.json()["error"]) == (400, "template_refused")
    before = len(graph.calls("/message_templates"))
    for bad in (
        {**body, "name": "Winter Sale"},
        {**body, "category": "PROMOTION"},
        {**body, "components": [{"type": "HEADER", "format": "TEXT", "text": "x"}]},
        {**body, "components": [{"type": "BODY", "text": "x" * 1025}]},
    ):
        reply = client.create_template(bad)
        assert (reply.status, reply.json()["error"]) == (400, "invalid_body"), bad
    assert len(graph.calls("/message_templates")) == before  # refused before Meta


def test_roles_may_read_and_sync_the_registry_as_the_contract_says(client: Client, stack: Any) -> None:
    sender, agent = stack.roles["sender"], stack.roles["agent"]
    officer = stack.roles["privacy-officer"]
    assert client.templates(key=sender).status == 200
    assert client.sync_templates(key=sender).status == 200
    assert client.templates(key=agent).status == 200
    assert client.sync_templates(key=agent).status == 403
    assert client.templates(key=officer).status == 403
    body = {
        "name": "x",
        "language": "en",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "x"}],
    }
    assert client.create_template(body, key=sender).status == 403
