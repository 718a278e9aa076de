"""The template registry's routes (AWS_IAM) and its schedule: `GET /templates`, `POST /templates/sync`,
`POST /templates` (a new template for Meta's review), and the EventBridge rule that syncs every
`templateSyncMinutes`. Thin: the registry is domain.templates.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from domain import templates
from handlers.http import audit_request, make_resolver
from models.api_templates import CreateTemplateRequest
from shared.observability import logger, metrics

app = make_resolver()


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/templates")
def list_templates() -> Response[dict[str, Any]]:
    status = app.current_event.get_query_string_value("status")
    return _json(200, templates.listing(status))


@app.post("/templates/sync")
def sync_templates() -> Response[dict[str, Any]]:
    return _json(200, templates.sync())


@app.post("/templates")
def create_template(body: CreateTemplateRequest) -> Response[dict[str, Any]]:
    return _json(201, templates.submit(body.model_dump(mode="json", exclude_none=True)))


def _scheduled(event: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge schedule (and the local scheduler): one sync; a failure raises so it is retried
    and counted (the registry stays as it was)."""
    from domain.errors import Refused

    try:
        return templates.sync()
    except Refused as exc:
        metrics.add_metric(name="TemplateSyncFailed", unit="Count", value=1)
        raise RuntimeError(exc.message) from exc


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "httpMethod" not in event:
        return _scheduled(event)
    response = app.resolve(event, context)
    audit_request(app, response)
    return response
