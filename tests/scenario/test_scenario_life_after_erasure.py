"""Life after erasure, tried as a user would against `waguard serve` (contract "Life after erasure").

`serve` runs each function in one long-lived worker process, as one warm Lambda instance: the processor
and the messages API cached the contact's data key before the erasure, and the contacts API that served
the erasure handles what comes next. Nothing written after the erasure may be lost.
"""

from __future__ import annotations

from typing import Any

from tests import factory as f
from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import inbound_text, wait_for


def _say(client: Any, phone: str, text: str) -> None:
    assert client.deliver(inbound_text(phone, text)).status == 200


def _template(client: Any, phone: str, purpose: str) -> Any:
    return client.send({"to": phone, "purpose": purpose, "template": f.template_for(purpose)})


def _reply(client: Any, phone: str, text: str) -> Any:
    return client.send({"to": phone, "purpose": "service", "text": {"body": text}})


def _status(client: Any, message_id: str, wanted: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.message(message_id).json()
        return body if body.get("status") == wanted else None

    return wait_for(check, timeout=60)


def _warm_then_erase(client: Any, phone: str) -> None:
    """Every function handles the contact (and caches its key), then the contact is erased."""
    assert client.set_consent(phone, "marketing", "granted", "web_form").status == 200
    _say(client, phone, "before the erasure")
    wait_for(lambda: exported_texts(client, phone))
    assert _template(client, phone, "marketing").status == 202
    assert client.erase(phone).status == 200
    assert client.export(phone).status == 404


def test_a_grant_after_erasure_is_kept_and_allows_only_its_purpose(client) -> None:
    phone = unique_phone()
    _warm_then_erase(client, phone)
    assert _template(client, phone, "utility").status == 403
    entry = client.set_consent(phone, "utility", "granted", "new_web_form")
    assert entry.status == 200
    view = client.consent(phone).json()
    assert list(view["purposes"]) == ["utility"]
    assert [(h["purpose"], h["status"]) for h in view["history"]] == [("utility", "granted")]
    sent = _template(client, phone, "utility")
    assert sent.status == 202
    _status(client, sent.json()["id"], "sent")
    refused = _template(client, phone, "marketing")
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")


def test_the_person_writes_again_and_is_stored_and_answered(client) -> None:
    phone = unique_phone()
    _warm_then_erase(client, phone)
    closed = _reply(client, phone, "too early")
    assert (closed.status, closed.json()["error"]) == (422, "outside_service_window")
    _say(client, phone, "I am back")
    wait_for(lambda: exported_texts(client, phone) == ["I am back"], timeout=30)
    answer = _reply(client, phone, "welcome back")
    assert answer.status == 202
    _status(client, answer.json()["id"], "sent")
    refused = _template(client, phone, "marketing")
    assert (refused.status, refused.json()["error"]) == (403, "consent_required")


def test_write_erase_cycles_each_keep_what_came_after(client) -> None:
    phone = unique_phone()
    for life in range(3):
        _say(client, phone, f"life {life}")
        wait_for(lambda life=life: exported_texts(client, phone) == [f"life {life}"], timeout=30)
        assert client.erase(phone).status == 200
        assert client.export(phone).status == 404
    _say(client, phone, "the last life")
    wait_for(lambda: exported_texts(client, phone) == ["the last life"], timeout=30)


def test_start_after_erasure_is_readable_where_the_gate_reads_it(client) -> None:
    phone = unique_phone()
    _warm_then_erase(client, phone)
    _say(client, phone, "START")

    def granted() -> bool:
        history = client.consent(phone).json()["history"]
        return [(h["purpose"], h["status"], h["source"]) for h in history] == [
            ("marketing", "granted", "keyword")
        ]

    wait_for(granted, timeout=30)
    ids = []
    for n in range(4):
        accepted = _reply(client, phone, f"reply {n}")
        assert accepted.status == 202
        ids.append(accepted.json()["id"])
    promo = _template(client, phone, "marketing")
    assert promo.status == 202
    ids.append(promo.json()["id"])
    for message_id in ids:
        _status(client, message_id, "sent")
    doc = client.export(phone).json()
    out = {m["id"]: m["status"] for m in doc["messages"] if m["direction"] == "out"}
    assert out == dict.fromkeys(ids, "sent")
    assert [m["text"] for m in doc["messages"] if m["direction"] == "in"] == ["START"]
