"""waguard.graph_fake: strict like Meta, scriptable, observable, silent; and domain.graph.send against it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from domain import graph
from waguard import graph_fake

PATH = "/v25.0/106540352242922/messages"
TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "4915112345678",
    "type": "text",
    "text": {"body": "hello", "preview_url": False},
}


@pytest.fixture(scope="module")
def fake():
    server, _ = graph_fake.start()
    yield server
    server.shutdown()


@pytest.fixture(autouse=True)
def _clean(fake):
    fake.reset()
    fake.expected_token = None


def post(fake, body, token="tok", path=PATH, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(fake.base_url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_meta_error(status, body, want_status, want_code):
    assert status == want_status
    err = body["error"]
    assert err["code"] == want_code and err["type"] == "OAuthException"
    assert isinstance(err["message"], str) and err["fbtrace_id"]
    if want_code == 100:
        assert err["error_data"]["messaging_product"] == "whatsapp" and err["error_data"]["details"]


def test_accepts_metas_text_body(fake):
    status, body = post(fake, TEXT)
    assert status == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "4915112345678", "wa_id": "4915112345678"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    (call,) = fake.calls()
    assert call["path"] == PATH and call["body"] == TEXT and call["headers"]["Authorization"] == "Bearer tok"


def test_accepts_template_and_bsuid(fake):
    tpl = {k: v for k, v in TEXT.items() if k not in ("text", "to")}
    tpl.update(
        recipient="US.13491208655302741918",
        type="template",
        template={"name": "spring_sale", "language": {"code": "en_US"}},
    )
    status, body = post(fake, tpl)
    assert status == 200 and body["contacts"][0]["user_id"] == "US.13491208655302741918"
    assert body["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize(
    "change",
    [
        {"messaging_product": "sms"},
        {"messaging_product": None},
        {"to": None},
        {"type": "fax"},
        {"text": None},
        {"text": {"body": ""}},
        {"text": {"body": "x" * 4097}},
        {"text": {"body": "hi", "preview_url": "yes"}},
        {"type": "template", "template": {"language": {"code": "en_US"}}},
        {"type": "template", "template": {"name": "x"}},
        {"type": "template", "template": {"name": "x", "language": {}}},
        {"type": "template", "template": {"name": "x", "language": {"code": "en"}, "components": [1]}},
        {"recipient_type": "group"},
    ],
)
def test_refuses_what_meta_refuses(fake, change):
    body = {k: v for k, v in {**TEXT, **change}.items() if v is not None}
    status, answer = post(fake, body)
    assert_meta_error(status, answer, 400, 100)


def test_refuses_non_json_and_wrong_content_type(fake):
    assert_meta_error(*post(fake, b"not json"), 400, 100)
    assert_meta_error(*post(fake, TEXT, content_type="text/plain"), 400, 100)
    assert_meta_error(*post(fake, TEXT, path="/v25.0/106540352242922/other"), 400, 100)


def test_token_required_and_checked(fake):
    assert_meta_error(*post(fake, TEXT, token=None), 401, 190)
    fake.expected_token = "right"
    assert_meta_error(*post(fake, TEXT, token="wrong"), 401, 190)
    assert post(fake, TEXT, token="right")[0] == 200


def test_script_then_normal_behaviour(fake):
    fake.script([{"code": 130429}, {"status": 500, "body": {"error": {"code": 131000}}}, {"delay": 0.2}])
    assert_meta_error(*post(fake, TEXT), 400, 130429)
    assert post(fake, TEXT) == (500, {"error": {"code": 131000}})
    started = time.monotonic()
    assert post(fake, TEXT)[0] == 200
    assert time.monotonic() - started >= 0.2
    assert post(fake, TEXT)[0] == 200
    assert len(fake.calls()) == 4


def test_control_endpoints_over_http(fake):
    req = urllib.request.Request(
        fake.base_url + "/_fake/script",
        data=json.dumps({"responses": [{"code": 131050}]}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as answer:
        assert json.loads(answer.read())["scripted"] == 1
    assert_meta_error(*post(fake, TEXT), 400, 131050)
    with urllib.request.urlopen(fake.base_url + "/_fake/calls", timeout=5) as answer:
        calls = json.loads(answer.read())
    assert [c["method"] for c in calls] == ["POST"] and calls[0]["body"] == TEXT
    with urllib.request.urlopen(urllib.request.Request(fake.base_url + "/_fake/reset", method="POST")) as a:
        assert a.status == 200
    assert fake.calls() == []


def test_never_prints(fake, capsys):
    post(fake, TEXT, token="secret-token-123")
    post(fake, {**TEXT, "text": {"body": ""}}, token="secret-token-123")
    out = capsys.readouterr()
    assert "secret-token-123" not in out.out + out.err and "4915112345678" not in out.out + out.err


def test_graph_send_against_fake(fake):
    url = graph.messages_url(fake.base_url, "v25.0", "106540352242922")
    ok = graph.send(url, "tok", graph.message_body({"to": "4915112345678", "text": "hello"}))
    assert ok.ok and ok.wamid.startswith("wamid.")
    assert fake.calls()[-1]["body"] == TEXT
    fake.script([{"code": 131026}, {"code": 131056}])
    failed = graph.send(url, "tok", TEXT)
    assert failed.code == 131026 and not failed.retryable and failed.title == "Message Undeliverable"
    throttled = graph.send(url, "tok", TEXT)
    assert throttled.code == 131056 and throttled.retryable and throttled.throttled


def test_graph_send_timeout_and_connection_error(fake):
    url = graph.messages_url(fake.base_url, "v25.0", "1")
    fake.script([{"delay": 1.0}])
    slow = graph.send(url, "tok", TEXT, timeout=0.2)
    assert slow.http_status is None and slow.retryable and slow.title == "timeout"
    server, base = graph_fake.start()
    server.shutdown()
    refused = graph.send(graph.messages_url(base, "v25.0", "1"), "tok", TEXT, timeout=1)
    assert refused.http_status is None and refused.retryable and refused.error["code"] == "network"


def test_ipv6_loopback():
    try:
        server, base = graph_fake.start(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        result = graph.send(graph.messages_url(base, "v25.0", "1"), "tok", TEXT)
        assert result.ok
    finally:
        server.shutdown()
