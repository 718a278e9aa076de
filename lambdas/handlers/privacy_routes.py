"""The privacy-request and restriction routes (contract: "Privacy operations"), a router of the
contacts-api resolver (handlers/contacts_api.py): thin adapters over domain.privacy and
domain.restriction. The path may hold a phone number: it is never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from domain import consent, privacy, restriction
from domain import privacy_dates as dates
from domain.errors import Refused
from models.api_privacy import PrivacyRequestBody, ReasonBody, RestrictionBody
from shared.ids import InvalidContact
from store.contacts import Identity

router = Router()


def _identity(contact: str) -> Identity:
    try:
        return consent.identify(contact)
    except InvalidContact as exc:
        raise Refused(400, "invalid_contact", str(exc)) from exc


def _actor() -> str:
    event: Any = router.current_event  # the REST resolver's APIGatewayProxyEvent
    identity: dict[str, Any] = event.request_context.identity.raw_event or {}
    return str(identity.get("userArn") or identity.get("caller") or "unknown")


@router.post("/privacy/requests")
def open_request(request: Annotated[PrivacyRequestBody, Body(embed=False)]) -> tuple[dict[str, Any], int]:
    received = None
    if request.received_at is not None:
        try:
            received = dates.parse(request.received_at)
        except ValueError as exc:
            raise Refused(400, "invalid_body", "received_at is not an ISO-8601 time") from exc
    opened = privacy.open_request(
        _identity(request.contact), request.type, request.law, request.channel, received, _actor()
    )
    return opened, 201


@router.get("/privacy/requests")
def list_requests() -> dict[str, Any]:
    status = (router.current_event.query_string_parameters or {}).get("status")
    return {"requests": privacy.listing(status)}


@router.get("/privacy/requests/<request_id>")
def get_request(request_id: str) -> dict[str, Any]:
    return privacy.view(privacy.find(request_id))


@router.get("/privacy/requests/<request_id>/export")
def get_export(request_id: str) -> dict[str, Any]:
    return privacy.kept_export(request_id)


@router.post("/privacy/requests/<request_id>/extend")
def extend(request_id: str, request: Annotated[ReasonBody, Body(embed=False)]) -> dict[str, Any]:
    return privacy.extend(request_id, request.reason)


@router.post("/privacy/requests/<request_id>/complete")
def complete(request_id: str) -> dict[str, Any]:
    return privacy.complete(request_id, _actor())


@router.post("/privacy/requests/<request_id>/reject")
def reject(request_id: str, request: Annotated[ReasonBody, Body(embed=False)]) -> dict[str, Any]:
    return privacy.reject(request_id, request.reason)


@router.put("/contacts/<contact>/restriction")
def put_restriction(contact: str, request: Annotated[RestrictionBody, Body(embed=False)]) -> dict[str, Any]:
    return restriction.set_restriction(_identity(contact), request.restricted, request.reason, _actor())
