"""Consent, export and erasure routes (AWS_IAM): thin adapters over domain.consent and domain.dsr.

Every request lands in the audit log (`handlers.http.audit_request`); export and erasure also record
their own entry with the item count and the subject's pseudonym. The path holds a phone number or
user id: it is never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from domain import consent, dsr
from handlers.http import ApiError, audit_request, caller, make_resolver
from models.api_contacts import ConsentRequest
from shared.ids import InvalidContact
from shared.observability import logger
from store.contacts import Identity

app = make_resolver()


def _identity(contact: str) -> Identity:
    try:
        return consent.identify(contact)
    except InvalidContact as exc:
        raise ApiError(400, "invalid_contact", str(exc)) from exc


@app.put("/contacts/<contact>/consent")
def put_consent(contact: str, request: Annotated[ConsentRequest, Body(embed=False)]) -> dict[str, Any]:
    identity = _identity(contact)
    entry = consent.record(identity, request.purpose, request.status, request.source, request.evidence)
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
        raise ApiError(404, "not_found", "no personal data is held on this contact")
    return doc


@app.delete("/contacts/<contact>")
def erase(contact: str) -> dict[str, Any]:
    identity = _identity(contact)
    receipt = dsr.erase(identity, caller(app))
    logger.info("contact erased", extra={"subject": identity.primary[:12], "items": receipt["items_deleted"]})
    return receipt


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = app.resolve(event, context)
    audit_request(app, response)
    return response
