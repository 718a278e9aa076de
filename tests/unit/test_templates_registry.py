"""The template registry's pure parts (issue 22): what a template asks for (Meta's template shape), whether
a send's components fill it (Meta's send shape), the body as read, Meta's objects and webhooks read into
entries; and the Graph fake's list answers checked against Meta's own OpenAPI file."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from domain import template_fit, templates
from tests import factory as f
from waguard import graph_fake, meta_schema
from waguard.graph_fake_templates import DEFAULT_TEMPLATES

BY_NAME = {t["name"]: t for t in DEFAULT_TEMPLATES}


def comps(name: str) -> list[dict[str, Any]]:
    return BY_NAME[name]["components"]


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_parameters_of_each_shape() -> None:
    assert template_fit.parameters(comps("spring_sale")) == {"header": None, "body": [], "buttons": []}
    assert template_fit.parameters(comps("new_arrivals")) == {"header": "image", "body": ["1"], "buttons": []}
    assert template_fit.parameters(comps("order_update")) == {
        "header": None,
        "body": ["1", "2"],
        "buttons": [0],
    }
    assert template_fit.parameters(comps("parcel_window"))["body"] == ["parcel", "day"]
    assert template_fit.parameters(comps("login_code"))["buttons"] == [0]
    otp = [{"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy"}]}]
    assert template_fit.parameters(otp)["buttons"] == [0]
    text_header = [
        {"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
        {"type": "BODY", "text": "{{1}} {{1}}"},
    ]
    assert template_fit.parameters(text_header) == {"header": "text", "body": ["1"], "buttons": []}


@pytest.mark.parametrize(
    ("name", "given"),
    [
        ("spring_sale", None),
        ("spring_sale", []),
        (
            "order_update",
            [
                {"type": "body", "parameters": [text("Ana"), text("A-7")]},
                {"type": "button", "sub_type": "url", "index": 0, "parameters": [text("A-7")]},
            ],
        ),
        (
            "new_arrivals",
            [
                {"type": "header", "parameters": [{"type": "image", "image": {"id": "1234"}}]},
                {"type": "body", "parameters": [text("shirts")]},
            ],
        ),
        ("login_code", f.OTP_COMPONENTS),
        (
            "parcel_window",
            [
                {
                    "type": "body",
                    "parameters": [
                        {**text("Montag"), "parameter_name": "day"},
                        {**text("P-7"), "parameter_name": "parcel"},
                    ],
                }
            ],
        ),
    ],
)
def test_components_that_fill_the_template(name: str, given: Any) -> None:
    t = BY_NAME[name]
    template_fit.check(t["components"], t.get("parameter_format", "POSITIONAL"), given)


@pytest.mark.parametrize(
    ("name", "given", "why"),
    [
        ("spring_sale", [{"type": "body", "parameters": [text("x")]}], "takes no parameters"),
        ("spring_sale", [{"type": "header", "parameters": [text("x")]}], "header takes no parameter"),
        ("order_update", [{"type": "body", "parameters": [text("Ana"), text("A-7")]}], "need a parameter"),
        (
            "order_update",
            [
                {"type": "body", "parameters": [text("Ana"), text(" ")]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [text("A")]},
            ],
            "non-empty",
        ),
        (
            "order_update",
            [
                {"type": "body", "parameters": [text("Ana"), text("A")]},
                {"type": "button", "sub_type": "url", "index": "1", "parameters": [text("A")]},
            ],
            "button 1",
        ),
        (
            "order_update",
            [
                {"type": "body", "parameters": [text("Ana"), text("A")]},
                {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []},
            ],
            "URL buttons",
        ),
        (
            "new_arrivals",
            [
                {"type": "header", "parameters": [{"type": "image", "image": {"link": "http://x/a.jpg"}}]},
                {"type": "body", "parameters": [text("a")]},
            ],
            "https link",
        ),
        (
            "new_arrivals",
            [
                {"type": "header", "parameters": [{"type": "video", "video": {"id": "1"}}]},
                {"type": "body", "parameters": [text("a")]},
            ],
            "one image",
        ),
        ("new_arrivals", [{"type": "body", "parameters": [text("a")]}], "needs a image"),
        ("login_code", f.OTP_COMPONENTS[:1], "need a parameter"),
        (
            "parcel_window",
            [{"type": "body", "parameters": [text("P-7"), text("Montag")]}],
            "named parcel, day",
        ),
        ("spring_sale", [{"type": "footer"}], "unknown component"),
        ("spring_sale", ["x"], "objects"),
    ],
)
def test_components_that_do_not_fit(name: str, given: Any, why: str) -> None:
    t = BY_NAME[name]
    with pytest.raises(template_fit.Misfit, match=why):
        template_fit.check(t["components"], t.get("parameter_format", "POSITIONAL"), given)


def test_the_body_as_read() -> None:
    given = [{"type": "body", "parameters": [text("Ana"), text("A-7")]}]
    assert template_fit.render(comps("order_update"), given) == "Hi Ana, your order A-7 has shipped."
    named = [
        {
            "type": "body",
            "parameters": [
                {**text("Montag"), "parameter_name": "day"},
                {**text("P-7"), "parameter_name": "parcel"},
            ],
        }
    ]
    assert template_fit.render(comps("parcel_window"), named) == "Ihr Paket P-7 kommt am Montag."
    assert template_fit.render(comps("spring_sale"), None).startswith("Our spring sale starts today")
    money = [
        {
            "type": "body",
            "parameters": [
                {"type": "currency", "currency": {"fallback_value": "$5", "code": "USD", "amount_1000": 5000}}
            ],
        }
    ]
    assert template_fit.render([{"type": "BODY", "text": "Pay {{1}}"}], money) == "Pay $5"


def test_metas_objects_become_entries() -> None:
    doc = {**BY_NAME["login_code"], "id": "77", "status": "approved", "quality_score": {"score": "GREEN"}}
    entry = templates.of_meta(doc, 1_700_000_000)
    assert entry is not None
    assert (entry.id, entry.category, entry.status, entry.quality, entry.purpose) == (
        "77",
        "AUTHENTICATION",
        "APPROVED",
        "GREEN",
        "authentication",
    )
    assert entry.public()["parameters"] == {"header": None, "body": ["1"], "buttons": [0]}
    assert entry.public()["updated_at"] == "2023-11-14T22:13:20Z"
    assert templates.of_meta({"name": "Bad Name", "language": "en"}, 0) is None
    assert templates.of_meta({"name": "ok", "language": "english"}, 0) is None
    assert templates.of_meta("x", 0) is None


def test_the_fakes_template_pages_conform_to_metas_schema() -> None:
    schema = meta_schema.load()
    if schema is None:
        pytest.skip("Meta's OpenAPI file (../shared/meta/) is absent")
    server, base = graph_fake.start()
    try:
        server.waba.page_size = 4
        url, pages = f"{base}/v23.0/{server.waba.id}/message_templates", []
        while url:
            request = urllib.request.Request(url, headers={"Authorization": "Bearer t"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                page = json.loads(answer.read())
            assert schema.template_list_errors(page) == [], page
            pages.append(page)
            url = page.get("paging", {}).get("next")
    finally:
        server.shutdown()
    assert [len(p["data"]) for p in pages] == [4, 2]
    assert {t["name"] for p in pages for t in p["data"]} == set(BY_NAME)
    # the schema is not a rubber stamp: a page of the wrong shape is refused
    assert schema.template_list_errors({"data": [{"name": 5}]}) != []
