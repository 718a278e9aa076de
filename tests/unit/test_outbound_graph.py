"""domain.graph: Meta's body, error classification by Meta's code, backoff schedule, https-only URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain import graph
from shared.settings import ConfigurationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_text_body_is_metas():
    body = graph.message_body({"to": "4915112345678", "text": "Yes, it ships today."})
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": "Yes, it ships today.", "preview_url": False},
    }


def test_template_body_is_metas():
    tpl = {"name": "spring_sale", "language": {"code": "en_US"}}
    assert graph.message_body({"to": "4915112345678", "template": tpl})["template"] == tpl
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]
    body = graph.message_body({"to": "4915112345678", "template": {**tpl, "components": components}})
    assert body["type"] == "template" and body["template"]["components"] == components


def test_business_scoped_user_id_goes_in_recipient():
    body = graph.message_body({"to": "US.13491208655302741918", "text": "hi"})
    assert body["recipient"] == "US.13491208655302741918" and "to" not in body


# code -> retryable (the brief's table, every code)
CLASSIFICATION = {
    130429: True,
    80007: True,
    4: True,
    131000: True,
    1: True,
    2: True,
    131057: True,
    131056: True,
    131047: False,
    131050: False,
    131026: False,
    131049: False,
    190: False,
    100: False,
    132000: False,
    132001: False,
    132012: False,
    132999: False,
}


@pytest.mark.parametrize(("code", "retryable"), sorted(CLASSIFICATION.items()))
@pytest.mark.parametrize("http_status", [400, 401, 403, 404, 429, 500, 503])
def test_classification_is_by_metas_code(code, retryable, http_status):
    assert graph.is_retryable(http_status, code) is retryable


@pytest.mark.parametrize(
    ("http_status", "code", "retryable"),
    [
        (None, None, True),  # timeout / connection error
        (500, None, True),
        (502, None, True),
        (503, None, True),
        (429, None, True),
        (400, None, False),
        (403, 10, False),  # other 4xx
        (400, 131009, False),
        (401, None, False),
        (500, 131016, True),  # a 5xx with an unlisted code: the server's trouble
    ],
)
def test_classification_without_listed_code(http_status, code, retryable):
    assert graph.is_retryable(http_status, code) is retryable


def test_fixture_errors_parse_and_classify():
    cases = json.loads((FIXTURES / "out_meta_errors.json").read_text())["errors"]
    for case in cases:
        body = case["body"]
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        result = graph.parse_response(case["status"], raw)
        assert not result.ok
        assert result.retryable is case["retryable"], case
        assert result.throttled is case["throttled"], case
        assert result.auth_error is case.get("auth", False), case
        if isinstance(body, dict):
            assert result.code == body["error"]["code"]
            assert result.error["code"] == body["error"]["code"]
            assert result.title and not result.title.startswith("(#")


def test_title_prefers_user_title_and_never_carries_numbers():
    raw = json.dumps(
        {"error": {"code": 131026, "message": "(#131026) Recipient 4915112345678 cannot be reached"}}
    )
    result = graph.parse_response(400, raw.encode())
    assert "4915112345678" not in result.title
    raw = json.dumps({"error": {"code": 131050, "message": "(#131050) x", "error_user_title": "Stopped"}})
    assert graph.parse_response(400, raw.encode()).title == "Stopped"


def test_success_and_odd_success():
    ok = graph.parse_response(200, b'{"messaging_product":"whatsapp","messages":[{"id":"wamid.ABC"}]}')
    assert ok.ok and ok.wamid == "wamid.ABC" and not ok.retryable
    odd = graph.parse_response(200, b"{}")
    assert not odd.ok and odd.retryable  # an answer without a message id is tried again, bounded by attempts
    assert graph.GraphResult(http_status=None, title="timeout").error == {
        "code": "network",
        "title": "timeout",
    }
    assert graph.GraphResult(http_status=502).error["code"] == "http_502"


def test_backoff_full_jitter_from_base():
    # rand() -> 1.0: the ceiling of each attempt's window; rand() -> 0: at least one second.
    assert [graph.backoff_seconds(n, 2, rand=lambda: 1.0) for n in range(1, 7)] == [2, 4, 8, 16, 32, 64]
    assert [graph.backoff_seconds(n, 1, rand=lambda: 1.0) for n in range(1, 4)] == [1, 2, 4]
    assert graph.backoff_seconds(3, 2, rand=lambda: 0.0) == 1
    assert graph.backoff_seconds(3, 2, rand=lambda: 0.5) == 4
    assert graph.backoff_seconds(30, 2, rand=lambda: 1.0) == graph.MAX_BACKOFF_SECONDS
    draws = iter([0.1, 0.9])
    assert [graph.backoff_seconds(4, 2, code=130429, rand=lambda: next(draws)) for _ in range(2)] == [2, 15]


def test_backoff_pair_rate_limit_follows_metas_4_to_the_x():
    assert [graph.backoff_seconds(n, 2, code=131056, rand=lambda: 0.0) for n in range(1, 6)] == [
        4,
        16,
        64,
        256,
        graph.MAX_BACKOFF_SECONDS,
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://graph.facebook.com",
        "https://graph.facebook.com/",
        "http://127.0.0.1:8080",
        "http://localhost:1234",
        "http://[::1]:9000",
    ],
)
def test_allowed_graph_urls(url):
    assert graph.check_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://graph.facebook.com",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.evil.example",
        "ftp://graph.facebook.com",
        "file:///etc/passwd",
        "https://",
        "graph.facebook.com",
    ],
)
def test_refused_graph_urls(url):
    with pytest.raises(ConfigurationError):
        graph.check_url(url)
    with pytest.raises(ConfigurationError):
        graph.send(url + "/v25.0/1/messages", "token", {})


def test_messages_url():
    assert graph.messages_url("https://graph.facebook.com/", "v25.0", "106540352242922") == (
        "https://graph.facebook.com/v25.0/106540352242922/messages"
    )


def test_send_queue_url_from_the_records_arn(monkeypatch):
    from shared import constants as c
    from store import outbound

    monkeypatch.delenv(c.ENV_SEND_QUEUE_URL, raising=False)
    arn = "arn:aws:sqs:eu-central-1:123456789012:waguard-send"
    assert outbound.queue_url(arn) == "https://sqs.eu-central-1.amazonaws.com/123456789012/waguard-send"
    monkeypatch.setenv(c.ENV_SEND_QUEUE_URL, "https://sqs.example/1/q")
    assert outbound.queue_url(arn) == "https://sqs.example/1/q"
    monkeypatch.delenv(c.ENV_SEND_QUEUE_URL)
    with pytest.raises(ValueError):
        outbound.queue_url("arn:aws:sns:eu-central-1:1:topic")
