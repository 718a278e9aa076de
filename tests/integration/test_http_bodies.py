"""Client mistakes in a business request body are a 4xx, never a 500 (issue 12): media types in any letter
case, non-JSON media types (415), bodies that are not UTF-8 JSON or nest too deep (400)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.http import MAX_JSON_DEPTH, json_depth
from tests import factory as f

PHONE = "4915112345678"
CONSENT = {"purpose": "marketing", "status": "granted", "source": "web-form"}


def consent_put(body: bytes | str, content_type: str | None, base64_body: bool = False) -> dict[str, Any]:
    from urllib.parse import quote

    headers = {"Content-Type": content_type} if content_type is not None else {}
    event = f.rest_event(
        "PUT",
        "/contacts/{contact}/consent",
        path=f"/contacts/{PHONE}/consent",
        body=body,
        headers=headers,
        path_params={"contact": quote(PHONE, safe="")},
        base64_body=base64_body,
    )
    return _call(event)


def _call(event: dict[str, Any]) -> dict[str, Any]:
    from handlers import contacts_api

    return contacts_api.handler(event, f.LambdaContext())


def _error(reply: dict[str, Any]) -> str:
    return str(json.loads(reply["body"]).get("error"))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "APPLICATION/JSON; charset=UTF-8",
        "application/json;charset=utf-8",
        " application/json ",
        None,  # no Content-Type: read as JSON, as API Gateway does
    ],
)
def test_json_in_any_letter_case_is_accepted(aws_stack, content_type) -> None:
    reply = consent_put(json.dumps(CONSENT), content_type)
    assert reply["statusCode"] == 200, reply["body"]
    assert json.loads(reply["body"])["status"] == "granted"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-patch+json",
        "",
    ],
)
def test_other_media_types_are_415(aws_stack, content_type) -> None:
    reply = consent_put(json.dumps(CONSENT), content_type)
    assert reply["statusCode"] == 415, reply["body"]
    assert _error(reply) == "unsupported_media_type"
    assert f.call_contacts("GET", PHONE, "/consent")["statusCode"] in (200, 404)
    assert "marketing" not in json.loads(f.call_contacts("GET", PHONE, "/consent")["body"]).get(
        "purposes", {}
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
def test_a_body_that_is_not_utf8_is_400(aws_stack, encoding) -> None:
    body = json.dumps({**CONSENT, "source": "formulaire é"}, ensure_ascii=False).encode(encoding)
    reply = consent_put(body, "application/json", base64_body=True)
    assert reply["statusCode"] == 400 and _error(reply) == "invalid_body", reply["body"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_a_body_nested_too_deep_is_400(aws_stack, depth) -> None:
    body = json.dumps({**CONSENT, "evidence": None})[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    reply = consent_put(body, "application/json")
    assert reply["statusCode"] == 400 and _error(reply) == "invalid_body", reply["body"]
    assert "nests deeper" in json.loads(reply["body"])["message"]


def test_post_messages_gets_the_same_checks(aws_stack) -> None:
    text = {"to": PHONE, "purpose": "service", "text": {"body": "hi"}}
    for content_type, expected in (("TEXT/PLAIN", 415), ("Application/Json", 422)):
        event = f.messages_post(json.dumps(text), headers={"Content-Type": content_type})
        assert f.call_messages(event)["statusCode"] == expected
    deep = f.messages_post('{"to": ' + "[" * 1000 + "]" * 1000 + "}")
    reply = f.call_messages(deep)
    assert reply["statusCode"] == 400 and _error(reply) == "invalid_body"


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "]]]"}]}') == 3
    assert json_depth('"\\"[[["') == 0
    assert json_depth("[" * 5000 + "]" * 5000) == 5000


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    content_type=st.one_of(
        st.none(),
        st.sampled_from(["application/json", "APPLICATION/JSON", "text/plain"]),
        st.text(max_size=30),
    ),
    body=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=5),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=5), inner),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_arbitrary_bodies_and_media_types_are_never_5xx(aws_stack, content_type, body) -> None:
    reply = consent_put(body, content_type, base64_body=True)
    assert reply["statusCode"] < 500, reply["body"]
