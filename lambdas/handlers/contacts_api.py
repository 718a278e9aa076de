"""Consent, export, erasure and conversation routes (AWS_IAM): thin adapters over domain.consent,
domain.dsr and domain.conversation; the privacy-request and restriction routes (handlers.privacy_routes).
The EventBridge schedule of this function runs the overdue check of privacy requests (`privacy_check`).

Every request lands in the audit log (`handlers.http.audit_request`); export and erasure also record
their own entry with the item count and the subject's pseudonym. The path holds a phone number or
user id: it is never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from domain import consent, conversation, dsr
from domain.errors import Refused
from handlers.http import audit_request, caller, error_response, make_resolver
from handlers.privacy_routes import router as privacy_router
from models.api_contacts import ConsentRequest
from shared.ids import InvalidContact
from shared.observability import logger
from store.contacts import Identity
from store.events import Unpublished

app = make_resolver()
app.include_router(privacy_router)


@app.exception_handler(Unpublished)
def _unpublished(exc: Unpublished) -> Any:
    # Recorded, but the business's applications were not told: the caller retries (idempotent enough:
    # a consent entry is appended again, an erasure finds nothing left) and the event goes out then.
    logger.error("business event not published", extra={"error_type": type(exc).__name__})
    return error_response(503, "unavailable", "recorded, but the event could not be published; retry")


def _identity(contact: str) -> Identity:
    try:
        return consent.identify(contact)
    except InvalidContact as exc:
        raise Refused(400, "invalid_contact", str(exc)) from exc


@app.put("/contacts/<contact>/consent")
def put_consent(contact: str, request: Annotated[ConsentRequest, Body(embed=False)]) -> dict[str, Any]:
    identity = _identity(contact)
    entry = consent.record(identity, request.purpose, request.status, request.source, request.evidence)
    if request.status == "granted":
        consent.remember_address(identity)  # a campaign can reach whoever granted (by reference only)
    logger.info("consent recorded", extra={"subject": identity.primary[:12], "purpose": request.purpose})
    return entry


@app.get("/contacts/<contact>/consent")
def get_consent(contact: str) -> dict[str, Any]:
    return consent.view(_identity(contact))


@app.get("/contacts/<contact>/export")
def export(contact: str) -> dict[str, Any]:
    identity = _identity(contact)
    doc = dsr.export(identity, caller(app))
    if doc is None:
        raise Refused(404, "not_found", "no personal data is held on this contact")
    return doc


@app.delete("/contacts/<contact>")
def erase(contact: str) -> dict[str, Any]:
    identity = _identity(contact)
    receipt = dsr.erase(identity, caller(app))
    logger.info("contact erased", extra={"subject": identity.primary[:12], "items": receipt["items_deleted"]})
    return receipt


@app.get("/contacts/<contact>/messages")
def messages(contact: str) -> dict[str, Any]:
    from domain import restriction

    query = app.current_event.query_string_parameters or {}
    identity = _identity(contact)
    if restriction.is_restricted(identity):
        raise Refused(403, "restricted", "processing of this contact's data is restricted")
    try:
        limit = conversation.parse_limit(query.get("limit"))
        found = conversation.page(identity, limit, query.get("before"))
    except conversation.InvalidPage as exc:
        raise Refused(400, "invalid_query", str(exc)) from exc
    if found is None:
        raise Refused(404, "not_found", "no messages are held on this contact")
    return found


def privacy_check() -> dict[str, Any]:
    """The schedule's run: announce newly overdue requests once, and put the gauge of overdue ones."""
    from aws_lambda_powertools.metrics import MetricUnit

    from domain import privacy
    from shared import constants as c
    from shared.observability import metrics

    overdue = privacy.check_overdue()
    metrics.add_metric(name=c.METRIC_PRIVACY_OVERDUE, unit=MetricUnit.Count, value=overdue)  # a gauge: 0 too
    metrics.flush_metrics()
    logger.info("privacy requests checked", extra={"overdue": overdue})
    return {"overdue": overdue}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        return privacy_check()
    response = app.resolve(event, context)
    audit_request(app, response)
    return response
