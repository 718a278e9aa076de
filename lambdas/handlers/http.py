"""What every business API handler shares: the resolver, error bodies, caller identity and the audit hook.

Errors are `{"error": CODE, "message": TEXT}` (contract). Each request is recorded in the application
audit log with the caller's IAM principal, the route template (never the path: it holds phone numbers)
and the outcome.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from shared.observability import logger


class ApiError(Exception):
    """An expected refusal with a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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


def make_resolver() -> APIGatewayRestResolver:
    """A REST resolver with request validation (pydantic) and the contract's error bodies."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(400, "invalid_body", _validation_message(exc))

    @app.exception_handler(ApiError)
    def _refused(exc: ApiError) -> Response:
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


def audit_request(app: APIGatewayRestResolver, response: dict[str, Any], action: str = "") -> None:
    """Record one business request in the audit log (never the path or body: they hold personal data)."""
    from store import audit

    event = app.current_event
    status = int(response.get("statusCode", 0))
    try:
        audit.record(
            actor=caller(app),
            action=action or f"{event.http_method} {event.resource}",
            route=f"{event.http_method} {event.resource}",
            outcome=str(status),
        )
    except Exception as exc:  # the answer stands; the missing record is visible in metrics and logs
        logger.warning("audit record failed", extra={"error_type": type(exc).__name__})
