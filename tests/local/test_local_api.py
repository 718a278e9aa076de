"""The local API Gateway: routing, proxy events, responses, gateway errors, SigV4 and roles, over HTTP."""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.local.conftest import HANDLERS
from waguard import aws, model, roles
from waguard.api import ApiServer, LocalApi, Router
from waguard.cfn import Resolver
from waguard.workers import InvocationError

pytestmark = pytest.mark.xdist_group("local")


@pytest.fixture
def api(tpl):
    """The fixture template's API over HTTP; its one function answers in-process (echo_handlers.api)."""
    if HANDLERS not in sys.path:
        sys.path.insert(0, HANDLERS)
    import echo_handlers

    res = Resolver(tpl)
    (spec,) = model.apis(tpl, res, model.functions(tpl, res))
    principals = {"testing": roles.administrator()}
    role_keys = {}
    for name, role in model.roles(tpl, res).items():
        principal = roles.role_principal(role)
        principals[principal.access_key] = principal
        role_keys[name] = (principal.access_key, principal.secret_key)
    calls: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        calls.append(event)
        return echo_handlers.api(json.loads(json.dumps(event)), None)

    server = ApiServer(("127.0.0.1", 0), LocalApi(spec, tpl.region, invoke, principals)).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield Http(base, tpl.region, role_keys), calls, server
    server.stop()


class Http:
    def __init__(self, base: str, region: str, role_keys: dict[str, tuple[str, str]]) -> None:
        self.base, self.region, self.role_keys = base, region, role_keys

    def __call__(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: tuple[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.base + path
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if key:
            request = AWSRequest(method=method, url=url, data=body or b"", headers=hdrs)
            SigV4Auth(Credentials(*key), "execute-api", self.region).add_auth(request)
            hdrs = dict(request.headers.items())
        req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()


ADMIN = aws.ADMIN_KEY


def test_a_proxy_event_carries_what_api_gateway_sends(api, tpl) -> None:
    http, calls, _ = api
    status, headers, _body = http(
        "GET", "/webhook?hub.mode=subscribe&hub.challenge=x%20y&a=1&a=2", headers={"X-Multi": "v"}
    )
    assert status == 200
    event = calls[-1]
    assert event["resource"] == "/webhook" and event["path"] == "/webhook" and event["httpMethod"] == "GET"
    assert event["queryStringParameters"] == {"hub.mode": "subscribe", "hub.challenge": "x y", "a": "2"}
    assert event["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert event["headers"]["X-Multi"] == "v" and event["multiValueHeaders"]["X-Multi"] == ["v"]
    assert event["pathParameters"] is None and event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/webhook" and ctx["httpMethod"] == "GET" and ctx["stage"] == "prod"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userArn"] is None
    assert ctx["requestId"] == headers["x-amzn-RequestId"]
    assert ctx["apiId"] == Resolver(tpl).resolve({"Ref": "Api1234ABCD"})
    assert headers["X-Echo"] == "1" and headers["Content-Type"] == "application/json"


def test_path_parameters_are_decoded_and_the_path_is_not(api) -> None:
    http, calls, _ = api
    assert http("DELETE", "/contacts/%2B4915112345678", key=ADMIN)[0] == 200
    event = calls[-1]
    assert event["resource"] == "/contacts/{contact}"
    assert event["path"] == "/contacts/%2B4915112345678"
    assert event["pathParameters"] == {"contact": "+4915112345678"}
    assert http("GET", "/contacts/US.13491208655302741918/export", key=ADMIN)[0] == 200
    assert calls[-1]["pathParameters"] == {"contact": "US.13491208655302741918"}
    assert http("PUT", "/files/a/b%20c.txt")[0] == 200
    assert (
        calls[-1]["pathParameters"] == {"proxy": "a/b c.txt"} and calls[-1]["resource"] == "/files/{proxy+}"
    )


def test_bodies_text_and_binary(api) -> None:
    http, calls, _ = api
    assert http("POST", "/webhook", body='{"text": "héllo 📦"}'.encode())[0] == 200
    assert calls[-1]["body"] == '{"text": "héllo 📦"}' and calls[-1]["isBase64Encoded"] is False
    assert http("POST", "/webhook", body=b"\xff\xfe\x00")[0] == 200
    assert calls[-1]["isBase64Encoded"] is True and base64.b64decode(calls[-1]["body"]) == b"\xff\xfe\x00"
    status, headers, body = http("GET", "/files/binary")
    assert status == 200 and body == b"\x00\x01\xff" and headers["Content-Type"] == "application/octet-stream"


def test_multi_value_response_headers(api) -> None:
    http, _, _ = api
    request = urllib.request.Request(http.base + "/webhook")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_gateway_errors(api) -> None:
    http, calls, _ = api
    status, _headers, body = http("GET", "/nowhere")
    # The fixture customizes DEFAULT_4XX but not RESOURCE_NOT_FOUND: API Gateway uses DEFAULT_4XX then.
    assert status == 404 and json.loads(body) == {"error": "bad_request", "message": "Resource not found"}
    status, _, body = http("PATCH", "/webhook")
    assert status == 403 and json.loads(body)["error"] == "bad_request"  # the template's DEFAULT_4XX
    assert json.loads(body)["message"] == "Missing Authentication Token"
    status, _, body = http("GET", "/files/crash")
    assert status == 502 and json.loads(body) == {
        "error": "internal_error",
        "message": "Internal server error",
    }
    assert len(calls) == 1  # the crash only; refused requests never reach a function


def test_aws_iam_routes_need_a_valid_signature(api) -> None:
    http, calls, _ = api
    status, _, body = http("POST", "/messages", body=b"{}")
    assert status == 403 and json.loads(body)["message"] == "Missing Authentication Token"
    status, _, _ = http("POST", "/messages", body=b"{}", key=("testing", "wrong"))
    assert status == 403
    status, _, _ = http("POST", "/messages", body=b"{}", key=ADMIN)
    assert status == 200
    identity = calls[-1]["requestContext"]["identity"]
    assert (
        identity["userArn"] == "arn:aws:iam::123456789012:user/admin" and identity["accessKey"] == "testing"
    )
    assert len(calls) == 1


def test_body_validation_against_the_methods_model(api) -> None:
    http, calls, _ = api
    status, _, body = http("POST", "/messages", body=b"[1, 2]", key=ADMIN)
    assert status == 400 and json.loads(body) == {"error": "bad_request", "message": "Invalid request body"}
    status, _, _ = http("POST", "/messages", body=b"not json", key=ADMIN)
    assert status == 400
    assert calls == []


def test_roles_are_enforced_with_the_templates_access_denied_response(api) -> None:
    http, calls, _ = api
    sender, officer, auditor = (http.role_keys[r] for r in ("sender", "privacy-officer", "auditor"))
    assert http("POST", "/messages", body=b"{}", key=sender)[0] == 200
    assert "assumed-role/waguard-sender/local" in calls[-1]["requestContext"]["identity"]["userArn"]
    assert http("GET", "/messages/msg_1", key=sender)[0] == 200
    status, _, body = http("GET", "/contacts/4915112345678/export", key=sender)
    assert status == 403 and json.loads(body)["error"] == "forbidden"
    assert "4915112345678" not in body.decode()
    assert http("GET", "/contacts/4915112345678/export", key=officer)[0] == 200
    assert http("POST", "/messages", body=b"{}", key=officer)[0] == 403
    for method, path in (("POST", "/messages"), ("GET", "/messages/1"), ("DELETE", "/contacts/1")):
        assert http(method, path, body=b"{}" if method == "POST" else None, key=auditor)[0] == 403


def test_bodies_over_ten_megabytes_are_refused(api) -> None:
    http, calls, _ = api
    status, _, body = http("POST", "/webhook", body=b"x" * (10 * 1024 * 1024 + 1))
    assert status == 413 and json.loads(body) == {"error": "bad_request", "message": "Request Too Long"}
    assert (
        http("POST", "/webhook", body=b"x" * (4 * 1024 * 1024))[0] == 200
    )  # the handler decides below 10 MB
    assert len(calls) == 1


def test_function_failures_and_malformed_responses(tpl) -> None:
    res = Resolver(tpl)
    (spec,) = model.apis(tpl, res, model.functions(tpl, res))

    def timeout(function: str, event: dict[str, Any]) -> Any:
        raise InvocationError("Sandbox.Timedout", "Task timed out after 5.00 seconds")

    reply = LocalApi(spec, tpl.region, timeout, {}).handle("GET", "/webhook", [], b"", "127.0.0.1")
    assert reply.status == 504
    malformed = LocalApi(spec, tpl.region, lambda f, e: {"body": "no status"}, {})
    assert malformed.handle("GET", "/webhook", [], b"", "127.0.0.1").status == 502


def test_literal_segments_win_over_parameters() -> None:
    spec = lambda path: model.MethodSpec(path, "GET", "NONE", "AWS_PROXY", "f")  # noqa: E731
    router = Router([spec("/a/{id}"), spec("/a/fixed"), spec("/a/{id}/b"), spec("/{proxy+}")])
    assert router.match("/a/fixed")[0].path == "/a/fixed"
    assert router.match("/a/other") == (router.match("/a/other")[0], {"id": "other"})
    assert router.match("/a/x/b")[0].path == "/a/{id}/b"
    assert router.match("/zzz/yyy")[1] == {"proxy": "zzz/yyy"}
    assert Router([spec("/a")]).match("/b") is None


def test_server_stops_cleanly(api) -> None:
    http, _, server = api
    assert aws.connect_host("0.0.0.0") == "127.0.0.1"
    server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(http.base + "/webhook", timeout=2)
