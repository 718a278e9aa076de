"""Builders for test events: Meta webhook bodies, their signature, API Gateway REST proxy events, SQS events.

Shapes follow Meta's webhook reference (`object` / `entry[]` / `changes[]` / `value`) and API Gateway's
REST proxy (v1) event. Nothing here talks to AWS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
SECOND_PHONE_NUMBER_ID = "206540352242933"  # a second business number of the same deployment
# The business numbers the test deployment serves (issue 17: a change for any other is dropped): ours and
# those the peer projects' recorded webhooks were sent to.
SERVED_NUMBERS = (
    PHONE_NUMBER_ID,
    SECOND_PHONE_NUMBER_ID,
    "1122334455667",
    "743897493242",
    "<BUSINESS_PHONE_NUMBER_ID>",  # as recorded (a placeholder of the peer project)
)
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"  # the WhatsApp Business Account of the test deployment (its templates)
WABA_ID = "102290129340398"
CALLER_ARN = "arn:aws:iam::123456789012:user/test-officer"


def wamid() -> str:
    return "wamid." + secrets.token_hex(16)


def now_ts() -> str:
    return str(int(time.time()))


# ---- Meta webhook bodies -------------------------------------------------------------------------
def contact(wa_id: str | None = None, name: str | None = "Test User", user_id: str | None = None) -> dict:
    out: dict[str, Any] = {}
    if name is not None:
        out["profile"] = {"name": name}
    if wa_id is not None:
        out["wa_id"] = wa_id
    if user_id is not None:
        out["user_id"] = user_id
    return out


def text_message(
    wa_id: str | None,
    body: str,
    id: str | None = None,
    timestamp: str | int | None = None,
    user_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return message(
        wa_id, "text", {"text": {"body": body}}, id=id, timestamp=timestamp, user_id=user_id, **extra
    )


def message(
    wa_id: str | None,
    type: str,
    payload: dict[str, Any] | None = None,
    id: str | None = None,
    timestamp: str | int | None = None,
    user_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Any inbound message: `payload` holds the type's object(s), e.g. `{"image": {...}}`."""
    out: dict[str, Any] = {}
    if wa_id is not None:
        out["from"] = wa_id
    if user_id is not None:
        out["from_user_id"] = user_id
    out.update(
        {
            "id": id or wamid(),
            "timestamp": str(timestamp if timestamp is not None else now_ts()),
            "type": type,
        }
    )
    out.update(payload or {})
    out.update(extra)
    return out


def status(
    wamid_: str,
    status: str,
    recipient_id: str | None,
    timestamp: str | int | None = None,
    errors: list[dict[str, Any]] | None = None,
    recipient_user_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": wamid_,
        "status": status,
        "timestamp": str(timestamp if timestamp is not None else now_ts()),
    }
    if recipient_id is not None:
        out["recipient_id"] = recipient_id
    if recipient_user_id is not None:
        out["recipient_user_id"] = recipient_user_id
    if errors:
        out["errors"] = errors
    out.update(extra)
    return out


def meta_error(code: int, title: str = "error") -> dict[str, Any]:
    return {"code": code, "title": title, "message": title, "error_data": {"details": title}}


def user_preference(wa_id: str, value: str, timestamp: int | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "wa_id": wa_id,
        "detail": f"User requested to {value} marketing messages",
        "category": "marketing_messages",
        "value": value,
        "timestamp": timestamp if timestamp is not None else int(time.time()),
        **extra,
    }


def change_value(
    messages: list[dict] | None = None,
    statuses: list[dict] | None = None,
    contacts: list[dict] | None = None,
    errors: list[dict] | None = None,
    user_preferences: list[dict] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
    }
    for key, items in (
        ("contacts", contacts),
        ("messages", messages),
        ("statuses", statuses),
        ("errors", errors),
        ("user_preferences", user_preferences),
    ):
        if items is not None:
            value[key] = items
    return value


def webhook_body(
    messages: list[dict] | None = None,
    statuses: list[dict] | None = None,
    contacts: list[dict] | None = None,
    field: str = "messages",
    errors: list[dict] | None = None,
    user_preferences: list[dict] | None = None,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One webhook POST body with one entry and one change. When `contacts` is None and messages have a
    `from`, a contact card for each sender is added as Meta does."""
    if contacts is None and messages:
        contacts = [contact(m.get("from"), user_id=m.get("from_user_id")) for m in messages if m.get("from")]
    if value is None:
        value = change_value(messages, statuses, contacts, errors, user_preferences)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field}]}],
    }


def batched(*bodies: dict[str, Any]) -> dict[str, Any]:
    """Several bodies' entries in one delivery (Meta batches `entry[]`)."""
    return {"object": "whatsapp_business_account", "entry": [e for b in bodies for e in b["entry"]]}


def encode(body: dict[str, Any] | str | bytes, ascii_only: bool = True) -> bytes:
    """The bytes Meta would send: JSON with non-ASCII escaped as \\uXXXX (json.dumps default)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, ensure_ascii=ascii_only).encode()


def sign(body_bytes: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` header value."""
    return "sha256=" + hmac.new(secret.encode(), body_bytes, hashlib.sha256).hexdigest()


# ---- API Gateway REST proxy (v1) -----------------------------------------------------------------
def rest_event(
    method: str,
    resource: str,
    path: str | None = None,
    body: str | bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    caller: str = CALLER_ARN,
) -> dict[str, Any]:
    if isinstance(body, dict):
        body = json.dumps(body)
    is_b64 = False
    if isinstance(body, bytes):
        if base64_body:
            body, is_b64 = base64.b64encode(body).decode(), True
        else:
            body = body.decode("utf-8")
    elif isinstance(body, str) and base64_body:
        body, is_b64 = base64.b64encode(body.encode()).decode(), True
    headers = dict(headers or {})
    return {
        "resource": resource,
        "path": path or resource,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "waguardapi",
            "resourcePath": resource,
            "httpMethod": method,
            "path": "/prod" + (path or resource),
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"userArn": caller, "caller": caller, "sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": is_b64,
    }


def webhook_post(
    body: dict | bytes | str, secret: str | None, signature: str | None = None, **kw: Any
) -> dict:
    """A POST /webhook event signed with `secret` (or carrying `signature` as given; None: no header)."""
    raw = encode(body)
    headers = {"Content-Type": "application/json"}
    sig = signature if signature is not None else (sign(raw, secret) if secret is not None else None)
    if sig is not None:
        headers["X-Hub-Signature-256"] = sig
    return rest_event("POST", "/webhook", body=raw, headers=headers, caller="", **kw)


def webhook_get(query: dict[str, str]) -> dict:
    return rest_event("GET", "/webhook", query=query, caller="")


def contacts_event(
    method: str, contact: str, suffix: str = "", body: dict | str | None = None, caller: str = CALLER_ARN
) -> dict:
    """A business API event on /contacts/{contact}[/consent|/export] (the contact URL-encoded in the path)."""
    from urllib.parse import quote

    resource = "/contacts/{contact}" + suffix
    path = f"/contacts/{quote(contact, safe='')}{suffix}"
    return rest_event(
        method,
        resource,
        path=path,
        body=body,
        headers={"Content-Type": "application/json"} if body is not None else {},
        path_params={"contact": quote(contact, safe="")},
        caller=caller,
    )


# ---- SQS ------------------------------------------------------------------------------------------
def sqs_event(
    bodies: list[str], queue_arn: str = "arn:aws:sqs:eu-central-1:123456789012:waguard-inbound"
) -> dict:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": secrets.token_hex(16),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-central-1",
            }
            for body in bodies
        ]
    }


class LambdaContext:
    """Enough of the Lambda context for Powertools decorators."""

    function_name = "waguard-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:waguard-test"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/waguard-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30000


# ---- driving the handlers in-process (on the `aws_stack` moto account) ---------------------------
APP_SECRET = "test-app-secret"  # tests/conftest.py SECRETS


def call_webhook(event: dict[str, Any]) -> dict[str, Any]:
    from handlers import webhook

    return webhook.handler(event, LambdaContext())


def drain(queue_url: str) -> list[str]:
    """Receive and delete every message on a queue; their bodies in order of receipt."""
    import boto3

    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def run_processor(bodies: list[str]) -> dict[str, Any]:
    from handlers import processor

    return processor.handler(sqs_event(bodies), LambdaContext())


def deliver(stack: Any, body: dict | bytes | str, secret: str = APP_SECRET) -> dict[str, Any]:
    """POST a signed body to the webhook, then run the processor on what it queued. The webhook reply."""
    reply = call_webhook(webhook_post(body, secret))
    bodies = drain(stack.queues["inbound"])
    if bodies:
        result = run_processor(bodies)
        assert result == {"batchItemFailures": []}, result
    return reply


def call_contacts(
    method: str, contact: str, suffix: str = "", body: dict | str | None = None
) -> dict[str, Any]:
    from handlers import contacts_api

    return contacts_api.handler(contacts_event(method, contact, suffix, body), LambdaContext())


def reply_json(reply: dict[str, Any]) -> Any:
    return json.loads(reply["body"])


# ---- outbound: POST /messages, GET /messages/{id} (added by the outbound side) -------------------
def messages_post(body: dict | str, headers: dict[str, str] | None = None, caller: str = CALLER_ARN) -> dict:
    """A POST /messages event (IAM caller `caller`)."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return rest_event("POST", "/messages", body=body, headers=headers, caller=caller)


def messages_get(message_id: str, caller: str = CALLER_ARN) -> dict:
    from urllib.parse import quote

    return rest_event(
        "GET",
        "/messages/{id}",
        path=f"/messages/{quote(message_id, safe='')}",
        path_params={"id": quote(message_id, safe="")},
        caller=caller,
    )


def call_messages(event: dict[str, Any]) -> dict[str, Any]:
    from handlers import messages_api

    return messages_api.handler(event, LambdaContext())


# ---- the peer webhook corpus (../shared/fixtures/peer-webhooks/pywa; absent on some machines) ----------
PYWA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "peer-webhooks" / "pywa"
# Every personal value the pywa corpus carries: none may be stored in clear or reach a log line.
PYWA_PERSONAL = [
    "Test Name",
    "User A",
    "972987654321",
    "972912345678",
    "16505551234",
    "US.13491208655302741918",
    "US.ENT.11815799212886844830",
    "13491208655302741918",
    "Body Text",
    "replied text",
    "forwarded text",
    "text forwarded many times",
    "Comment Text",
    "Updated image caption",
    "Chandler",
    "Rachel Green",
    "555-555-5555",
    "Facebook HQ",
    "1 Hacker Way",
    "37.4611978",
    "HAMBURGER",
    "callback_data",
    "😮",
    "wamid.xyzxyz",
    "User A changed from",
]


def pywa_available() -> bool:
    return PYWA.is_dir() and any(PYWA.glob("*.json"))


def pywa_variants() -> list[tuple[str, str, dict[str, Any]]]:
    """(file stem, variant name, webhook body) of every pywa variant; empty when the corpus is absent."""
    if not pywa_available():
        return []
    return [
        (path.stem, name, body)
        for path in sorted(PYWA.glob("*.json"))
        for name, body in json.loads(path.read_text()).items()
    ]


# ---- templates ---------------------------------------------------------------------------------------
# A template of the Graph fake's WABA (waguard.graph_fake_templates.DEFAULT_TEMPLATES, which the tests'
# registry holds) for each consent purpose, with the parameters it needs.
OTP_COMPONENTS = [
    {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
    {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]},
]
TEMPLATES_BY_PURPOSE: dict[str, dict[str, Any]] = {
    "marketing": {"name": "spring_sale", "language": {"code": "en_US"}},
    "utility": {"name": "account_notice", "language": {"code": "en_US"}},
    "authentication": {"name": "login_code", "language": {"code": "en_US"}, "components": OTP_COMPONENTS},
}


def template_for(purpose: str) -> dict[str, Any]:
    """A registered template whose category needs `purpose` (`service` counts as utility)."""
    return json.loads(json.dumps(TEMPLATES_BY_PURPOSE["utility" if purpose == "service" else purpose]))


def template_webhook(field: str, value: dict[str, Any], waba: str = WABA_ID) -> dict[str, Any]:
    """A template webhook delivery (`message_template_status_update`, `template_category_update`,
    `message_template_quality_update`) as Meta sends it: the entry's id is the WABA's."""
    change = {"field": field, "value": value}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "time": int(time.time()), "changes": [change]}],
    }


def template_status(name: str, event: str, language: str = "en_US", template_id: int | None = None) -> dict:
    value: dict[str, Any] = {
        "event": event,
        "message_template_name": name,
        "message_template_language": language,
    }
    if template_id is not None:
        value["message_template_id"] = template_id
    return template_webhook("message_template_status_update", {**value, "reason": "NONE"})
