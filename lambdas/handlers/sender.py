"""The sender: SQS batches of the send queue (partial batch response), the batch's messages sent
concurrently, each through domain.delivery.deliver.

A record to retry is made visible again after its backoff (ChangeMessageVisibility) and reported as a
batch item failure: the function never sleeps for a backoff. See docs/sending.md.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from domain import delivery
from shared import constants as c
from shared.observability import logger, metrics

MAX_WORKERS = 10  # threads per invocation (the batch size is at most 10 in cdk.json)
SAFETY_SECONDS = 10  # left at the end of an invocation to record outcomes and answer


class RetryLater(Exception):
    """The record stays on the queue (a batch item failure); its visibility is already set."""


def _one(
    record: dict[str, Any],
    token: str,
    max_attempts: int,
    deadline: float | None = None,
    told: delivery.Told | None = None,
) -> delivery.Outcome:
    try:
        return _attempt(record, token, max_attempts, deadline, told)
    finally:
        if told is not None and told.slots is not None:
            told.slots.finish(_names_contact(record))  # a slot fewer expected unless it took one


def _attempt(
    record: dict[str, Any],
    token: str,
    max_attempts: int,
    deadline: float | None,
    told: delivery.Told | None,
) -> delivery.Outcome:
    attributes = record.get("attributes") or {}
    receive_count = int(attributes.get("ApproximateReceiveCount") or 1)
    source_arn = record.get("eventSourceARN")
    try:
        body = json.loads(record.get("body") or "")
        if isinstance(body, dict) and isinstance(body.get("campaign"), str):
            return _campaign_step(body["campaign"], source_arn)
        message_id, contact = body["message_id"], body.get("contact")
        if not isinstance(message_id, str):
            raise TypeError("message_id")
    except (ValueError, KeyError, TypeError):
        logger.error("malformed send-queue record dropped", extra={"sqs_message_id": record.get("messageId")})
        return delivery.Outcome("dropped")
    try:
        enqueued_at = int(attributes.get("SentTimestamp") or 0) / 1000
        outcome = delivery.deliver(
            message_id,
            receive_count,
            enqueued_at,
            token,
            source_arn=source_arn,
            deadline=deadline,
            told=told,
            contact=contact if isinstance(contact, str) else None,
        )
    except Exception as exc:
        logger.error(
            "send attempt failed", extra={"message_id": message_id, "error_type": type(exc).__name__}
        )
        if receive_count >= max_attempts:
            try:
                delivery.give_up(message_id, {"code": "internal_error", "title": type(exc).__name__})
            except Exception as again:
                logger.error(
                    "could not mark failed",
                    extra={"message_id": message_id, "error_type": type(again).__name__},
                )
        return delivery.Outcome("error", retry=True)
    if outcome.retry and outcome.delay is not None and record.get("receiptHandle"):
        try:
            delivery.defer(record["receiptHandle"], outcome.delay, source_arn)
        except Exception as exc:  # the record comes back after the queue's visibility timeout instead
            logger.warning(
                "visibility change failed", extra={"message_id": message_id, "error_type": type(exc).__name__}
            )
    answer = outcome.answer
    logger.info(
        "send outcome",
        extra={
            "message_id": message_id,
            "outcome": outcome.result,
            "delay": outcome.delay,
            "receive_count": receive_count,
            "http_status": answer.http_status if answer else None,
            "meta_code": answer.code if answer else None,
        },
    )
    return outcome


def _campaign_step(cid: str, source_arn: str | None) -> delivery.Outcome:
    """A campaign's next step (domain/campaign_steps.py); an error leaves the record to be retried."""
    from domain import campaign_steps

    try:
        done = campaign_steps.step(cid, source_arn)
    except Exception as exc:
        logger.error("campaign step failed", extra={"campaign": cid, "error_type": type(exc).__name__})
        return delivery.Outcome("error", retry=True)
    logger.info("campaign step", extra={"campaign": cid, "outcome": done})
    return delivery.Outcome("dropped")


def _names_contact(record: dict[str, Any]) -> bool:
    """A campaign message's record (its body names the recipient): one that may need a campaign slot."""
    return '"contact"' in str(record.get("body") or "")


def deliver_all(records: list[dict[str, Any]], deadline: float | None = None) -> dict[str, delivery.Outcome]:
    """Every record's outcome (by SQS messageId), the records sent concurrently, their status events told
    together at the end (domain.delivery.Told); metrics recorded. `deadline`: `time.monotonic()` by which
    the invocation must have answered."""
    from shared.secrets import clear_cache, get_secret_field
    from shared.settings import get_settings
    from store import tables

    if not records:
        return {}
    settings = get_settings()
    token = get_secret_field(c.SECRET_ACCESS_TOKEN)
    get_secret_field(c.SECRET_CONTACT_KEY)  # one fetch of each secret for all threads
    tables.table(c.TABLE_MESSAGES)
    from store import ratelimit

    told = delivery.Told(slots=ratelimit.Slots(sum(_names_contact(r) for r in records)))
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(records)), thread_name_prefix="send") as pool:
        futures = {
            r["messageId"]: pool.submit(_one, r, token, settings.max_send_attempts, deadline, told)
            for r in records
        }
        try:
            outcomes = {mid: future.result() for mid, future in futures.items()}
        finally:
            told.slots.give_back()
            told.flush()
    counts = {"MessagesSent": 0, "MessagesFailed": 0, "GraphThrottled": 0, "GraphAuthErrors": 0}
    for outcome in outcomes.values():
        counts["MessagesSent"] += outcome.result == "sent"
        counts["MessagesFailed"] += outcome.result == "failed"
        if outcome.answer is not None:
            counts["GraphThrottled"] += outcome.answer.throttled
            counts["GraphAuthErrors"] += outcome.answer.auth_error
    for name, value in counts.items():
        metrics.add_metric(name=name, unit="Count", value=value)
    if counts["GraphAuthErrors"]:
        clear_cache()  # a rotated access token is picked up by the next invocation
    return outcomes


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    records = list(event.get("Records") or [])
    if not records:
        return {"batchItemFailures": []}
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    deadline = time.monotonic() + remaining - SAFETY_SECONDS if remaining is not None else None
    outcomes = deliver_all(records, deadline)

    def record_handler(record: Any) -> None:
        outcome = outcomes.get(record.message_id)
        if outcome is None or outcome.retry:
            raise RetryLater(record.message_id)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
