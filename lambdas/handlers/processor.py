"""The inbound queue consumer: one queue message is one verified webhook delivery (or one part of it).

Partial batch failures: a record whose processing raises (a throttled table, KMS unavailable, a bus that
refuses its events) is reported back and retried by SQS; the rest of the batch is done. A body that is
not a delivery at all cannot succeed on retry, so it is counted and dropped (its content is never logged).

Order: a record is stored first and told second (`message.received`). An application that answers the
event by contact reference therefore always finds the contact and the message; when the bus refuses, the
record fails and SQS delivers it again: storing is idempotent (the repeat counts as a duplicate) and the
events are built from the delivery again, so no stored message goes untold (at least once).

The events of the whole SQS batch go out together once every record is processed (PutEvents takes ten
per call), then the batch's status items are marked done (one transaction): when the bus refuses, every
record with events fails back to SQS, its statuses still `new`, so their events are told on the retry.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from domain import ingest, templates
from models.webhook import Delivery
from shared import constants as c
from shared.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)
_batch = threading.local()  # the records of the batch being handled: (id, events, statuses, restricted)


def _metric(name: str, value: int) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _delivery(body: str) -> Delivery | None:
    try:
        return Delivery.model_validate(json.loads(body))
    except (ValueError, RecursionError, ValidationError):
        return None


def record_handler(record: SQSRecord) -> None:
    delivery = _delivery(record.body)
    if delivery is None:
        _metric("InvalidDelivery", 1)
        logger.warning("inbound body is not a webhook delivery", extra={"message_id": record.message_id})
        return
    counts = ingest.ingest(delivery)
    told = counts.told + ingest.received_events(delivery, counts=counts)
    changed = templates.from_delivery(delivery)  # the registry's entries change at once
    if changed:
        from domain import campaign_steps

        campaign_steps.pause_for_templates(changed)  # a template that left APPROVED pauses its campaigns
    told += changed
    _batch.pending.append((record.message_id, told, counts.done, counts.restricted))
    _metric("InboundMessages", counts.messages)
    _metric("StatusEvents", counts.statuses)
    _metric("Duplicates", counts.duplicates)
    _metric("PreferenceChanges", counts.preferences)
    _metric("WebhookErrors", counts.errors)
    _metric("IgnoredChanges", counts.ignored_changes)
    _metric("InvalidEvents", counts.invalid_changes)
    _metric("MalformedItems", counts.malformed_items)
    _metric("InvalidSenders", counts.invalid_senders)
    _metric("MismatchedRecipients", counts.mismatched_recipients)
    _metric("OptOuts", counts.opt_outs)
    _metric("OptIns", counts.opt_ins)
    _metric(c.METRIC_UNKNOWN_BUSINESS_NUMBER, counts.unknown_numbers)
    logger.info(
        "inbound processed",
        extra={
            "messages": counts.messages,
            "statuses": counts.statuses,
            "duplicates": counts.duplicates,
            "ignored_fields": counts.fields,
        },
    )


def _finish() -> list[str]:
    """Tell the batch's events and mark its statuses done; the records to fail back to SQS (all those
    with something to tell or mark when the bus or the table refused)."""
    pending = _batch.pending
    told = [e for _, t, _, _ in pending for e in t]
    done = [k for _, _, d, _ in pending for k in d]
    known: dict[str, bool] = {}
    for _, _, _, restricted in pending:
        for pk, state in restricted.items():
            known[pk] = known.get(pk, False) or state
    try:
        ingest.finish(told, done, known)
    except Exception as exc:
        logger.warning("batch events not told", extra={"error_type": type(exc).__name__})
        return [mid for mid, t, d, _ in pending if t or d]
    _metric("EventsPublished", len(told))
    return []


def _warm(records: list[dict[str, Any]]) -> None:
    """The statuses' contact keys of the batch read together (domain.statuses.warm_keys); best effort."""
    from domain import statuses

    try:
        statuses.warm_keys([str(r.get("body") or "") for r in records])
    except Exception as exc:  # each status reads its key on its own then
        logger.warning("status keys not read ahead", extra={"error_type": type(exc).__name__})


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> Any:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    _batch.pending = []
    _warm(event.get("Records") or [])
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        failed = _finish()
    finally:
        _batch.pending = []
    if failed:
        items = response.setdefault("batchItemFailures", [])
        items += [{"itemIdentifier": mid} for mid in failed]
        if len(items) >= len(event.get("Records") or []):
            raise BatchProcessingError("every record of the batch failed", [])
    return response
