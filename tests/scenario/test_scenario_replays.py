"""Replays and redeliveries against `waguard serve` (contract "Consent"; issue 21).

Meta's signature carries no timestamp and Meta redelivers for days: the same signed body posted again,
after an erasure or a STOP, must change nothing. Each replay is answered 200 (it is a valid delivery) and
processed; the tests wait until the inbound queue is drained before they look, so "nothing changed" is
seen after the processor had its chance to change it.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from tests import factory as f
from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import envelope, inbound_text, status_update, wait_for

DAY = 86400


def _drained(aws: Any) -> None:
    """Wait until the inbound queue holds nothing, visible or in flight, twice in a row."""
    sqs = aws.client("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if "QueuesInbound" in u and "Dlq" not in u)

    def empty() -> bool:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values()) == 0

    def settled() -> bool:
        if not empty():
            return False
        time.sleep(0.5)
        return empty()

    wait_for(settled, timeout=60)


def _marketing(client: Any, phone: str) -> str | None:
    reply = client.consent(phone)
    if reply.status != 200:
        return None
    return reply.json().get("purposes", {}).get("marketing", {}).get("status")


def _template(client: Any, phone: str) -> Any:
    return client.send({"to": phone, "purpose": "marketing", "template": f.template_for("marketing")})


def _keyword(phone: str, text: str, at: int) -> dict[str, Any]:
    body = inbound_text(phone, text)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(at)
    return body


def _preference(phone: str, value: str, at: int) -> dict[str, Any]:
    return envelope(
        {
            "contacts": [{"wa_id": phone, "profile": {"name": "X"}}],
            "user_preferences": [
                {
                    "wa_id": phone,
                    "detail": f"User requested to {value} marketing messages",
                    "category": "marketing_messages",
                    "value": value,
                    "timestamp": at,
                }
            ],
        },
        field_name="user_preferences",
    )


def test_start_replayed_after_erasure_restores_nothing(client, aws) -> None:
    phone = unique_phone()
    start = inbound_text(phone, "START")
    assert client.deliver(start).status == 200
    wait_for(lambda: _marketing(client, phone) == "granted")
    assert _template(client, phone).status == 202
    assert client.erase(phone).status == 200

    again = client.deliver(start)  # the same signed body, byte for byte
    assert again.status == 200
    _drained(aws)
    assert client.export(phone).status == 404, client.export(phone).text
    assert _marketing(client, phone) is None
    refused = _template(client, phone)
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")


def test_an_old_inbound_body_replayed_after_erasure_restores_nothing(client, aws) -> None:
    phone = unique_phone()
    said = inbound_text(phone, "my address is 12 Elm Street")
    assert client.deliver(said).status == 200
    wait_for(lambda: exported_texts(client, phone) == ["my address is 12 Elm Street"])
    assert client.erase(phone).status == 200

    for _ in range(2):
        assert client.deliver(said).status == 200
    _drained(aws)
    assert client.export(phone).status == 404
    closed = client.send({"to": phone, "purpose": "service", "text": {"body": "hello?"}})
    assert (closed.status, closed.json()["error"]) == (422, "outside_service_window")
    # A new message from the same person is a new life, and is kept.
    assert client.deliver(inbound_text(phone, "hello again")).status == 200
    wait_for(lambda: exported_texts(client, phone) == ["hello again"])


def test_a_resume_replayed_after_a_stop_changes_nothing(client, aws) -> None:
    phone = unique_phone()
    now = int(time.time())
    assert client.set_consent(phone, "marketing", "granted", "web_form").status == 200
    assert client.deliver(_preference(phone, "stop", now - 20)).status == 200
    wait_for(lambda: _marketing(client, phone) == "revoked")
    resume = _preference(phone, "resume", now - 10)
    assert client.deliver(resume).status == 200
    wait_for(lambda: _marketing(client, phone) == "granted")
    assert client.deliver(_keyword(phone, "STOP", now)).status == 200
    wait_for(lambda: _marketing(client, phone) == "revoked")

    assert client.deliver(resume).status == 200  # replayed
    assert client.deliver(_preference(phone, "resume", now - 400 * DAY)).status == 200  # 400 days old
    _drained(aws)
    assert _marketing(client, phone) == "revoked"
    refused = _template(client, phone)
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")
    history = client.consent(phone).json()["history"]
    resumes = [h for h in history if h["source"] == "user_preferences" and h["status"] == "granted"]
    assert len(resumes) == 2  # the first resume, and the stale one kept as evidence only
    assert [h.get("effective", True) for h in resumes] == [True, False]


def test_a_start_older_than_a_stop_arriving_after_it_changes_nothing(client, aws) -> None:
    phone = unique_phone()
    now = int(time.time())
    assert client.deliver(_keyword(phone, "STOP", now)).status == 200
    wait_for(lambda: _marketing(client, phone) == "revoked")
    assert client.deliver(_keyword(phone, "START", now - 30)).status == 200
    _drained(aws)
    assert _marketing(client, phone) == "revoked"
    refused = _template(client, phone)
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")
    late = [h for h in client.consent(phone).json()["history"] if h["status"] == "granted"]
    assert [(h["source"], h["effective"]) for h in late] == [("keyword", False)]
    # A START said after the STOP grants again.
    assert client.deliver(_keyword(phone, "START", now + 1)).status == 200
    wait_for(lambda: _marketing(client, phone) == "granted")


def test_a_status_naming_another_recipient_changes_nothing(client, aws) -> None:
    a, b = unique_phone(), unique_phone()
    assert client.deliver(inbound_text(a, "a question")).status == 200
    wait_for(lambda: exported_texts(client, a))
    sent = client.send({"to": a, "purpose": "service", "text": {"body": "an answer"}})
    assert sent.status == 202
    message_id = sent.json()["id"]
    wamid = wait_for(lambda: client.message(message_id).json().get("wamid"), timeout=60)
    assert client.set_consent(b, "marketing", "granted", "web_form").status == 200

    error = {"code": 131050, "title": "User has stopped marketing messages"}
    assert client.deliver(status_update(b, wamid, "failed", [error])).status == 200
    _drained(aws)
    assert client.message(message_id).json()["status"] == "sent"
    assert _marketing(client, b) == "granted"
    ids = [m.get("id") for m in client.export(b).json()["messages"]]
    assert message_id not in ids
    # The true recipient's status still counts.
    assert client.deliver(status_update(a, wamid, "delivered")).status == 200
    wait_for(lambda: client.message(message_id).json()["status"] == "delivered")


def _variant(ref: str) -> str:
    """Another spelling of `ref` that decodes to the same bytes (the last character's unused bits)."""
    body = ref[3:].upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    for char in "abcdefghijklmnopqrstuvwxyz234567":
        other = ref[:-1] + char
        decoded = base64.b32decode(other[3:].upper() + "=" * (-len(body) % 8))
        if other != ref and decoded == raw:
            return other
    raise AssertionError("no other spelling")


def test_a_non_canonical_reference_is_refused(client) -> None:
    phone = unique_phone()
    assert client.set_consent(phone, "utility", "granted", "web_form").status == 200
    ref = client.export(phone).json()["ref"]
    assert client.export(ref).status == 200
    other = _variant(ref)
    for reply in (client.export(other), client.consent(other), client.erase(other)):
        assert (reply.status, reply.json()["error"]) == (400, "invalid_contact")
    assert client.export(phone).status == 200  # the refused erasure erased nothing
