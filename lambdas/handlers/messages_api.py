"""`POST /messages`, `GET /messages/{id}`, `POST /messages/{id}/read`, `POST /media` and `GET /media/{id}`
(AWS_IAM): thin; the gate and queueing are in domain.sending, waguard's ids and read receipts in
domain.references, media in domain.media (received) and domain.media_out (uploads)."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from aws_lambda_powertools.event_handler import Response

from domain import idempotency, sending
from domain.errors import Refused
from handlers.http import audit_request, caller, make_resolver
from models.api_messages import ReadRequest, SendMessageRequest
from shared.observability import logger, metrics

app = make_resolver(raw_body_resources=("/media",))
_read = threading.local()  # whose media the request being handled read (a pseudonym), for the audit


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.post("/messages")
def post_message(body: SendMessageRequest) -> Response[dict[str, Any]]:
    key = app.current_event.headers.get("Idempotency-Key")
    accepted = sending.submit(body, caller=caller(app), idempotency_key=key)
    metrics.add_metric(name="MessagesQueued", unit="Count", value=1)
    return _json(202, accepted)


@app.get("/messages/<message_id>")
def get_message(message_id: str) -> Response[dict[str, Any]]:
    found = sending.view(message_id)
    if found is None:
        raise Refused(404, "not_found", "no such message")
    return _json(200, found)


def _read_request() -> ReadRequest:
    """The optional `{"typing": bool}` body (absent or empty: no typing indicator)."""
    from pydantic import ValidationError

    raw = app.current_event.body
    if raw is None or not str(raw).strip():
        return ReadRequest()
    try:
        return ReadRequest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors and errors[0].get("loc") else ""
        detail = f"{where}: {errors[0]['msg']}" if where else 'the body is {} or {"typing": true}'
        raise Refused(400, "invalid_body", detail) from exc


@app.get("/media/<media_id>")
def get_media(media_id: str):  # type: ignore[no-untyped-def]  # bytes: no response validation
    from domain import media

    ranges = {"Accept-Ranges": "bytes"}
    try:
        found = media.download(media_id, app.current_event.headers.get("Range"))
    except media.TooLargeToServe as exc:
        return Response(
            status_code=413,
            content_type="application/json",
            body={
                "error": "too_large",
                "message": f"the media is {exc.size} bytes: ask for it in parts with Range: bytes=START-END "
                f"(at most {media.INLINE_MAX_BYTES} bytes each)",
            },
            headers=ranges,
        )
    except media.Unsatisfiable as exc:
        return Response(
            status_code=416,
            content_type="application/json",
            body={"error": "range_not_satisfiable", "message": "the range starts past the end of the media"},
            headers={**ranges, "Content-Range": f"bytes */{exc.size}"},
        )
    if found is None:
        raise Refused(404, "not_found", "no such media")
    _read.subject = found.holder
    if found.span is None:
        return Response(status_code=200, content_type=found.mime_type, body=found.data, headers=ranges)
    first, last = found.span
    headers = {**ranges, "Content-Range": f"bytes {first}-{last}/{found.size}"}
    return Response(status_code=206, content_type=found.mime_type, body=found.data, headers=headers)


@app.post("/media")
def post_media() -> Response[dict[str, Any]]:
    from domain import media_out

    event = app.current_event
    raw = (
        base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")
    )
    return _json(201, media_out.upload(event.headers.get("Content-Type"), raw))


@app.post("/messages/<message_id>/read")
def mark_read(message_id: str) -> Response[dict[str, Any]]:
    from domain import references

    request = _read_request()
    return _json(200, references.mark_read(message_id, typing=request.typing))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    _read.subject = None
    response = app.resolve(event, context)
    audit_request(app, response, subject=_read.subject)
    return response
