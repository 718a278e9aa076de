"""Every real webhook variant of pywa's corpus, through the webhook and the processor, stored per contract.

The corpus is read-only next to the repository (`../shared/fixtures/peer-webhooks/pywa`); the bodies are
copied in memory only, with each variant's message ids made unique (the corpus reuses `wamid.xyzxyz`,
which would otherwise be deduplicated across variants, as it should).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from shared import constants as c
from shared import ids
from tests import factory as f

INBOUND_FIELDS = ("messages", "user_preferences")


def corpus() -> list[tuple[str, str, dict[str, Any]]]:
    if not f.pywa_available():
        pytest.skip("peer webhook fixtures are not present next to the repository")
    out = []
    for stem, name, body in f.pywa_variants():
        for entry in body.get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value") or {}
                for item in [*(value.get("messages") or []), *(value.get("statuses") or [])]:
                    item["id"] = f"{item['id']}.{stem}.{name}"
        out.append((stem, name, body))
    return out


def ref_of(wa_id: str | None, user_id: str | None) -> str | None:
    for raw in (wa_id, user_id):
        try:
            return ids.normalize_contact(raw or "")
        except ids.InvalidContact:
            continue
    return None


def export(contact: str) -> dict:
    reply = f.call_contacts("GET", contact, "/export")
    assert reply["statusCode"] in (200, 404)
    return f.reply_json(reply) if reply["statusCode"] == 200 else {}


def test_every_variant_is_accepted_and_stored_per_contract(aws_stack) -> None:
    variants = corpus()
    expected_messages: list[tuple[str, str, str]] = []
    expected_statuses: list[tuple[str, str, str]] = []
    for file, name, body in variants:
        reply = f.deliver(aws_stack, body)
        assert reply["statusCode"] == 200, (file, name)
        for entry in body["entry"]:
            for change in entry["changes"]:
                if change["field"] != "messages":
                    continue
                for msg in change["value"].get("messages") or []:
                    ref = ref_of(msg.get("from"), msg.get("from_user_id"))
                    if ref:
                        expected_messages.append((ref, msg["id"], msg["type"]))
                for st in change["value"].get("statuses") or []:
                    group = st.get("recipient_type") == "group"
                    ref = ref_of(
                        st.get("recipient_participant_id" if group else "recipient_id"),
                        st.get("recipient_participant_user_id" if group else "recipient_user_id"),
                    )
                    expected_statuses.append((ref, st["id"], st["status"]))
    assert len(expected_messages) > 30 and len(expected_statuses) >= 7

    # Stored as the contract says: every message under its sender, every status under its recipient.
    exports: dict[str, dict] = {}
    for ref, wamid, msg_type in expected_messages:
        doc = exports.setdefault(ref, export(ref))
        found = [m for m in doc.get("messages", []) if m.get("wamid") == wamid]
        assert len(found) == 1, (ref, wamid)
        assert found[0]["type"] == msg_type and found[0]["direction"] == "in"
        assert found[0]["deletes_at"]
    for ref, wamid, status in expected_statuses:
        doc = exports.setdefault(ref, export(ref))
        assert any(s["id"] == wamid and s["status"] == status for s in doc.get("statuses", [])), (ref, wamid)

    # The user id and the phone number name one person: the same data either way.
    by_user = export("US.13491208655302741918")
    by_phone = exports["972987654321"]
    assert {m["id"] for m in by_user["messages"]} == {m["id"] for m in by_phone["messages"]}

    # What users typed or chose is there, exactly; what the contract drops is not.
    typed = {m["wamid"].split(".", 2)[-1]: m for m in by_phone["messages"] if m.get("wamid")}
    assert typed["message.text"]["text"] == "Body Text"
    assert typed["message.video"]["content"]["caption"] == "caption"
    assert typed["message.reaction"]["content"]["reaction"]["emoji"] == "😮"
    assert typed["callback_selection.callback"]["text"] == "title"
    assert typed["message.order"]["content"]["order"]["items"][0] == {
        "product_retailer_id": "HAMBURGER",
        "quantity": 3,
    }
    assert "location" not in typed["message.chosen_location"]["content"]
    assert "contact_cards" not in typed["message.contacts"]["content"]
    assert "profile_name" not in by_phone["profile"]

    # Marketing preferences: the corpus's are years old, more than the 7 days Meta redelivers, so each is
    # kept as evidence and none changes consent (an old signed body is a replay, never news).
    prefs = f.reply_json(f.call_contacts("GET", "16505551234", "/consent"))
    assert "marketing" not in prefs["purposes"]
    assert prefs["history"] and {h["source"] for h in prefs["history"]} == {"user_preferences"}
    assert {(h.get("effective"), h.get("ignored")) for h in prefs["history"]} == {(False, "stale")}

    # Nothing personal in clear anywhere; every item expires.
    dump = repr({t: aws_stack.items(t) for t in c.TABLES})
    for value in f.PYWA_PERSONAL:
        assert value not in dump, value
    now = time.time()
    for table in c.TABLES:
        for item in aws_stack.items(table):
            assert isinstance(item[c.TTL_ATTRIBUTE], Decimal) and int(item[c.TTL_ATTRIBUTE]) > now, item


def test_other_fields_are_answered_and_keep_nothing_personal(aws_stack) -> None:
    others = [
        (file, name, body)
        for file, name, body in corpus()
        if all(ch["field"] not in INBOUND_FIELDS for e in body["entry"] for ch in e["changes"])
    ]
    assert {"account_update", "call_connect", "template_status_update", "outgoing_message"} <= {
        o[0] for o in others
    }
    for file, name, body in others:
        assert f.deliver(aws_stack, body)["statusCode"] == 200, (file, name)
    for table in (c.TABLE_CONTACTS, c.TABLE_MESSAGES, c.TABLE_CONSENT, c.TABLE_KEYS):
        assert aws_stack.items(table) == [], table
