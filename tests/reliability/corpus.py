"""Webhook deliveries of every inbound type with distinctive personal values, and the pywa corpus.

`PERSONAL` lists every personal value the built deliveries carry (phone numbers, business-scoped user
ids, profile names, message texts): the PII-in-logs test looks for each in everything logged.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests import factory as f

PHONE = "4917612398745"
PHONE_2 = "5511987651234"
PHONE_3 = "14155550172"
USER_ID = "DE.7730915522468801"
USER_ID_2 = "BR.ENT.88123409876512"
NAME = "Zebulon Quixote-Marlowe"
NAME_2 = "Ifeoma Varga-Lindqvist"
TEXT = "my order kumquat-7731 never arrived"
CAPTION = "receipt for the blue heron lamp"
BUTTON_TEXT = "Talk to Wilhelmina"
LIST_TITLE = "Bring the saxophone"
FLOW_JSON = '{"favourite_colour": "chartreuse-sunset"}'
ORDER_TEXT = "two packets of marzipan-lollies"
REACTION = "\U0001f9a6"  # otter
EDITED = "corrected: kumquat-7732"
CONTACT_CARD_NAME = "Bartholomew Okonkwo-Reyes"
CONTACT_CARD_PHONE = "+44 7700 900123"
LOCATION_NAME = "Grünspan Bakery"
LOCATION_ADDRESS = "Ottensener Hauptstraße 9"
REPLY_TEXT = "replying with pistachio-owl"
OUT_TEXT = "Your parcel for pistachio-owl ships today"

PERSONAL: list[str] = [
    PHONE,
    PHONE_2,
    PHONE_3,
    USER_ID,
    USER_ID_2,
    NAME,
    NAME_2,
    TEXT,
    CAPTION,
    BUTTON_TEXT,
    LIST_TITLE,
    "chartreuse-sunset",
    ORDER_TEXT,
    EDITED,
    CONTACT_CARD_NAME,
    CONTACT_CARD_PHONE,
    "447700900123",
    LOCATION_NAME,
    LOCATION_ADDRESS,
    REPLY_TEXT,
    OUT_TEXT,
]


def _m(kind: str, payload: dict[str, Any], sender: str = PHONE, **kw: Any) -> dict[str, Any]:
    return f.message(sender, kind, payload, **kw)


def inbound_messages(sender: str = PHONE) -> list[dict[str, Any]]:
    """One message of every inbound type Meta documents, each with a fresh wamid."""
    media = {"mime_type": "image/jpeg", "sha256": secrets.token_hex(8), "id": "1003383421387256"}
    return [
        f.text_message(sender, TEXT),
        _m("image", {"image": {**media, "caption": CAPTION}}, sender),
        _m(
            "audio",
            {"audio": {"mime_type": "audio/ogg; codecs=opus", "id": "2003383421387256", "voice": True}},
            sender,
        ),
        _m(
            "video",
            {"video": {"mime_type": "video/mp4", "id": "3003383421387256", "caption": CAPTION}},
            sender,
        ),
        _m(
            "document",
            {
                "document": {
                    "mime_type": "application/pdf",
                    "id": "4003383421387256",
                    "filename": "invoice-kumquat.pdf",
                    "caption": CAPTION,
                }
            },
            sender,
        ),
        _m(
            "sticker",
            {"sticker": {"mime_type": "image/webp", "id": "5003383421387256", "animated": False}},
            sender,
        ),
        _m(
            "location",
            {
                "location": {
                    "latitude": 53.5511,
                    "longitude": 9.9937,
                    "name": LOCATION_NAME,
                    "address": LOCATION_ADDRESS,
                }
            },
            sender,
        ),
        _m(
            "contacts",
            {
                "contacts": [
                    {
                        "name": {"formatted_name": CONTACT_CARD_NAME, "first_name": "Bartholomew"},
                        "phones": [{"phone": CONTACT_CARD_PHONE, "wa_id": "447700900123", "type": "CELL"}],
                    }
                ]
            },
            sender,
        ),
        _m(
            "interactive",
            {"interactive": {"type": "button_reply", "button_reply": {"id": "btn-1", "title": BUTTON_TEXT}}},
            sender,
        ),
        _m(
            "interactive",
            {
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "row-2", "title": LIST_TITLE, "description": "with the saxophone"},
                }
            },
            sender,
        ),
        _m(
            "interactive",
            {
                "interactive": {
                    "type": "nfm_reply",
                    "nfm_reply": {"response_json": FLOW_JSON, "body": "Sent", "name": "flow"},
                }
            },
            sender,
        ),
        _m("button", {"button": {"payload": "CALL_ME", "text": BUTTON_TEXT}}, sender),
        _m("reaction", {"reaction": {"message_id": f.wamid(), "emoji": REACTION}}, sender),
        _m(
            "order",
            {
                "order": {
                    "catalog_id": "987654321",
                    "text": ORDER_TEXT,
                    "product_items": [
                        {
                            "product_retailer_id": "sku-1",
                            "quantity": "2",
                            "item_price": "3.5",
                            "currency": "EUR",
                        }
                    ],
                }
            },
            sender,
        ),
        _m(
            "text",
            {"text": {"body": REPLY_TEXT}, "context": {"from": f.DISPLAY_NUMBER, "id": f.wamid()}},
            sender,
        ),
        _m(
            "edit",
            {
                "edit": {
                    "original_message_id": f.wamid(),
                    "message": {"type": "text", "text": {"body": EDITED}},
                }
            },
            sender,
        ),
        _m("revoke", {"revoke": {"original_message_id": f.wamid()}}, sender),
        _m(
            "system",
            {
                "system": {
                    "body": f"{NAME} changed their phone number to {PHONE_2}",
                    "wa_id": PHONE_2,
                    "type": "user_changed_number",
                }
            },
            sender,
        ),
        _m(
            "unsupported",
            {"errors": [{"code": 131051, "title": "Message type unknown"}], "unsupported": {"type": "poll"}},
            sender,
        ),
    ]


def inbound_deliveries() -> list[tuple[str, dict[str, Any]]]:
    """(name, delivery) of every inbound type, incl. a user-id-only sender and a batched delivery."""
    out: list[tuple[str, dict[str, Any]]] = []
    for msg in inbound_messages():
        body = f.webhook_body([msg], contacts=[f.contact(PHONE, NAME, user_id=USER_ID)])
        out.append((f"inbound-{msg['type']}", body))
    uid_only = f.text_message(None, TEXT, user_id=USER_ID_2)
    out.append(
        ("inbound-user-id-only", f.webhook_body([uid_only], contacts=[f.contact(None, NAME_2, USER_ID_2)]))
    )
    batch = f.batched(
        f.webhook_body([f.text_message(PHONE_2, TEXT)], contacts=[f.contact(PHONE_2, NAME_2)]),
        f.webhook_body([f.text_message(PHONE_3, CAPTION)], contacts=[f.contact(PHONE_3, NAME)]),
    )
    out.append(("inbound-batched", batch))
    return out


pywa_available = f.pywa_available
PYWA_PERSONAL = f.PYWA_PERSONAL


def pywa_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Every variant of the pywa corpus (empty when absent), wamids made unique per variant."""
    if not pywa_available():
        return []
    out = []
    for stem, name, body in f.pywa_variants():
        text = json.dumps(body).replace("wamid.xyzxyz", f.wamid())
        out.append((f"pywa-{stem}-{name}", json.loads(text)))
    return out


def valid_deliveries() -> list[tuple[str, dict[str, Any]]]:
    """Seeds for mutation fuzzing: every built type, statuses, preferences, and the pywa corpus."""
    seeds = inbound_deliveries()
    seeds.append(
        (
            "status-failed",
            f.webhook_body(
                statuses=[f.status(f.wamid(), "failed", PHONE, errors=[f.meta_error(131050, "stopped")])]
            ),
        )
    )
    seeds.append(("status-read", f.webhook_body(statuses=[f.status(f.wamid(), "read", PHONE)])))
    seeds.append(
        (
            "preference-stop",
            f.webhook_body(
                field="user_preferences",
                user_preferences=[f.user_preference(PHONE, "stop")],
                contacts=[f.contact(PHONE, NAME)],
            ),
        )
    )
    return seeds + pywa_bodies()
