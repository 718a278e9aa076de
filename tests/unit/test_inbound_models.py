"""Meta webhook models parse every real payload variant (pywa's corpus), and minimization keeps only
what the contract allows."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from domain import ingest, minimize
from models.webhook import ChangeValue, Delivery, Message
from shared.settings import Settings
from tests import factory as f

SETTINGS = Settings(
    retention_days={"messages": 90},
    keep_profile_name=False,
    keep_contact_cards=False,
    keep_locations=False,
    opt_out_keywords=("STOP",),
    opt_in_keywords=("START",),
    stop_confirmation="",
    service_window_hours=24,
    send_rate_per_second=80,
    max_send_attempts=6,
    retry_base_seconds=2,
    graph_api_url="http://graph",
    graph_api_version="v25.0",
    phone_number_ids=("1",),
)
KEEP_ALL = dataclasses.replace(SETTINGS, keep_profile_name=True, keep_contact_cards=True, keep_locations=True)


def variant(file: str, name: str) -> dict[str, Any]:
    path = f.PYWA / f"{file}.json"
    if not path.is_file():
        pytest.skip("peer webhook fixtures are not present next to the repository")
    return json.loads(path.read_text())[name]


def only_message(file: str, name: str) -> Message:
    value = ChangeValue.model_validate(variant(file, name)["entry"][0]["changes"][0]["value"])
    (msg,) = value.messages
    return msg


VARIANTS = f.pywa_variants()


@pytest.mark.parametrize(("file", "name", "body"), VARIANTS, ids=[f"{f}-{n}" for f, n, _ in VARIANTS])
def test_every_variant_parses(file: str, name: str, body: dict) -> None:
    delivery = Delivery.model_validate(body)
    assert delivery.entry
    for entry in delivery.entry:
        for change in entry.changes:
            if change.field not in ("messages", "user_preferences"):
                continue
            value = ChangeValue.model_validate(change.value)
            for msg in value.messages:
                assert msg.id and msg.type and msg.sender
                kept = json.dumps(minimize.content(msg, SETTINGS), ensure_ascii=False)
                for contact in value.contacts:
                    if contact.profile and contact.profile.name:
                        assert contact.profile.name not in kept
                assert "latitude" not in kept and "formatted_name" not in kept
            for st in value.statuses:
                assert st.id and st.status and any(st.recipient)


def test_corpus_is_present_or_skipped() -> None:
    if not VARIANTS:
        pytest.skip("peer webhook fixtures are not present next to the repository")
    assert len(VARIANTS) > 50


@pytest.mark.parametrize(
    ("file", "name", "expected"),
    [
        ("message", "text", {"text": "Body Text"}),
        ("message", "image", {"media": {"id": "65463453", "mime_type": "image/jpeg"}}),
        ("message", "media_with_url", {"media": {"id": "65463453", "mime_type": "image/jpeg"}}),
        (
            "message",
            "video",
            {"media": {"id": "765756756", "mime_type": "video/mp4"}, "caption": "caption"},
        ),
        (
            "message",
            "document",
            {
                "media": {"id": "1234567890987654321", "mime_type": "application/pdf"},
                "caption": "caption",
                "filename": "filename.pdf",  # the contract's message.received carries it (encrypted at rest)
            },
        ),
        ("message", "voice", {"media": {"id": "1234567890987654321", "mime_type": "audio/ogg; codecs=opus"}}),
        ("message", "static_sticker", {"media": {"id": "1234567890987654321", "mime_type": "image/webp"}}),
        ("message", "reaction", {"reaction": {"message_id": "wamid.yzxyzx=", "emoji": "😮"}}),
        ("message", "unreaction_no_emoji", {"reaction": {"message_id": "wamid.yzxyzx="}}),
        ("message", "current_location", {}),
        ("message", "chosen_location", {}),
        ("message", "contacts", {}),
        (
            "message",
            "order",
            {
                "order": {
                    "catalog_id": "354160437058781",
                    "items": [
                        {"product_retailer_id": "HAMBURGER", "quantity": 3},
                        {"product_retailer_id": "FRENCH_FRIES", "quantity": 2},
                        {"product_retailer_id": "SODA", "quantity": 2},
                    ],
                }
            },
        ),
        (
            "message",
            "unsupported",
            {"errors": [{"code": 131051, "title": "Message type unknown"}]},
        ),
        (
            "message",
            "unsupported_with_type",
            {"errors": [{"code": 131051, "title": "Message type unknown"}], "unsupported_type": "pool"},
        ),
        ("message", "reply", {"text": "replied text", "context_id": "wamid.xyzxyz=="}),
        ("message", "referral", {"text": "BODY"}),
        (
            "callback_button",
            "button",
            {
                "selection": {"kind": "button_reply", "id": "callback_data", "title": "title"},
                "context_id": "wamid.xyzxyz",
            },
        ),
        (
            "callback_button",
            "quick_reply_without_context",
            {"selection": {"kind": "quick_reply", "id": "callback_data", "title": "title"}},
        ),
        (
            "callback_selection",
            "description",
            {
                "selection": {"kind": "list_reply", "id": "callback_data", "title": "title"},
                "context_id": "wamid.xyzxyz",
            },
        ),
        ("system", "phone_number_change", {"system_type": "user_changed_number"}),
        ("deleted_message", "revoke", {"original_id": "<ORIGINAL_WHATSAPP_MESSAGE_ID>"}),
        (
            "call_permission_update",
            "accept",
            {"selection": {"kind": "call_permission_reply", "response": "accept"}, "context_id": "wamid.y=="},
        ),
    ],
)
def test_minimized_content(file: str, name: str, expected: dict) -> None:
    assert minimize.content(only_message(file, name), SETTINGS) == expected


def test_flow_reply_keeps_the_response_json() -> None:
    kept = minimize.content(only_message("flow_completion", "completion"), SETTINGS)
    assert json.loads(kept["selection"]["response_json"])["comment_text"] == "Comment Text"
    assert kept["selection"]["kind"] == "nfm_reply"


def test_edit_keeps_the_new_caption_and_original_id() -> None:
    kept = minimize.content(only_message("edited_message", "image"), SETTINGS)
    assert kept["original_id"].startswith("wamid.")
    assert kept["edited"]["caption"] == "Updated image caption"
    assert kept["edited"]["media"] == {"id": "1234567890", "mime_type": "image/jpeg"}


def test_locations_and_cards_are_kept_only_when_configured() -> None:
    loc = minimize.content(only_message("message", "chosen_location"), KEEP_ALL)
    assert loc["location"]["name"] == "Facebook HQ" and loc["location"]["latitude"] == pytest.approx(
        37.4611978
    )
    cards = minimize.content(only_message("message", "contacts"), KEEP_ALL)
    assert cards["contact_cards"][0]["name"]["formatted_name"] == "Chandler Bing"


def test_sender_without_phone_is_known_by_user_id() -> None:
    msg = Message.model_validate(
        {"from_user_id": "US.13491208655302741918", "id": "wamid.1", "timestamp": "1", "type": "text"}
    )
    assert msg.sender == "US.13491208655302741918" and msg.from_ is None
    assert ingest.pick_ref(msg.from_, msg.from_user_id) == "US.13491208655302741918"


def test_group_status_is_about_the_participant() -> None:
    value = ChangeValue.model_validate(variant("message_status", "group")["entry"][0]["changes"][0]["value"])
    (st,) = value.statuses
    assert st.recipient == ("<GROUP_PARTICIPANT_USER_PHONE_NUMBER>", "US.123456")
    assert ingest.pick_ref(*st.recipient) == "US.123456"


def test_failed_status_errors_and_preferences_parse() -> None:
    value = ChangeValue.model_validate(variant("message_status", "failed")["entry"][0]["changes"][0]["value"])
    assert value.statuses[0].errors[0].code == 130472
    value = ChangeValue.model_validate(
        variant("user_marketing_preferences", "resume")["entry"][0]["changes"][0]["value"]
    )
    pref = value.user_preferences[0]
    assert (pref.value, pref.category, pref.timestamp) == ("resume", "marketing_messages", 1731705721)


def test_unknown_fields_and_nulls_are_tolerated() -> None:
    value = ChangeValue.model_validate(
        {
            "messages": [
                {
                    "from": "4915112345678",
                    "id": "wamid.1",
                    "timestamp": 1700000000,
                    "type": "brand_new_type",
                    "brand_new_type": {"x": 1},
                    "text": None,
                }
            ],
            "statuses": None,
            "something_new": {"a": [1]},
        }
    )
    assert value.messages[0].timestamp == 1700000000 and value.statuses == []
    assert minimize.content(value.messages[0], SETTINGS) == {}


def test_keyword_text_comes_from_text_and_quick_reply_buttons_only() -> None:
    assert minimize.said(only_message("message", "text")) == "Body Text"
    assert minimize.said(only_message("callback_button", "quick_reply")) == "title"
    assert minimize.said(only_message("callback_selection", "callback")) is None
    assert minimize.said(only_message("message", "video")) is None
