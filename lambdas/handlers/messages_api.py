"""`POST /messages` and `GET /messages/{id}` (AWS_IAM): thin; the gate and queueing are in domain.sending."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from domain import sending
from handlers.http import audit_request, caller, error_response, make_resolver
from models.api_messages import SendMessageRequest
from shared.observability import logger, metrics

app = make_resolver()


@app.exception_handler(sending.Refused)
def _refused(exc: sending.Refused) -> Response:
    return error_response(exc.status, exc.code, exc.message)


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
        raise sending.Refused(404, "not_found", "no such message")
    return _json(200, found)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sending.register_context(context)
    response = app.resolve(event, context)
    audit_request(app, response)
    return response
