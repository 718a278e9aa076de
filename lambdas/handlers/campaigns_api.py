"""The campaign routes (AWS_IAM) and the schedule that starts due campaigns (contract: "Campaigns").
Thin: the domain is domain.campaigns; the sending side runs in the sender (domain/campaign_steps.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from domain import campaigns
from handlers.http import audit_request, make_resolver
from models.api_campaigns import CreateCampaignRequest
from shared.observability import logger, metrics

app = make_resolver()


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.post("/campaigns")
def create_campaign(body: CreateCampaignRequest) -> Response[dict[str, Any]]:
    return _json(202, campaigns.submit(body.model_dump(mode="json", exclude_none=True, by_alias=True)))


@app.get("/campaigns")
def list_campaigns() -> Response[dict[str, Any]]:
    return _json(200, campaigns.listing())


@app.get("/campaigns/<cid>")
def get_campaign(cid: str) -> Response[dict[str, Any]]:
    return _json(200, campaigns.view(cid))


@app.get("/campaigns/<cid>/recipients")
def get_recipients(cid: str) -> Response[dict[str, Any]]:
    event = app.current_event
    raw_limit = event.get_query_string_value("limit") or "100"
    limit = int(raw_limit) if raw_limit.isdigit() else 100
    status = event.get_query_string_value("status")
    before = event.get_query_string_value("before")
    return _json(200, campaigns.recipients(cid, status, limit, before))


@app.post("/campaigns/<cid>/cancel")
def cancel_campaign(cid: str) -> Response[dict[str, Any]]:
    return _json(200, campaigns.cancel(cid))


@app.post("/campaigns/<cid>/resume")
def resume_campaign(cid: str) -> Response[dict[str, Any]]:
    return _json(200, campaigns.resume(cid))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "httpMethod" not in event:  # the EventBridge schedule (and the local scheduler)
        return campaigns.start_due()
    response = app.resolve(event, context)
    audit_request(app, response)
    return response
