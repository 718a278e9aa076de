"""The webhook endpoint Meta calls: the subscription handshake (GET) and signed deliveries (POST).

Cold start matters (Meta waits on it), so this module imports only the standard library, the tiny
shared modules and Powertools' Logger; boto3 and the secret client load on first use. A delivery is
verified against the raw body bytes (never re-serialized), then queued as received for the processor.
Nothing personal is logged: no body, number or text, only sizes, counts and outcomes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from typing import Any

from aws_lambda_powertools.logging import Logger

from shared import constants as c

logger = Logger(service=c.SERVICE_NAME)
# The SDK would log the queued body (phone numbers, names, texts) at DEBUG: keep it at WARNING.
for _name in ("boto3", "botocore", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
_BATCH_ENTRIES = 10
_sqs_client: Any = None


# ---- responses ---------------------------------------------------------------------------------
def _response(status: int, body: str, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type},
        "body": body,
        "isBase64Encoded": False,
    }


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return _response(status, json.dumps({"error": code, "message": message}))


# ---- request parts -----------------------------------------------------------------------------
def _header(event: dict[str, Any], name: str) -> str | None:
    """A header's value, looked up case-insensitively (single- then multi-value form)."""
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and value is not None:
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return str(values[0])
    return None


def _query(event: dict[str, Any], name: str) -> str | None:
    value = (event.get("queryStringParameters") or {}).get(name)
    if value is None:
        values = (event.get("multiValueQueryStringParameters") or {}).get(name) or []
        value = values[0] if values else None
    return value


def raw_body(event: dict[str, Any]) -> bytes:
    """The body bytes exactly as Meta sent them (ValueError for malformed base64)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("malformed base64 body") from exc
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256(app secret, raw body), constant-time."""
    if not header or not app_secret:
        return False
    header = header.strip()
    if header[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX:
        return False
    given = header[len(SIGNATURE_PREFIX) :].strip().lower().encode("ascii", "replace")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, given)


def _secret(name: str, required: bool = False) -> str:
    """A field of the webhook's own secret ("" when unset or still the placeholder: nothing verifies
    against it; ConfigurationError instead when `required`)."""
    from shared.secrets import get_secret_field

    return get_secret_field(name, required=required)


# ---- queueing ----------------------------------------------------------------------------------
def _sqs() -> Any:
    global _sqs_client  # noqa: PLW0603 - one client per container, created on first use
    if _sqs_client is None:
        import boto3

        _sqs_client = boto3.client("sqs")
    return _sqs_client


def reset() -> None:
    """Forget the cached SQS client (tests switch accounts)."""
    global _sqs_client  # noqa: PLW0603
    _sqs_client = None


_EVENT_LISTS = ("messages", "statuses", "user_preferences", "errors")


def _split_value(envelope: dict[str, Any], entry: dict[str, Any], change: Any) -> list[str]:
    """One change as bodies of the envelope's shape, halving its event lists until each body fits
    (every part keeps the change's `contacts` and `metadata`)."""
    body = json.dumps({**envelope, "entry": [{**entry, "changes": [change]}]}, separators=(",", ":"))
    value = change.get("value") if isinstance(change, dict) else None
    if len(body.encode()) <= c.QUEUE_BODY_MAX_BYTES or not isinstance(value, dict):
        return [body]
    lists = [k for k in _EVENT_LISTS if isinstance(value.get(k), list) and value[k]]
    for key in lists:
        items = value[key]
        if len(items) > 1:
            half = len(items) // 2
            return [
                *_split_value(envelope, entry, {**change, "value": {**value, key: items[:half]}}),
                *_split_value(envelope, entry, {**change, "value": {**value, key: items[half:]}}),
            ]
    if len(lists) > 1:
        parts: list[str] = []
        for key in lists:
            only = {k: v for k, v in value.items() if k not in lists or k == key}
            parts.extend(_split_value(envelope, entry, {**change, "value": only}))
        return parts
    return [body]  # a single event over the queue limit: SQS refuses it and Meta retries


def queue_bodies(text: str, delivery: dict[str, Any]) -> list[str]:
    """The raw text when it fits one queue message, else one body per `entry[].changes[]` (split further
    when a single change is still too large), each of the same envelope shape."""
    if len(text.encode("utf-8", "surrogatepass")) <= c.QUEUE_BODY_MAX_BYTES:
        return [text]
    envelope = {k: v for k, v in delivery.items() if k != "entry"}
    bodies: list[str] = []
    for entry in delivery.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        base = {k: v for k, v in entry.items() if k != "changes"}
        for change in entry.get("changes") or []:
            bodies.extend(_split_value(envelope, base, change))
    return bodies or [text]


def enqueue(bodies: list[str]) -> None:
    """Send the bodies to the inbound queue (SendMessageBatch); raises when any is not accepted."""
    from shared.settings import require_env

    url = require_env(c.ENV_INBOUND_QUEUE_URL)
    if len(bodies) == 1:
        _sqs().send_message(QueueUrl=url, MessageBody=bodies[0])
        return
    batch: list[str] = []
    size = 0
    for body in [*bodies, None]:
        length = len(body.encode()) if body is not None else 0
        if batch and (body is None or len(batch) == _BATCH_ENTRIES or size + length > c.QUEUE_BODY_MAX_BYTES):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)]
            out = _sqs().send_message_batch(QueueUrl=url, Entries=entries)
            if out.get("Failed"):
                raise RuntimeError(f"{len(out['Failed'])} of {len(entries)} queue messages refused")
            batch, size = [], 0
        if body is not None:
            batch.append(body)
            size += length


# ---- the two methods ---------------------------------------------------------------------------
def handshake(event: dict[str, Any]) -> dict[str, Any]:
    mode = _query(event, "hub.mode")
    token = _query(event, "hub.verify_token") or ""
    challenge = _query(event, "hub.challenge")
    try:
        expected = _secret(c.SECRET_VERIFY_TOKEN)
    except Exception as exc:
        logger.error("webhook secret unavailable", extra={"error_type": type(exc).__name__})
        return _error(503, "unavailable", "verification is unavailable; retry later")
    ok = (
        mode == "subscribe"
        and challenge is not None
        and bool(expected)
        and secrets.compare_digest(token.encode(), expected.encode())
    )
    logger.info("webhook handshake", extra={"outcome": "verified" if ok else "refused"})
    if not ok:
        return _error(403, "forbidden", "verification failed")
    return _response(200, str(challenge), "text/plain")


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    try:
        body = raw_body(event)
    except ValueError:
        return _error(400, "invalid_body", "the body is not valid base64")
    if len(body) > c.WEBHOOK_MAX_BYTES:
        logger.info("webhook refused", extra={"outcome": "too_large", "bytes": len(body)})
        return _error(413, "payload_too_large", "the body exceeds 3 MB")
    try:
        app_secret = _secret(c.SECRET_APP_SECRET, required=True)
    except Exception as exc:  # unreachable or not filled in yet: Meta retries later, nothing is forged
        logger.error("webhook secret unavailable", extra={"error_type": type(exc).__name__})
        return _error(503, "unavailable", "the delivery cannot be verified now; retry later")
    if not signature_valid(body, _header(event, SIGNATURE_HEADER), app_secret):
        logger.info("webhook refused", extra={"outcome": "invalid_signature", "bytes": len(body)})
        return _error(401, "invalid_signature", "missing or invalid X-Hub-Signature-256")
    try:
        text = body.decode("utf-8")
        delivery = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested deeper than the parser goes
        delivery = None
    if not isinstance(delivery, dict):
        logger.info("webhook refused", extra={"outcome": "invalid_body", "bytes": len(body)})
        return _error(400, "invalid_body", "the body is not a JSON object")
    bodies = queue_bodies(text, delivery)
    try:
        enqueue(bodies)
    except Exception as exc:  # Meta retries a non-2xx delivery
        logger.error("webhook enqueue failed", extra={"error_type": type(exc).__name__, "parts": len(bodies)})
        return _error(503, "unavailable", "the delivery could not be queued; retry later")
    logger.info("webhook accepted", extra={"bytes": len(body), "parts": len(bodies)})
    return _response(200, json.dumps({"status": "accepted"}))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = str(event.get("httpMethod") or "").upper()
    if method == "GET":
        return handshake(event)
    if method == "POST":
        return deliver(event)
    return _error(405, "method_not_allowed", "use GET or POST")
