"""POST /messages kinds: every limit of the contract at the limit (accepted) and just past it (refused,
the error naming the field); Graph bodies per kind conform to Meta's schema when its file is present."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from domain import graph
from models.api_messages import SendMessageRequest
from models.message_kinds import is_one_emoji

BASE = {"to": "4915112345678", "purpose": "service"}
IMAGE = {"image": {"link": "https://example.com/a.jpg"}}
DOCUMENT = {"document": {"link": "https://example.com/a.pdf", "filename": "a.pdf"}}
BUTTON = {
    "interactive": {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
    }
}
LIST = {
    "interactive": {
        "type": "list",
        "body": {"text": "Choose"},
        "action": {"button": "Options", "sections": [{"title": "S", "rows": [{"id": "r1", "title": "One"}]}]},
    }
}
CTA = {
    "interactive": {
        "type": "cta_url",
        "body": {"text": "See it"},
        "action": {"name": "cta_url", "parameters": {"display_text": "Open", "url": "https://example.com"}},
    }
}
LOCATION = {"location": {"latitude": 52.52, "longitude": 13.405, "name": "Office", "address": "Main St 1"}}
REACTION = {"reaction": {"message_id": "msg_" + "0" * 24, "emoji": "👍"}}


def body(kind: dict[str, Any], path: str = "", value: Any = None) -> dict[str, Any]:
    """BASE + kind, with the value at dotted `path` (list indexes as numbers) replaced."""
    out = {**BASE, **copy.deepcopy(kind)}
    if path:
        keys = path.split(".")
        node: Any = out
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return out


def buttons(n: int) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": f"b{i}", "title": f"Button {i}"}} for i in range(n)]


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "title": f"Row {i}"} for i in range(start, start + n)]


def sections(n: int, per: int = 1) -> list[dict[str, Any]]:
    return [{"title": f"S{i}", "rows": rows(per, i * per)} for i in range(n)]


# (case id, kind, dotted path, value at the limit, value just past it, the field the error names)
LIMITS = [
    ("caption", IMAGE, "image.caption", "c" * 1024, "c" * 1025, "caption"),
    ("video-caption", {"video": {"link": "https://e.com/v.mp4"}}, "video.caption", "c" * 1024, "c" * 1025,
     "caption"),
    ("doc-caption", DOCUMENT, "document.caption", "c" * 1024, "c" * 1025, "caption"),
    ("doc-filename", DOCUMENT, "document.filename", "f" * 240, "f" * 241, "filename"),
    ("buttons", BUTTON, "interactive.action.buttons", buttons(3), buttons(4), "buttons"),
    ("buttons-min", BUTTON, "interactive.action.buttons", buttons(1), [], "buttons"),
    ("button-title", BUTTON, "interactive.action.buttons.0.reply.title", "t" * 20, "t" * 21, "title"),
    ("button-id", BUTTON, "interactive.action.buttons.0.reply.id", "i" * 256, "i" * 257, "id"),
    ("body-text", BUTTON, "interactive.body.text", "b" * 1024, "b" * 1025, "body"),
    ("header-text", BUTTON, "interactive.header", {"type": "text", "text": "h" * 60},
     {"type": "text", "text": "h" * 61}, "header"),
    ("footer-text", LIST, "interactive.footer", {"text": "f" * 60}, {"text": "f" * 61}, "footer"),
    ("list-label", LIST, "interactive.action.button", "l" * 20, "l" * 21, "button"),
    ("list-sections", LIST, "interactive.action.sections", sections(10), sections(11), "sections"),
    ("list-rows-in-all", LIST, "interactive.action.sections", sections(2, 5), sections(2, 6) , "rows"),
    ("list-rows-one-section", LIST, "interactive.action.sections.0.rows", rows(10), rows(11), "rows"),
    ("row-title", LIST, "interactive.action.sections.0.rows.0.title", "r" * 24, "r" * 25, "title"),
    ("row-description", LIST, "interactive.action.sections.0.rows.0.description", "d" * 72, "d" * 73,
     "description"),
    ("row-id", LIST, "interactive.action.sections.0.rows.0.id", "i" * 200, "i" * 201, "id"),
    ("section-title", LIST, "interactive.action.sections.0.title", "s" * 24, "s" * 25, "title"),
    ("cta-text", CTA, "interactive.action.parameters.display_text", "d" * 20, "d" * 21, "display_text"),
    ("cta-https", CTA, "interactive.action.parameters.url", "https://e.com/x", "http://e.com/x", "url"),
    ("media-https", IMAGE, "image.link", "https://e.com/a.jpg", "ftp://e.com/a.jpg", "link"),
    ("lat-max", LOCATION, "location.latitude", 90, 90.0001, "latitude"),
    ("lat-min", LOCATION, "location.latitude", -90.0, -90.0001, "latitude"),
    ("lon-max", LOCATION, "location.longitude", 180, 180.0001, "longitude"),
    ("lon-min", LOCATION, "location.longitude", -180, -180.5, "longitude"),
    ("emoji-one", REACTION, "reaction.emoji", "👍", "👍👍", "emoji"),
    ("emoji-remove", REACTION, "reaction.emoji", "", "a", "emoji"),
    ("text", {"text": {"body": "x"}}, "text.body", "x" * 4096, "x" * 4097, "body"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "path", "ok", "bad", "field"), [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS]
)
def test_at_the_limit_accepted_just_past_refused_naming_the_field(kind, path, ok, bad, field):
    assert SendMessageRequest.model_validate(body(kind, path, ok))
    with pytest.raises(ValidationError) as refused:
        SendMessageRequest.model_validate(body(kind, path, bad))
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("two-kinds", {**IMAGE, "text": {"body": "x"}}),
        ("media-link-and-id", {"image": {"link": "https://e.com/a.jpg", "media_id": "m1"}}),
        ("media-neither", {"image": {"caption": "x"}}),
        ("audio-caption", {"audio": {"link": "https://e.com/a.ogg", "caption": "x"}}),
        ("sticker-filename", {"sticker": {"media_id": "m1", "filename": "x"}}),
        ("image-filename", {"image": {"link": "https://e.com/a.jpg", "filename": "x"}}),
        ("interactive-unknown-type", {"interactive": {**BUTTON["interactive"], "type": "product"}}),
        (
            "interactive-no-body",
            {"interactive": {k: v for k, v in BUTTON["interactive"].items() if k != "body"}},
        ),
        ("duplicate-button-ids", body(BUTTON, "interactive.action.buttons", [buttons(1)[0]] * 2)),
        (
            "untitled-sections",
            body(LIST, "interactive.action.sections", [{"rows": rows(1)}, {"rows": rows(1, 1)}]),
        ),
        ("location-string", body(LOCATION, "location.latitude", "52.5")),
        ("location-bool", body(LOCATION, "location.latitude", True)),
        ("reaction-reply", {**REACTION, "reply_to": "msg_" + "1" * 24}),
        ("emoji-with-text", body(REACTION, "reaction.emoji", "👍 ok")),
        ("from-not-digits", {**IMAGE, "from": "abc"}),
        ("link-with-space", body(IMAGE, "image.link", "https://e.com/a b.jpg")),
    ],
)
def test_refused_shapes(case, extra):
    with pytest.raises(ValidationError):
        SendMessageRequest.model_validate({**BASE, **extra})


@pytest.mark.parametrize("emoji", ["👍", "❤️", "👍🏽", "👩‍👩‍👧", "🇩🇪", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☕", "🏳️‍🌈"])
def test_one_emoji(emoji):
    assert is_one_emoji(emoji)


@pytest.mark.parametrize("value", ["", "a", "👍👍", "🇩", "1", "👍 ", ":)", "\u200d", "👍\u200d"])
def test_not_one_emoji(value):
    assert not is_one_emoji(value)


def _meta(content: dict[str, Any]) -> dict[str, Any]:
    return graph.message_body({"to": "4915112345678", **content})


KINDS = {
    "image": {"kind": "image", "image": {"link": "https://e.com/a.jpg", "caption": "c"}},
    "video": {"kind": "video", "video": {"link": "https://e.com/a.mp4"}},
    "audio": {"kind": "audio", "audio": {"media_id": "m1"}, "graph": {"media": "1234567890"}},
    "document": {"kind": "document", "document": {"link": "https://e.com/a.pdf", "filename": "a.pdf"}},
    "sticker": {"kind": "sticker", "sticker": {"link": "https://e.com/a.webp"}},
    "button": {"kind": "interactive", **BUTTON},
    "list": {"kind": "interactive", **LIST},
    "cta_url": {"kind": "interactive", **CTA},
    "location": {"kind": "location", **LOCATION},
    "reaction": {"kind": "reaction", **REACTION, "graph": {"reaction": "wamid.AAA"}},
    "reply": {"kind": "text", "text": "hi", "reply_to": "in_x", "graph": {"context": "wamid.BBB"}},
    "template": {"template": {"name": "x", "language": {"code": "en"}}},
}


def test_graph_bodies_use_metas_ids_not_waguards():
    assert _meta(KINDS["audio"])["audio"] == {"id": "1234567890"}
    assert _meta(KINDS["reaction"])["reaction"] == {"message_id": "wamid.AAA", "emoji": "👍"}
    assert _meta(KINDS["reply"])["context"] == {"message_id": "wamid.BBB"}
    assert _meta(KINDS["cta_url"])["interactive"]["action"]["parameters"]["url"] == "https://example.com"


@pytest.mark.parametrize("name", list(KINDS))
def test_graph_body_conforms_to_metas_schema(name):
    from waguard import meta_schema

    schema = meta_schema.load()
    if schema is None:
        pytest.skip("Meta's OpenAPI file (../shared/meta) is absent")
    sent = _meta(KINDS[name])
    assert schema.message_errors(sent) == []
    broken = {**sent, sent["type"]: "not an object"}
    assert schema.message_errors(broken), "the schema must refuse a malformed body"


def test_schema_refuses_what_meta_refuses_and_checks_read_receipts():
    from waguard import meta_schema

    schema = meta_schema.load()
    if schema is None:
        pytest.skip("Meta's OpenAPI file (../shared/meta) is absent")
    too_many = _meta({"kind": "interactive", **body(BUTTON, "interactive.action.buttons", buttons(4))})
    assert any("buttons" in e for e in schema.message_errors(too_many))
    no_media = {**_meta(KINDS["image"]), "image": {"caption": "x"}}
    assert schema.message_errors(no_media)
    assert schema.read_errors(graph.read_body("wamid.X", typing=True)) == []
    assert schema.read_errors({"messaging_product": "whatsapp", "status": "read"})


def test_the_graph_fake_refuses_what_metas_schema_refuses_with_metas_error():
    from waguard import graph_fake

    if meta_schema_or_none() is None:
        pytest.skip("Meta's OpenAPI file (../shared/meta) is absent")
    good = _meta({"kind": "interactive", **BUTTON})
    assert graph_fake.validate(good) is None
    too_many = _meta({"kind": "interactive", **body(BUTTON, "interactive.action.buttons", buttons(4))})
    status, error = graph_fake.validate(too_many)
    assert (
        status == 400
        and error["error"]["code"] == 100
        and "buttons" in error["error"]["error_data"]["details"]
    )
    assert graph_fake.validate({**good, "interactive": {**good["interactive"], "type": "carousel"}})
    assert graph_fake.validate(graph.read_body("wamid.X", typing=True)) is None
    assert graph_fake.validate({**graph.read_body("wamid.X"), "typing_indicator": {"type": "audio"}})


def meta_schema_or_none():
    from waguard import meta_schema

    return meta_schema.load()


def test_inbound_ids_are_stable_per_wamid_and_reveal_nothing():
    from store import messages

    first = messages.inbound_msg_id("a" * 64)
    assert first == messages.inbound_msg_id("a" * 64) and first != messages.inbound_msg_id("b" * 64)
    assert messages.is_inbound_id(first) and "a" * 8 not in first
    assert messages.msg_id_of({"sk": "IN#" + "a" * 64, "wamid_h": "a" * 64}) == first
    assert not messages.is_inbound_id("msg_" + "0" * 24)


def test_the_error_names_the_field_of_the_kind():
    with pytest.raises(ValidationError) as refused:
        SendMessageRequest.model_validate(body(BUTTON, "interactive.action.buttons", buttons(4)))
    (error,) = refused.value.errors()
    assert error["loc"][:4] == ("interactive", "button", "action", "buttons")
