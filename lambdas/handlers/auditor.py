"""The auditor function: the stack checked against its own template (contract: Audits).

Invoked by its EventBridge schedule (`auditScheduleHours`), by CloudFormation's stack status event after
each deploy, and through the API: `GET /audit/findings` (the last run) and `POST /audit/run` (a run
now). Each run counts its findings in the `AuditFindings` metric (alarmed on).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from domain import audit_runs
from domain.errors import Refused
from handlers.http import audit_request, make_resolver
from shared import constants as c
from shared.observability import logger, metrics

app = make_resolver()


def _counted(run: dict[str, Any]) -> dict[str, Any]:
    metrics.add_metric(name=c.METRIC_AUDIT_FINDINGS, unit=MetricUnit.Count, value=len(run["findings"]))
    logger.info("audit run", extra={"findings": len(run["findings"])})
    return run


@app.get("/audit/findings")
def findings() -> dict[str, Any]:
    run = audit_runs.last()
    if run is None:
        raise Refused(404, "not_found", "no audit has run yet; POST /audit/run runs one")
    return run


@app.post("/audit/run")
def run() -> dict[str, Any]:
    return _counted(audit_runs.run_now("api"))


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "httpMethod" in event:
        response = app.resolve(event, context)
        audit_request(app, response)
        return response
    trigger = "deploy" if event.get("source") == "aws.cloudformation" else "schedule"
    result = _counted(audit_runs.run_now(trigger))
    return {"run_at": result["run_at"], "findings": len(result["findings"])}
