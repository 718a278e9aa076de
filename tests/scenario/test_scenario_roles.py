"""Personnel access: each role's key can do its job and nothing else (403 `forbidden`)."""

from __future__ import annotations

import pytest

from tests.scenario.util import unique_phone
from waguard.demo import inbound_text, wait_for

ROLES = ("sender", "agent", "privacy-officer", "auditor")


@pytest.fixture
def role_key(stack):
    def key(role: str) -> tuple[str, str]:
        assert role in stack.roles, f"waguard serve printed no key for role {role}: {stack.roles}"
        return stack.roles[role]

    return key


def _calls(client, phone: str, key) -> dict[str, int]:
    body = {"to": phone, "purpose": "service", "text": {"body": "hi"}}
    return {
        "send": client.send(body, key=key).status,
        "status": client.message("00000000-0000-4000-8000-000000000000", key=key).status,
        "consent_put": client.set_consent(phone, "marketing", "granted", "form", key=key).status,
        "consent_get": client.consent(phone, key=key).status,
        "export": client.export(phone, key=key).status,
        "erase": client.erase(phone, key=key).status,
        "conversation": client.conversation(phone, key=key).status,
    }


def test_serve_prints_one_key_per_role(stack) -> None:
    assert set(stack.roles) == set(ROLES)
    assert len({k for k, _ in stack.roles.values()}) == len(ROLES)


def test_sender_sends_and_reads_status_but_nothing_else(client, role_key) -> None:
    phone = unique_phone()
    client.deliver(inbound_text(phone, "hi"))
    wait_for(lambda: client.export(phone).status == 200)
    got = _calls(client, phone, role_key("sender"))
    assert got["send"] == 202
    assert got["status"] == 404
    assert {k: v for k, v in got.items() if k not in ("send", "status")} == {
        "consent_put": 403,
        "consent_get": 403,
        "export": 403,
        "erase": 403,
        "conversation": 403,
    }
    assert client.export(phone, key=role_key("sender")).json()["error"] == "forbidden"


def test_agent_converses_by_reference_but_never_exports_erases_or_changes_consent(client, role_key) -> None:
    phone = unique_phone()
    client.deliver(inbound_text(phone, "hi"))
    wait_for(lambda: client.export(phone).status == 200)
    got = _calls(client, phone, role_key("agent"))
    assert got["send"] == 202 and got["status"] == 404 and got["conversation"] == 200
    assert {k: got[k] for k in ("consent_put", "consent_get", "export", "erase")} == {
        "consent_put": 403,
        "consent_get": 403,
        "export": 403,
        "erase": 403,
    }
    ref = client.conversation(phone, key=role_key("agent")).json()["contact"]
    assert ref.startswith("ct_") and phone not in ref
    assert (
        client.send(
            {"to": ref, "purpose": "service", "text": {"body": "by ref"}}, key=role_key("agent")
        ).status
        == 202
    )


def test_privacy_officer_exports_and_erases_but_cannot_send(client, role_key) -> None:
    phone = unique_phone()
    client.deliver(inbound_text(phone, "hi"))
    wait_for(lambda: client.export(phone).status == 200)
    got = _calls(client, phone, role_key("privacy-officer"))
    assert got["send"] == 403 and got["status"] == 403 and got["conversation"] == 403
    assert got["consent_put"] == 200 and got["consent_get"] == 200
    assert got["export"] == 200 and got["erase"] == 200


def test_auditor_gets_403_everywhere(client, role_key) -> None:
    got = _calls(client, unique_phone(), role_key("auditor"))
    assert set(got.values()) == {403}


def test_an_unknown_or_tampered_key_is_refused(client) -> None:
    phone = unique_phone()
    assert client.export(phone, key=("AKIAUNKNOWN000000000", "x" * 40)).status == 403
    assert client.export(phone, key=("testing", "not-the-secret")).status == 403
    assert client.request("GET", f"/contacts/{phone}/export", sign=False).status == 403


def test_audit_log_names_the_caller_of_each_request(client, role_key, aws) -> None:
    phone = unique_phone()
    client.export(phone, key=role_key("privacy-officer"))
    client.send({"to": phone, "purpose": "service", "text": {"body": "x"}}, key=role_key("sender"))
    audit = next(items for name, items in aws.all_items().items() if "udit" in name)
    actors = {item.get("actor", "") for item in audit}
    assert any("privacy-officer" in a for a in actors), actors
    assert any("sender" in a for a in actors), actors
    assert phone not in repr(audit)
