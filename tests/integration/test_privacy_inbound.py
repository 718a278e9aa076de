"""Privacy over WhatsApp on a moto account: the keywords open requests (answered at once with the request
id and due date), the notice at a first message (once, and again after an erasure and on PRIVACY)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from domain import keywords
from shared import constants as c
from shared import settings
from store import contacts
from tests import factory as f

PHONE = "4915112349999"
NOTICE = "We process your messages to answer you. Details: https://example.com/privacy"


@pytest.fixture
def notice(aws_stack, monkeypatch) -> Any:
    configured = json.loads(os.environ[c.ENV_SETTINGS])
    configured["privacy_notice"] = {"version": "2026-12", "text": NOTICE}
    monkeypatch.setenv(c.ENV_SETTINGS, json.dumps(configured))
    settings.reset()
    yield aws_stack
    settings.reset()


def say(stack: Any, text: str) -> str:
    msg = f.text_message(PHONE, text)
    assert f.deliver(stack, f.webhook_body(messages=[msg], contacts=[f.contact(PHONE)]))["statusCode"] == 200
    return msg["id"]


def outbound_texts(stack: Any) -> list[str]:
    from store import messages

    pk = contacts.chash(PHONE)
    items = sorted(
        (i for i in stack.items(c.TABLE_MESSAGES) if i["pk"] == pk and i["sk"].startswith("OUT#")),
        key=lambda i: (i["created_at"], i["sk"]),
    )
    return [messages.open_attr(i)["text"] for i in items]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("MY DATA", keywords.ACCESS_REQUEST),
        ("  my data! ", keywords.ACCESS_REQUEST),
        ("Mes données", keywords.ACCESS_REQUEST),
        ("MES DONNEES", keywords.ACCESS_REQUEST),
        ("meine Daten", keywords.ACCESS_REQUEST),
        ("Mis datos.", keywords.ACCESS_REQUEST),
        ("Delete my data", keywords.ERASURE_REQUEST),
        ("LÖSCHE MEINE DATEN", keywords.ERASURE_REQUEST),
        ("borrar mis datos", keywords.ERASURE_REQUEST),
        ("Supprimer mes données", keywords.ERASURE_REQUEST),
        ("privacy?", keywords.PRIVACY_NOTICE),
        ("Confidentialité", keywords.PRIVACY_NOTICE),
        ("DATENSCHUTZ", keywords.PRIVACY_NOTICE),
        ("privacidad", keywords.PRIVACY_NOTICE),
        ("please delete my data now", None),
        ("what about my data", None),
    ],
)
def test_privacy_keywords_are_matched_like_opt_out_keywords(aws_stack, text: str, intent: str | None) -> None:
    assert keywords.intent(text, settings.get_settings()) == intent


def test_a_keyword_opens_a_request_answered_with_its_id_and_due_date(aws_stack) -> None:
    from domain import privacy

    say(aws_stack, "DELETE MY DATA")
    say(aws_stack, "my data")
    requests = privacy.listing(None)
    assert sorted(r["type"] for r in requests) == ["access", "erasure"]
    assert {(r["channel"], r["law"], r["status"]) for r in requests} == {("whatsapp", "gdpr", "open")}
    assert all(r["contact"] == contacts.identity(PHONE).reference for r in requests)
    answers = outbound_texts(aws_stack)
    assert len(answers) == 2 and all("We will answer by" in a for a in answers)
    for request in requests:
        assert any(request["id"] in a and request["due_at"][:10] in a for a in answers)
    exported = f.reply_json(f.call_contacts("GET", PHONE, "/export"))
    assert [m["text"] for m in exported["messages"] if m["direction"] == "in"] == [
        "DELETE MY DATA",
        "my data",
    ]
    assert exported["notices"] == []  # no notice configured


def test_a_redelivered_keyword_opens_no_second_request(aws_stack) -> None:
    from domain import privacy

    msg = f.text_message(PHONE, "MY DATA")
    body = f.webhook_body(messages=[msg], contacts=[f.contact(PHONE)])
    f.deliver(aws_stack, body)
    f.deliver(aws_stack, body)
    assert len(privacy.listing(None)) == 1 and len(outbound_texts(aws_stack)) == 1


def test_the_notice_is_sent_once_again_after_erasure_and_on_the_keyword(notice) -> None:
    say(notice, "hello")
    say(notice, "hello again")
    assert outbound_texts(notice) == [NOTICE]
    say(notice, "PRIVACY")
    assert outbound_texts(notice) == [NOTICE, NOTICE]
    doc = f.reply_json(f.call_contacts("GET", PHONE, "/export"))
    assert [n["version"] for n in doc["notices"]] == ["2026-12", "2026-12"]
    assert all(n["sent_at"] for n in doc["notices"])
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    say(notice, "I am back")  # the first message after the erasure: the notice again, despite suppression
    assert outbound_texts(notice) == [NOTICE]  # the earlier ones went with the erasure
    assert [n["version"] for n in f.reply_json(f.call_contacts("GET", PHONE, "/export"))["notices"]] == [
        "2026-12"
    ]


def test_a_privacy_keyword_as_first_message_gives_one_notice(notice) -> None:
    say(notice, "Datenschutz")
    say(notice, "hi")
    assert outbound_texts(notice) == [NOTICE]


def test_a_restricted_contact_gets_no_notice_and_no_answer(notice) -> None:
    say(notice, "hi")
    f.call_contacts("PUT", PHONE, "/restriction", {"restricted": True})
    say(notice, "PRIVACY")
    say(notice, "MY DATA")
    assert outbound_texts(notice) == [NOTICE]
    exported = f.reply_json(f.call_contacts("GET", PHONE, "/export"))
    assert [m["text"] for m in exported["messages"] if m["direction"] == "in"] == ["hi", "PRIVACY", "MY DATA"]
