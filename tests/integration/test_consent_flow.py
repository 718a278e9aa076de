"""Consent: the routes, keywords, Meta's marketing preferences and error 131050, on a moto account."""

from __future__ import annotations

import json
import time

import pytest

from domain import consent
from shared import constants as c
from store import contacts
from tests import factory as f

PHONE = "4915112345678"
USER_ID = "US.13491208655302741918"
PURPOSES = ("marketing", "utility", "authentication")
OTHER = "4915187654321"


def put(contact: str, body: dict | str) -> dict:
    return f.call_contacts("PUT", contact, "/consent", body)


def view(contact: str) -> dict:
    reply = f.call_contacts("GET", contact, "/consent")
    assert reply["statusCode"] == 200
    return f.reply_json(reply)


def grant_all(contact: str = PHONE) -> None:
    for purpose in PURPOSES:
        assert (
            put(contact, {"purpose": purpose, "status": "granted", "source": "web_form"})["statusCode"] == 200
        )


def say(stack, text: str, contact: str = PHONE, **kw) -> None:
    assert (
        f.deliver(stack, f.webhook_body(messages=[f.text_message(contact, text, **kw)]))["statusCode"] == 200
    )


def states(contact: str = PHONE) -> dict[str, str]:
    return {p: s["status"] for p, s in view(contact)["purposes"].items()}


# ---- routes ------------------------------------------------------------------------------------------
def test_put_answers_the_recorded_entry_and_get_keeps_the_history(aws_stack) -> None:
    reply = put(
        PHONE, {"purpose": "marketing", "status": "granted", "source": "web_form", "evidence": "form #12"}
    )
    assert reply["statusCode"] == 200
    entry = f.reply_json(reply)
    assert set(entry) == {"purpose", "status", "source", "recorded_at"}
    assert (entry["purpose"], entry["status"], entry["source"]) == ("marketing", "granted", "web_form")
    put("+" + PHONE, {"purpose": "marketing", "status": "revoked", "source": "call_center"})
    body = view(PHONE)
    assert body["contact"] == PHONE
    assert body["purposes"] == {
        "marketing": {
            "status": "revoked",
            "source": "call_center",
            "recorded_at": body["history"][1]["recorded_at"],
        }
    }
    assert [(h["status"], h["source"]) for h in body["history"]] == [
        ("granted", "web_form"),
        ("revoked", "call_center"),
    ]
    assert body["history"][0]["recorded_at"] < body["history"][1]["recorded_at"]
    stored = aws_stack.items(c.TABLE_CONSENT)
    events = [i for i in stored if i["sk"].startswith("EV#")]
    (summary,) = [i for i in stored if i["sk"] == c.CONSENT_SUMMARY_SK]  # the purposes' latest, no evidence
    assert len(events) == 2 and len(stored) == 3
    assert (
        set(summary["purposes"]) == {"marketing"} and summary["purposes"]["marketing"]["status"] == "revoked"
    )
    assert summary["purposes"]["marketing"]["sk"] == max(i["sk"] for i in events)
    assert int(summary["expires_at"]) == max(int(i["expires_at"]) for i in events)
    assert "form #12" not in repr(stored)  # evidence is encrypted


def test_events_are_ordered_by_the_time_waguard_records_them(aws_stack) -> None:
    for n in range(12):
        put(PHONE, {"purpose": "utility", "status": "granted" if n % 2 else "revoked", "source": f"s{n}"})
    history = view(PHONE)["history"]
    assert [h["source"] for h in history] == [f"s{n}" for n in range(12)]
    assert view(PHONE)["purposes"]["utility"] == {
        k: history[-1][k] for k in ("status", "source", "recorded_at")
    }


def test_unknown_and_user_id_contacts(aws_stack) -> None:
    assert view("4915199999999") == {"contact": "4915199999999", "purposes": {}, "history": []}
    assert put(USER_ID, {"purpose": "marketing", "status": "granted", "source": "app"})["statusCode"] == 200
    assert view(USER_ID)["contact"] == USER_ID
    assert states(USER_ID) == {"marketing": "granted"}


def test_invalid_contact_is_400(aws_stack) -> None:
    for contact in ["abc", "+49 151 1234", "12345", "us.123456789", "49151-123456", "%2B%2B49151"]:
        reply = put(contact, {"purpose": "marketing", "status": "granted", "source": "x"})
        assert reply["statusCode"] == 400 and f.reply_json(reply)["error"] == "invalid_contact", contact
        for suffix, method in (("/consent", "GET"), ("/export", "GET"), ("", "DELETE")):
            reply = f.call_contacts(method, contact, suffix)
            assert reply["statusCode"] == 400 and f.reply_json(reply)["error"] == "invalid_contact"
    assert aws_stack.items(c.TABLE_CONTACTS) == [] and aws_stack.items(c.TABLE_CONSENT) == []


def test_invalid_bodies_are_400_and_change_nothing(aws_stack) -> None:
    bad = [
        {"purpose": "spam", "status": "granted", "source": "x"},
        {"purpose": "service", "status": "granted", "source": "x"},
        {"purpose": "marketing", "status": "maybe", "source": "x"},
        {"purpose": "marketing", "status": "granted"},
        {"purpose": "marketing", "status": "granted", "source": ""},
        {"purpose": "marketing", "status": "granted", "source": "x" * 65},
        {"purpose": "marketing", "status": "granted", "source": 7},
        {"purpose": "marketing", "status": "granted", "source": "x", "evidence": "e" * 1001},
        {"purpose": "marketing", "status": "granted", "source": "x", "unexpected": True},
        "not json",
        "[]",
        "",
    ]
    for body in bad:
        reply = put(PHONE, body)
        assert reply["statusCode"] == 400, body
        assert f.reply_json(reply)["error"] == "invalid_body", body
    assert aws_stack.items(c.TABLE_CONSENT) == []
    ok = put(PHONE, {"purpose": "marketing", "status": "granted", "source": "x" * 64, "evidence": "e" * 1000})
    assert ok["statusCode"] == 200


def test_every_request_is_audited_without_personal_data(aws_stack) -> None:
    put(PHONE, {"purpose": "marketing", "status": "granted", "source": "web_form"})
    view(PHONE)
    put("nope", {"purpose": "marketing", "status": "granted", "source": "web_form"})
    records = aws_stack.items(c.TABLE_AUDIT)
    routes = sorted((r["route"], r["outcome"]) for r in records)
    assert routes == [
        ("GET /contacts/{contact}/consent", "200"),
        ("PUT /contacts/{contact}/consent", "200"),
        ("PUT /contacts/{contact}/consent", "400"),
    ]
    assert all(r["actor"] == f.CALLER_ARN for r in records)
    assert PHONE not in repr(records) and "web_form" not in repr(records)


# ---- keywords ----------------------------------------------------------------------------------------
def test_stop_with_spaces_and_punctuation_revokes_everything_and_does_not_open_the_window(aws_stack) -> None:
    grant_all()
    say(aws_stack, "  Stop! ")
    body = view(PHONE)
    assert states() == dict.fromkeys(PURPOSES, "revoked")
    assert all(body["purposes"][p]["source"] == "keyword" for p in PURPOSES)
    identity = contacts.identity(PHONE)
    assert contacts.last_inbound_at(identity) is None
    assert not consent.is_granted(identity, "marketing")
    say(aws_stack, "actually, one more question")
    assert contacts.last_inbound_at(identity) == pytest.approx(time.time(), abs=5)
    assert states() == dict.fromkeys(PURPOSES, "revoked")


def test_localized_keywords_revoke(aws_stack) -> None:
    words = ["PARAR", "arrêt", "ARRET", "Stopp.", "basta", "CANCELAR", "opt-out", "Unsubscribe", "¡Alto!"]
    for n, word in enumerate(words):
        phone = f"49151000001{n:02d}"
        grant_all(phone)
        say(aws_stack, word, contact=phone)
        assert states(phone) == dict.fromkeys(PURPOSES, "revoked"), word


def test_a_sentence_containing_stop_is_not_an_opt_out(aws_stack) -> None:
    grant_all()
    say(aws_stack, "please don't stop sending me offers")
    assert states() == dict.fromkeys(PURPOSES, "granted")
    assert contacts.last_inbound_at(contacts.identity(PHONE)) is not None


def test_start_grants_marketing_with_source_keyword(aws_stack) -> None:
    say(aws_stack, "START")
    body = view(PHONE)
    assert body["purposes"] == {
        "marketing": {
            "status": "granted",
            "source": "keyword",
            "recorded_at": body["history"][0]["recorded_at"],
        }
    }
    assert consent.is_granted(contacts.identity(PHONE), "marketing")
    say(aws_stack, "unstop")
    assert len(view(PHONE)["history"]) == 2


def test_keyword_variants(aws_stack) -> None:
    # A quick-reply button saying Stop.
    grant_all(OTHER)
    msg = f.message(OTHER, "button", {"button": {"payload": "stop_promos", "text": "Stop"}})
    f.deliver(aws_stack, f.webhook_body(messages=[msg]))
    assert states(OTHER) == dict.fromkeys(PURPOSES, "revoked")
    # Meta retries the same STOP: recorded once.
    grant_all()
    body = f.webhook_body(messages=[f.text_message(PHONE, "STOP")])
    for _ in range(3):
        f.deliver(aws_stack, body)
    assert [h["source"] for h in view(PHONE)["history"]].count("keyword") == 3  # one per purpose
    # A sender known only by its user id.
    put(USER_ID, {"purpose": "marketing", "status": "granted", "source": "app"})
    msg = f.text_message(None, "stop", user_id=USER_ID)
    f.deliver(aws_stack, f.webhook_body(messages=[msg], contacts=[f.contact(None, user_id=USER_ID)]))
    assert states(USER_ID) == dict.fromkeys(PURPOSES, "revoked")


def test_linked_identities_share_consent(aws_stack) -> None:
    grant_all(PHONE)
    msg = f.text_message(PHONE, "hello")
    f.deliver(aws_stack, f.webhook_body(messages=[msg], contacts=[f.contact(PHONE, user_id=USER_ID)]))
    assert states(USER_ID) == dict.fromkeys(PURPOSES, "granted")
    stop = f.text_message(None, "STOP", user_id=USER_ID)
    f.deliver(aws_stack, f.webhook_body(messages=[stop], contacts=[f.contact(None, user_id=USER_ID)]))
    assert states(PHONE) == dict.fromkeys(PURPOSES, "revoked")
    assert set(contacts.identity(PHONE).hashes) == set(contacts.identity(USER_ID).hashes)


# ---- Meta's signals ----------------------------------------------------------------------------------
def test_user_preferences_stop_and_resume(aws_stack) -> None:
    grant_all()
    stop_at = int(time.time()) - 60
    stop = f.webhook_body(
        field="user_preferences",
        contacts=[f.contact(PHONE, name="Erika")],
        user_preferences=[f.user_preference(PHONE, "stop", timestamp=stop_at)],
    )
    f.deliver(aws_stack, stop)
    f.deliver(aws_stack, stop)  # Meta retries: recorded once
    body = view(PHONE)
    assert body["purposes"]["marketing"]["status"] == "revoked"
    assert body["purposes"]["marketing"]["source"] == "user_preferences"
    assert body["purposes"]["utility"]["status"] == "granted"
    assert len(body["history"]) == 4
    resume = f.webhook_body(field="user_preferences", user_preferences=[f.user_preference(PHONE, "resume")])
    f.deliver(aws_stack, resume)
    assert states()["marketing"] == "granted"
    events = [i for i in aws_stack.items(c.TABLE_CONSENT) if i.get("source") == "user_preferences"]
    assert sorted(int(i["meta_timestamp"]) for i in events)[0] == stop_at  # Meta's time kept as evidence
    assert "Erika" not in repr({t: aws_stack.items(t) for t in c.TABLES})


def test_failed_status_with_131050_revokes_marketing_only(aws_stack) -> None:
    grant_all()
    failed = f.status("wamid.out-1", "failed", PHONE, errors=[f.meta_error(131050, "User stopped marketing")])
    f.deliver(aws_stack, f.webhook_body(statuses=[failed]))
    body = view(PHONE)
    assert body["purposes"]["marketing"] == {
        "status": "revoked",
        "source": "meta_error_131050",
        "recorded_at": body["history"][-1]["recorded_at"],
    }
    assert body["purposes"]["utility"]["status"] == "granted"
    f.deliver(aws_stack, f.webhook_body(statuses=[failed]))
    assert len(view(PHONE)["history"]) == 4


def test_other_preferences_and_failures_change_nothing(aws_stack) -> None:
    grant_all()
    pref = f.user_preference(PHONE, "stop", category="something_else")
    f.deliver(aws_stack, f.webhook_body(field="user_preferences", user_preferences=[pref]))
    assert states() == dict.fromkeys(PURPOSES, "granted")
    failed = f.status("wamid.out-2", "failed", PHONE, errors=[f.meta_error(131026, "Undeliverable")])
    f.deliver(aws_stack, f.webhook_body(statuses=[failed]))
    assert states() == dict.fromkeys(PURPOSES, "granted")


def test_status_webhooks_move_the_outbound_message_forward(aws_stack) -> None:
    from store import outbound

    identity = contacts.identity(PHONE)
    out = outbound.create(identity.primary, outbound.new_id(), "utility", {"to": PHONE, "text": "hi"})
    outbound.mark_sent(out, "wamid.sent-1", contacts.wamid_hash("wamid.sent-1"))
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status("wamid.sent-1", "read", PHONE)]))
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status("wamid.sent-1", "delivered", PHONE)]))
    assert outbound.get(identity.primary, out.msg_id).status == "read"
    error = [f.meta_error(131050, "User stopped marketing")]
    out2 = outbound.create(identity.primary, outbound.new_id(), "marketing", {"to": PHONE, "text": "x"})
    outbound.mark_sent(out2, "wamid.sent-2", contacts.wamid_hash("wamid.sent-2"))
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status("wamid.sent-2", "failed", PHONE, errors=error)]))
    stored = outbound.get(identity.primary, out2.msg_id)
    assert stored.status == "failed" and stored.error == {"code": 131050, "title": "User stopped marketing"}


# ---- suppression -------------------------------------------------------------------------------------
def test_erasure_suppresses_until_a_new_explicit_grant(aws_stack) -> None:
    grant_all()
    identity = contacts.identity(PHONE)
    assert not consent.is_suppressed(identity)
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    identity = contacts.identity(PHONE)
    assert consent.is_suppressed(identity)
    assert not consent.is_granted(identity, "marketing")
    assert view(PHONE)["purposes"] == {}
    put(PHONE, {"purpose": "marketing", "status": "revoked", "source": "crm"})
    assert consent.is_suppressed(contacts.identity(PHONE))
    put(PHONE, {"purpose": "marketing", "status": "granted", "source": "new_web_form"})
    identity = contacts.identity(PHONE)
    assert not consent.is_suppressed(identity)
    assert consent.is_granted(identity, "marketing")


def test_erasing_an_unknown_contact_still_suppresses(aws_stack) -> None:
    reply = f.call_contacts("DELETE", "4915100000000")
    assert reply["statusCode"] == 200
    body = f.reply_json(reply)
    assert body["erased"] is True and body["items_deleted"] == 0 and body["receipt_id"]
    assert consent.is_suppressed(contacts.identity("4915100000000"))


def test_direct_api_for_the_outbound_side(aws_stack) -> None:
    identity = contacts.identity("+" + PHONE)
    assert identity.ref == PHONE and identity.hashes == (identity.primary,)
    entry = consent.record(identity, "utility", "granted", "api", evidence="x", meta_timestamp=1700000000)
    assert set(entry) == {"purpose", "status", "source", "recorded_at"}
    assert consent.is_granted(identity, "utility") and not consent.is_granted(identity, "marketing")
    with pytest.raises(ValueError):
        consent.record(identity, "service", "granted", "api")
    with pytest.raises(ValueError):
        consent.record(identity, "marketing", "maybe", "api")
    assert json.dumps(consent.view(identity))


def test_optional_stop_confirmation_is_sent_once(aws_stack, monkeypatch) -> None:
    import os

    from shared import settings

    configured = json.loads(os.environ[c.ENV_SETTINGS])
    assert configured["stop_confirmation"] == ""  # off by default
    configured["stop_confirmation"] = "You will get no more messages from us."
    monkeypatch.setenv(c.ENV_SETTINGS, json.dumps(configured))
    settings.reset()
    grant_all()
    say(aws_stack, "STOP")
    say(aws_stack, "stop")  # already opted out: no second confirmation
    queued = f.drain(aws_stack.queues["send"])
    assert len(queued) == 1
    outs = [i for i in aws_stack.items(c.TABLE_MESSAGES) if i["sk"].startswith("OUT#")]
    assert len(outs) == 1 and outs[0]["purpose"] == "service" and outs[0]["kind"] == "text"
    assert json.loads(queued[0]) == {"message_id": outs[0]["msg_id"]}
    assert states() == dict.fromkeys(PURPOSES, "revoked")
    # An erased contact gets no confirmation.
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    say(aws_stack, "STOP")
    assert f.drain(aws_stack.queues["send"]) == []
    settings.reset()


def test_a_new_grant_lifts_suppression_for_the_whole_linked_identity(aws_stack) -> None:
    both = [f.contact(PHONE, user_id=USER_ID)]
    f.deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "hi")], contacts=both))
    assert f.call_contacts("DELETE", USER_ID)["statusCode"] == 200
    for ref in (PHONE, USER_ID):
        assert consent.is_suppressed(contacts.identity(ref))
    put(PHONE, {"purpose": "utility", "status": "granted", "source": "new_web_form"})
    assert not consent.is_suppressed(contacts.identity(PHONE))
    f.deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "back again")], contacts=both))
    for ref in (PHONE, USER_ID):  # linked again: one person, one suppression state
        identity = contacts.identity(ref)
        assert len(identity.hashes) == 2 and not consent.is_suppressed(identity)


def test_the_consent_summary_follows_the_ledger_and_a_missing_one_is_rebuilt_from_it(aws_stack) -> None:
    """The gate reads the contact's SUMMARY item with its set (no ledger Query); a contact whose events
    predate summaries (none stored) is decided by the ledger, and its next event rebuilds the summary from
    the ledger, the older purposes included."""
    from bench.meter import Meter
    from store import consent as ledger
    from store import tables

    pk = contacts.chash(PHONE)
    grant_all()
    put(PHONE, {"purpose": "utility", "status": "revoked", "source": "call_center"})

    def gate_says(purpose: str) -> tuple[bool, int]:
        with Meter() as meter:
            identity = contacts.identity(PHONE, fresh=True)  # the gate's batched read (set and summary)
            granted = consent.is_granted(identity, purpose)
        return granted, meter.count("dynamodb", "Query")

    assert gate_says("marketing") == (True, 0) and gate_says("utility") == (False, 0)
    # Events written before summaries existed: no summary, the ledger decides (one Query)
    tables.table(c.TABLE_CONSENT).delete_item(Key={c.PK: pk, c.SK: c.CONSENT_SUMMARY_SK})
    assert gate_says("marketing") == (True, 1) and gate_says("utility") == (False, 1)
    put(PHONE, {"purpose": "authentication", "status": "revoked", "source": "call_center"})
    summary = tables.get_live(c.TABLE_CONSENT, pk, c.CONSENT_SUMMARY_SK)
    assert summary is not None
    assert {p: v["status"] for p, v in summary["purposes"].items()} == {
        "marketing": "granted",
        "utility": "revoked",
        "authentication": "revoked",
    }
    assert gate_says("marketing") == (True, 0) and gate_says("authentication") == (False, 0)
    # A summary that no longer lists the purposes (stale): the ledger decides again
    tables.table(c.TABLE_CONSENT).put_item(
        Item={c.PK: pk, c.SK: c.CONSENT_SUMMARY_SK, "rev": "x", "expires_at": int(time.time()) + 3600}
    )
    assert gate_says("marketing") == (True, 1)
    assert ledger.summarized(contacts.identity(PHONE, fresh=True), "marketing") is None
    put(PHONE, {"purpose": "marketing", "status": "revoked", "source": "call_center"})
    assert gate_says("marketing") == (False, 0)  # the next event rebuilt it


def test_an_erasure_removes_the_consent_summary(aws_stack) -> None:
    grant_all()
    pk = contacts.chash(PHONE)
    assert any(i["sk"] == c.CONSENT_SUMMARY_SK for i in aws_stack.items(c.TABLE_CONSENT) if i["pk"] == pk)
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    assert not [i for i in aws_stack.items(c.TABLE_CONSENT) if i["pk"] == pk]
