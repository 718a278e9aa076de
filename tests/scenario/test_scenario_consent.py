"""Consent and data-subject rights, tried as a new user would against `waguard serve`."""

from __future__ import annotations

import time

import pytest

from tests import factory as f
from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import inbound_text, wait_for

PURPOSES = ("marketing", "utility", "authentication")


def _purposes(client, phone: str) -> dict:
    reply = client.consent(phone)
    return reply.json().get("purposes", {}) if reply.status == 200 else {}


def _opted_in(client, phone: str) -> None:
    for purpose in PURPOSES:
        assert client.set_consent(phone, purpose, "granted", "web_form").status == 200


def _template(client, phone: str, purpose: str = "marketing"):
    return client.send({"to": phone, "purpose": purpose, "template": f.template_for(purpose)})


def _say(client, phone: str, text: str) -> None:
    assert client.deliver(inbound_text(phone, text)).status == 200


def test_put_and_get_consent_keeps_the_history(client) -> None:
    phone = unique_phone()
    entry = client.set_consent(phone, "marketing", "granted", "web_form")
    assert entry.status == 200
    assert {"purpose", "status", "source", "recorded_at"} <= set(entry.json())
    client.set_consent(phone, "marketing", "revoked", "call_center")
    body = client.consent(phone).json()
    assert body["purposes"]["marketing"]["status"] == "revoked"
    assert [h["status"] for h in body["history"]] == ["granted", "revoked"]


@pytest.mark.parametrize(
    "body",
    [
        {"purpose": "spam", "status": "granted", "source": "x"},
        {"purpose": "marketing", "status": "maybe", "source": "x"},
        {"purpose": "marketing", "status": "granted"},
    ],
)
def test_invalid_consent_is_refused_and_changes_nothing(client, body) -> None:
    import json

    phone = unique_phone()
    reply = client.request("PUT", f"/contacts/{phone}/consent", json.dumps(body).encode())
    assert reply.status == 400 and reply.json()["error"] == "invalid_body"
    assert _purposes(client, phone) == {}


def test_stop_with_spaces_and_punctuation_revokes_everything_and_closes_the_window(client) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, "  Stop! ")
    wait_for(
        lambda: (
            all(p.get("status") == "revoked" for p in _purposes(client, phone).values())
            and len(_purposes(client, phone)) == 3
        )
    )
    assert _template(client, phone).status == 403
    assert _template(client, phone).json()["error"] == "consent_required"
    text = client.send({"to": phone, "purpose": "service", "text": {"body": "sorry to see you go"}})
    assert text.status == 422 and text.json()["error"] == "outside_service_window"
    _say(client, phone, "actually, one more question")
    wait_for(lambda: len(exported_texts(client, phone)) == 2)
    assert client.send({"to": phone, "purpose": "service", "text": {"body": "sure"}}).status == 202


@pytest.mark.parametrize("word", ["PARAR", "arrêt", "Stopp.", "basta", "CANCELAR", "opt-out", "Unsubscribe"])
def test_localized_keywords_revoke(client, word) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, word)
    wait_for(lambda: _purposes(client, phone).get("marketing", {}).get("status") == "revoked")


def test_a_sentence_containing_stop_is_not_an_opt_out(client) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, "please don't stop sending me offers")
    wait_for(lambda: exported_texts(client, phone))
    time.sleep(0.5)
    assert _purposes(client, phone)["marketing"]["status"] == "granted"
    assert _template(client, phone).status == 202


def test_start_grants_marketing_with_source_keyword(client) -> None:
    phone = unique_phone()
    _say(client, phone, "START")
    wait_for(lambda: _purposes(client, phone).get("marketing", {}).get("status") == "granted")
    assert _purposes(client, phone)["marketing"]["source"] == "keyword"


def test_user_preferences_stop_and_resume(client) -> None:
    from waguard.demo import envelope

    phone = unique_phone()
    _opted_in(client, phone)

    now = int(time.time())

    def prefs(value: str, at: int) -> dict:
        return envelope(
            {
                "contacts": [{"wa_id": phone, "profile": {"name": "X"}}],
                "user_preferences": [
                    {
                        "wa_id": phone,
                        "detail": "User requested to stop marketing messages",
                        "category": "marketing_messages",
                        "value": value,
                        "timestamp": at,
                    }
                ],
            },
            field_name="user_preferences",
        )

    assert client.deliver(prefs("stop", now)).status == 200
    wait_for(lambda: _purposes(client, phone).get("marketing", {}).get("status") == "revoked")
    # Meta's timestamps order what the contact said: the resume is a second later than the stop.
    assert client.deliver(prefs("resume", now + 1)).status == 200
    wait_for(lambda: _purposes(client, phone).get("marketing", {}).get("status") == "granted")


def test_export_holds_both_directions_and_the_consent_history(client) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, "hello there")
    wait_for(lambda: exported_texts(client, phone))
    sent = client.send({"to": phone, "purpose": "service", "text": {"body": "hello back"}})
    assert sent.status == 202
    doc = client.export(phone).json()
    assert doc["contact"] == phone
    directions = {(m["direction"], m.get("text") or m.get("template_name")) for m in doc["messages"]}
    assert ("in", "hello there") in directions and ("out", "hello back") in directions
    assert len(doc["consent"]) == 3
    for item in [*doc["messages"], *doc["consent"]]:
        assert item.get("deletes_at"), item


def test_erasure_leaves_nothing_in_clear_and_suppresses_until_a_new_grant(client, aws) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, "erase me later")
    wait_for(lambda: exported_texts(client, phone))
    erased = client.erase(phone)
    assert erased.status == 200
    body = erased.json()
    assert body["erased"] is True and body["items_deleted"] > 0 and body["receipt_id"]
    assert client.export(phone).status == 404
    dump = aws.dump()
    assert phone not in dump and "erase me later" not in dump
    assert _template(client, phone).status == 403
    assert client.set_consent(phone, "marketing", "granted", "new_web_form").status == 200
    assert _template(client, phone).status == 202


def test_restoring_backed_up_tables_after_erasure_brings_nothing_readable_back(client, aws) -> None:
    phone = unique_phone()
    _opted_in(client, phone)
    _say(client, phone, "restore must not revive this")
    wait_for(lambda: exported_texts(client, phone))
    ddb = aws.client("dynamodb")
    backed_up = [
        name
        for name in aws.table_names()
        if ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"
        ]["PointInTimeRecoveryStatus"]
        == "ENABLED"
    ]
    snapshot = {name: items for name, items in aws.all_items().items() if name in backed_up}
    assert client.erase(phone).status == 200
    for name, items in snapshot.items():  # what a point-in-time restore would bring back
        with aws.resource("dynamodb").Table(name).batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
    reply = client.export(phone)
    assert reply.status == 404 or "restore must not revive this" not in reply.text
