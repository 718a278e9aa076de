"""In-process flows on the `aws_stack` moto account: the handlers driven as API Gateway and the event-source
mappings would drive them (webhook -> inbound queue -> processor; messages API -> send queue -> sender),
shared by the PII-in-logs, fault-injection and soak tests."""

from __future__ import annotations

import json
from typing import Any

from bench.esm import EventSourceMapping
from tests import factory as f

CTX = f.LambdaContext()


def webhook(body: dict | bytes | str, secret: str | None = f.APP_SECRET, **kw: Any) -> dict[str, Any]:
    from handlers import webhook as handler

    return handler.handler(f.webhook_post(body, secret, **kw), CTX)


def processor_mapping(stack: Any) -> EventSourceMapping:
    from handlers import processor

    return EventSourceMapping(stack.queues["inbound"], processor.handler, region=stack.region)


def sender_mapping(stack: Any) -> EventSourceMapping:
    from handlers import sender

    return EventSourceMapping(stack.queues["send"], sender.handler, region=stack.region)


def inbound(stack: Any, body: dict | bytes | str) -> dict[str, Any]:
    """POST a signed delivery and let the processor's mapping drain the inbound queue."""
    reply = webhook(body)
    processor_mapping(stack).drain()
    return reply


def messages_api(
    method: str,
    resource: str,
    path: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
) -> dict:
    from handlers import messages_api as handler

    hdrs = (
        {"Content-Type": "application/json", **(headers or {})} if body is not None else dict(headers or {})
    )
    event = f.rest_event(method, resource, path=path, body=body, headers=hdrs, path_params=path_params)
    return handler.handler(event, CTX)


def send(
    to: str,
    purpose: str = "service",
    text: str | None = "hello",
    template: dict | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"to": to, "purpose": purpose}
    if template is not None:
        body["template"] = template
    else:
        body["text"] = {"body": text}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    return messages_api("POST", "/messages", body=body, headers=headers)


def view(msg_id: str) -> dict[str, Any]:
    reply = messages_api("GET", "/messages/{id}", path=f"/messages/{msg_id}", path_params={"id": msg_id})
    return {"statusCode": reply["statusCode"], **(json.loads(reply["body"]) if reply.get("body") else {})}


def contacts(method: str, contact: str, suffix: str = "", body: dict | None = None) -> dict[str, Any]:
    return f.call_contacts(method, contact, suffix, body)


def body_of(reply: dict[str, Any]) -> Any:
    return json.loads(reply["body"])
