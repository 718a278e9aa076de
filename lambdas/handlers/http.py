"""What every business API handler shares: the resolver, error bodies, caller identity and the audit hook.

Errors are `{"error": CODE, "message": TEXT}` (contract). Each request is recorded in the application
audit log with the caller's IAM principal, the route template (never the path: it holds phone numbers)
and the outcome.

A client's mistake is a 4xx, never a 500 (contract, HTTP): before routing, a request with a body is
checked as a JSON request: its media type (`application/json` in any letter case, any parameters) else
415 `unsupported_media_type`; its bytes UTF-8 JSON nested at most `MAX_JSON_DEPTH` deep, else 400
`invalid_body`. Only then does the resolver parse it (with the media type written in lower case, as
Powertools compares it case-sensitively).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from domain.errors import Refused
from shared.observability import logger


def error_response(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"error": code, "message": message}),
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "the request body is invalid"


MAX_JSON_DEPTH = 32  # objects and arrays nested deeper than this are refused (400 invalid_body)
JSON_MEDIA_TYPE = "application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def media_type(value: str | None) -> str:
    """`type/subtype` of a Content-Type value, in lower case, without parameters ("" when absent)."""
    return (value or "").split(";", 1)[0].strip().lower()


def json_depth(text: str) -> int:
    """How deep objects and arrays nest in a JSON text (without recursion: strings are skipped first)."""
    depth = deepest = 0
    for char in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _header_values(event: Mapping[str, Any], name: str) -> list[str]:
    values = [str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == name and v is not None]
    for key, many in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and not values:
            values = [str(v) for v in many or ()]
    return values


def check_json_request(event: Mapping[str, Any]) -> None:
    """Raise `Refused` unless a body-carrying request is UTF-8 JSON of `application/json`, nested at
    most MAX_JSON_DEPTH deep. A missing Content-Type is read as JSON (as API Gateway does)."""
    if str(event.get("httpMethod") or "").upper() not in _BODY_METHODS:
        return
    types = {media_type(v) for v in _header_values(event, "content-type")}
    if len(types) > 1 or (types and types != {JSON_MEDIA_TYPE}):
        raise Refused(415, "unsupported_media_type", "the body must be application/json")
    raw = event.get("body")
    if not raw:
        return
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else str(raw).encode()
        text = data.decode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError included
        raise Refused(400, "invalid_body", "the body is not UTF-8 JSON") from exc
    if json_depth(text) > MAX_JSON_DEPTH:
        raise Refused(400, "invalid_body", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, "invalid_body", "the body is not valid JSON") from exc


def _lower_media_type(value: str) -> str:
    kind, sep, params = value.partition(";")
    return kind.strip().lower() + sep + params


def _canonical_content_type(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its Content-Type's media type in lower case (the resolver compares it as text)."""
    out = dict(event)
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key)
        if not isinstance(headers, dict):
            continue
        fixed = {}
        for name, value in headers.items():
            if name.lower() == "content-type" and value is not None:
                values = value if isinstance(value, list) else [value]
                lowered = [_lower_media_type(str(v)) for v in values]
                fixed[name] = lowered if isinstance(value, list) else lowered[0]
                continue
            fixed[name] = value
        out[key] = fixed
    return out


class JsonApiResolver(APIGatewayRestResolver):
    """Powertools' REST resolver, with a body check in front (see the module doc); the resources named in
    `raw_body_resources` (e.g. `/media`, raw bytes with their own type) are not checked."""

    def __init__(self, raw_body_resources: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.raw_body_resources = frozenset(raw_body_resources)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            if event.get("resource") not in self.raw_body_resources:
                check_json_request(event)
        except Refused as exc:
            # Populated as Powertools does, so the audit hook sees the request like any other.
            BaseRouter.current_event = self._to_proxy_event(dict(event))
            BaseRouter.lambda_context = context
            return {
                "statusCode": exc.status,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": exc.code, "message": exc.message}),
                "isBase64Encoded": False,
            }
        return super().resolve(_canonical_content_type(event), context)


def make_resolver(raw_body_resources: Iterable[str] = ()) -> APIGatewayRestResolver:
    """A REST resolver with request validation (pydantic), the body check and the contract's error bodies."""
    app = JsonApiResolver(raw_body_resources, enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(400, "invalid_body", _validation_message(exc))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return error_response(415, "unsupported_media_type", "the body must be application/json")

    @app.exception_handler(Refused)
    def _refused(exc: Refused) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.not_found
    def _missing(_: Exception) -> Response:
        return error_response(404, "not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return error_response(500, "internal_error", "the request could not be processed")

    return app


def caller(app: APIGatewayRestResolver) -> str:
    identity: dict[str, Any] = app.current_event.request_context.identity.raw_event or {}
    return str(identity.get("userArn") or identity.get("caller") or "unknown")


def audit_request(
    app: APIGatewayRestResolver, response: dict[str, Any], action: str = "", subject: str | None = None
) -> None:
    """Record one business request in the audit log (never the path or body: they hold personal data;
    `subject` is the pseudonym of the contact whose data the request read, when it read any)."""
    from store import audit

    event = app.current_event
    status = int(response.get("statusCode", 0))
    try:
        audit.record(
            actor=caller(app),
            action=action or f"{event.http_method} {event.resource}",
            route=f"{event.http_method} {event.resource}",
            outcome=str(status),
            subject=subject,
        )
    except Exception as exc:  # the answer stands; the missing record is visible in metrics and logs
        logger.warning("audit record failed", extra={"error_type": type(exc).__name__})
