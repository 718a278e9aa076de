"""The local API Gateway: REST API proxy (v1) events from HTTP requests, routed as the template declares.

Each `AWS::ApiGateway::Method` of the template is a route: its resource path (with `{param}` and
`{param+}`), HTTP method, authorization (SigV4 for AWS_IAM, with the personnel roles' policies enforced)
and integration (Lambda proxy to a function, or MOCK). API Gateway's own errors are answered with the
template's `AWS::ApiGateway::GatewayResponse`s, so they look as they will in AWS.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from waguard import roles, sigv4
from waguard.model import ApiSpec, MethodSpec
from waguard.roles import Principal
from waguard.workers import InvocationError

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DRAIN_LIMIT = 64 * 1024 * 1024  # an over-limit body up to this size is read (and dropped) before the 413

# API Gateway's response types: default status and message (when the template has no GatewayResponse).
GATEWAY_ERRORS: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "missing_authentication"),
    "INVALID_SIGNATURE": (403, "invalid_signature"),
    "EXPIRED_TOKEN": (403, "invalid_signature"),
    "ACCESS_DENIED": (403, "forbidden"),
    "RESOURCE_NOT_FOUND": (404, "not_found"),
    "REQUEST_TOO_LARGE": (413, "payload_too_large"),
    "BAD_REQUEST_BODY": (400, "invalid_body"),
    "INTEGRATION_FAILURE": (504, "integration_failure"),
    "INTEGRATION_TIMEOUT": (504, "timeout"),
    "DEFAULT_5XX": (502, "internal_error"),
}


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


# ---- routing ---------------------------------------------------------------------------------------


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None
    path: str | None = None  # the resource path template ending here
    methods: dict[str, MethodSpec] = field(default_factory=dict)


class Router:
    """Resource paths as a tree: literal segments win over `{param}`, which wins over `{param+}`."""

    def __init__(self, methods: Sequence[MethodSpec]) -> None:
        self.root = _Node()
        for method in methods:
            node = self.root
            for part in [p for p in method.path.split("/") if p]:
                if part.startswith("{") and part.endswith("+}"):
                    node.greedy = node.greedy or (part[1:-2], _Node())
                    node = node.greedy[1]
                elif part.startswith("{") and part.endswith("}"):
                    node.param = node.param or (part[1:-1], _Node())
                    node = node.param[1]
                else:
                    node = node.literal.setdefault(part, _Node())
            node.path = method.path
            node.methods[method.http_method] = method

    def match(self, raw_path: str) -> tuple[_Node, dict[str, str]] | None:
        """The resource of a raw (percent-encoded) path and its decoded path parameters."""
        segments = [s for s in raw_path.split("/") if s]
        return self._match(self.root, segments, {})

    def _match(
        self, node: _Node, segments: list[str], params: dict[str, str]
    ) -> tuple[_Node, dict[str, str]] | None:
        if not segments:
            return (node, params) if node.path is not None else None
        head, rest = segments[0], segments[1:]
        decoded = urllib.parse.unquote(head)
        if decoded in node.literal:
            found = self._match(node.literal[decoded], rest, params)
            if found:
                return found
        if node.param:
            name, child = node.param
            found = self._match(child, rest, {**params, name: decoded})
            if found:
                return found
        if node.greedy and node.greedy[1].path is not None:
            name, child = node.greedy
            return child, {**params, name: urllib.parse.unquote("/".join(segments))}
        return None


# ---- the API ---------------------------------------------------------------------------------------


def _multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


class LocalApi:
    """One HTTP request -> one proxy event (or a gateway error); the handler's answer -> the reply."""

    def __init__(
        self,
        spec: ApiSpec,
        region: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        principals: Mapping[str, Principal],
        report: Callable[[str], None] = lambda line: None,
        alert: Callable[[str], None] = lambda line: None,
    ) -> None:
        """`report` gets one line per request (route template, status, time); `alert` each failure."""
        self.spec = spec
        self.region = region
        self.invoke = invoke
        self.principals = principals
        self.report = report
        self.alert = alert
        self.router = Router(spec.methods)

    # -- gateway errors -----------------------------------------------------------------------------
    def gateway_error(self, kind: str, message: str, request_id: str, status: int | None = None) -> Reply:
        default_status, code = GATEWAY_ERRORS.get(kind, (500, "internal_error"))
        family = "DEFAULT_5XX" if (status or default_status) >= 500 else "DEFAULT_4XX"
        custom = self.spec.gateway_responses.get(kind) or self.spec.gateway_responses.get(family)
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", _error_type(kind))]
        if custom and custom.template:
            body = (
                custom.template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", kind)
                .replace("$context.requestId", request_id)
            )
            headers += list(custom.headers.items())
            return Reply(status or custom.status or default_status, headers, body.encode())
        status = status or (custom.status if custom and custom.status else default_status)
        return Reply(status, headers, json.dumps({"error": code, "message": message}).encode())

    # -- a request ----------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, source_ip: str
    ) -> Reply:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            reply, route = self._handle(method.upper(), target, headers, body, source_ip, request_id)
        except Exception as exc:  # a bug of the local gateway: still an answer, never a dropped connection
            self.alert(f"local API failed ({type(exc).__name__})")
            reply, route = self.gateway_error("DEFAULT_5XX", "Internal server error", request_id, 500), None
        reply.headers.append(("x-amzn-RequestId", request_id))
        millis = (time.monotonic() - started) * 1000
        self.report(f"{route or method.upper() + ' (no route)'} -> {reply.status} ({millis:.0f} ms)")
        return reply

    def _handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> tuple[Reply, str | None]:
        split = urllib.parse.urlsplit(target)
        raw_path = split.path or "/"
        if len(body) > MAX_BODY_BYTES:
            return self.gateway_error("REQUEST_TOO_LARGE", "Request Too Long", request_id), None
        found = self.router.match(raw_path)
        if found is None:
            return self.gateway_error("RESOURCE_NOT_FOUND", "Resource not found", request_id), None
        node, path_params = found
        spec = node.methods.get(method) or node.methods.get("ANY")
        if spec is None:  # API Gateway answers an undeclared method like an unknown resource
            return self.gateway_error(
                "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
            ), None
        route = f"{method} {spec.path}"
        identity: dict[str, Any] = {}
        if spec.authorization == "AWS_IAM":
            try:
                principal = sigv4.verify(method, target, headers, body, self.principals, self.region)
            except sigv4.AuthError as exc:
                return self.gateway_error(exc.kind, exc.message, request_id), route
            # Routed and authorized on the same path: a trailing slash is ignored for everyone (as the
            # router ignores it), so a role's policy sees `/messages` whether `/messages/` was asked.
            routed = "/" + "/".join(s for s in raw_path.split("/") if s)
            arn = roles.execute_api_arn(self.region, self.spec.api_id, self.spec.stage, method, routed)
            if not roles.allowed(principal, arn):
                # AWS names the resource ARN too; it holds the path (a phone number), so it is left out.
                message = f"User: {principal.user_arn} is not authorized to perform: execute-api:Invoke"
                return self.gateway_error("ACCESS_DENIED", message, request_id), route
            identity = principal.identity()
        if spec.body_schema is not None and not _valid_body(spec.body_schema, headers, body):
            return self.gateway_error("BAD_REQUEST_BODY", "Invalid request body", request_id), route
        if spec.integration == "MOCK":
            return Reply(spec.mock_status, list(spec.mock_headers.items())), route
        if spec.function is None:
            return self.gateway_error("DEFAULT_5XX", "Internal server error", request_id, 500), route
        event = self.event(spec, method, split, path_params, headers, body, source_ip, identity, request_id)
        try:
            result = self.invoke(spec.function, event)
        except InvocationError as exc:
            if exc.error_type == "Sandbox.Timedout":
                return self.gateway_error(
                    "INTEGRATION_TIMEOUT", "Endpoint request timed out", request_id
                ), route
            self.alert(f"{spec.function}: invocation failed ({exc.error_type})")
            return self.gateway_error("DEFAULT_5XX", "Internal server error", request_id, 502), route
        except Exception as exc:  # the runtime itself failed: still an answer, never a dropped connection
            self.alert(f"{spec.function}: invocation failed ({type(exc).__name__})")
            return self.gateway_error("DEFAULT_5XX", "Internal server error", request_id, 502), route
        return self.reply(result, request_id), route

    def event(
        self,
        spec: MethodSpec,
        method: str,
        split: urllib.parse.SplitResult,
        path_params: dict[str, str],
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
        identity: dict[str, Any],
        request_id: str,
    ) -> dict[str, Any]:
        """The REST API (v1) Lambda proxy event API Gateway sends for this request."""
        single_headers, multi_headers = _multi(headers)
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        single_query, multi_query = _multi(query)
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        host = next((v for k, v in headers if k.lower() == "host"), "localhost")
        now = datetime.datetime.now(datetime.UTC)
        try:
            text: str | None = body.decode("utf-8") if body else None
            is_base64 = False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        raw_path = split.path or "/"
        return {
            "resource": spec.path,
            "path": raw_path,
            "httpMethod": method,
            "headers": single_headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": single_query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": spec.path,
                "resourcePath": spec.path,
                "httpMethod": method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.spec.stage}{raw_path}",
                "accountId": roles.ACCOUNT,
                "protocol": "HTTP/1.1",
                "stage": self.spec.stage,
                "domainPrefix": host.split(".")[0].split(":")[0],
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                    **identity,
                },
                "domainName": host,
                "apiId": self.spec.api_id,
            },
            "body": text,
            "isBase64Encoded": is_base64,
        }

    def reply(self, result: Any, request_id: str) -> Reply:
        """The HTTP answer for a Lambda proxy response (API Gateway's 502 when it is malformed)."""
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            self.alert("a function returned a malformed proxy response")
            return self.gateway_error("DEFAULT_5XX", "Internal server error", request_id, 502)
        headers: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        seen = {k.lower() for k in multi}
        for key, values in multi.items():
            headers += [(key, str(v)) for v in values]
        headers += [(k, str(v)) for k, v in (result.get("headers") or {}).items() if k.lower() not in seen]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode()
        return Reply(int(result["statusCode"]), headers, data)


def _error_type(kind: str) -> str:
    return {
        "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
        "INVALID_SIGNATURE": "InvalidSignatureException",
        "ACCESS_DENIED": "AccessDeniedException",
        "RESOURCE_NOT_FOUND": "NotFoundException",
        "BAD_REQUEST_BODY": "BadRequestException",
    }.get(
        kind,
        "InternalServerErrorException"
        if kind.startswith(("DEFAULT_5", "INTEGRATION"))
        else "BadRequestException",
    )


def _valid_body(schema: dict[str, Any], headers: Sequence[tuple[str, str]], body: bytes) -> bool:
    """API Gateway's request validation of a JSON body against the method's model. The media type is
    compared in any letter case; a body that is not UTF-8 JSON, or nests deeper than the parser goes, is
    invalid (400) rather than an exception that would drop the connection."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return True  # no model for that content type: passed through unvalidated (the function answers)
    import jsonschema

    try:
        document = json.loads((body or b"null").decode("utf-8"))
        validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
        return bool(validator(schema).is_valid(document))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return False


# ---- HTTP ------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "waguard"
    sys_version = ""
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: paths carry phone numbers and the handshake's verify token

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (read and dropped, so the client gets the 413)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    self.rfile.readline()
                    return b"".join(chunks) if size <= MAX_BODY_BYTES else None
                size += length
                data = self.rfile.read(length)
                if size <= MAX_BODY_BYTES:
                    chunks.append(data)
                else:
                    chunks.clear()
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            self._drain(length)
            return None
        return self.rfile.read(length) if length else b""

    def _drain(self, length: int) -> None:
        if length > DRAIN_LIMIT:
            return  # not worth reading: the connection is closed after the answer
        while length > 0:
            got = self.rfile.read(min(length, 1 << 20))
            if not got:
                return
            length -= len(got)

    def _serve(self) -> None:
        app: LocalApi = self.server.app  # type: ignore[attr-defined]
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is no number: answered, then closed
            self.close_connection = True
            reply = app.gateway_error("BAD_REQUEST_BODY", "Invalid request framing", str(uuid.uuid4()))
            self._send(reply)
            return
        if body is None:
            self.close_connection = True
            reply = app.gateway_error("REQUEST_TOO_LARGE", "Request Too Long", str(uuid.uuid4()))
        else:
            reply = app.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: LocalApi) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._thread: threading.Thread | None = None

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
