"""The media worker: jobs of the media queue (partial batch response), each through domain.media.fetch.

A job that hit transient trouble is made visible again after its backoff (base `WA_RETRY_BASE_SECONDS`,
ChangeMessageVisibility) and reported as a batch item failure; after the queue's maxReceiveCount the
DLQ takes it (alarmed). A job that can never succeed is dropped with a log line naming only ids.
"""

from __future__ import annotations

from typing import Any

from shared.observability import logger


class RetryLater(Exception):
    """The job stays on the queue (a batch item failure); its visibility is already set."""


def _one(record: Any, token: str) -> None:
    from domain import graph
    from domain import media as domain_media
    from shared.settings import get_settings
    from store import media as store_media

    settings = get_settings()
    raw = record.raw_event
    receive_count = int((raw.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    try:
        job = domain_media.parse_job(record.body or "")
    except (ValueError, KeyError, TypeError):
        logger.error("malformed media job dropped", extra={"sqs_message_id": record.message_id})
        return
    try:
        outcome = domain_media.fetch(job, token, settings)
    except domain_media.Unfetchable as exc:
        logger.warning("media refused", extra={"media_id": job.media_id, "reason": str(exc)})
        return
    except Exception as exc:
        delay = graph.backoff_seconds(receive_count, settings.retry_base_seconds)
        logger.warning(
            "media download failed",
            extra={"media_id": job.media_id, "error_type": type(exc).__name__, "retry_in": delay},
        )
        if raw.get("receiptHandle") and raw.get("eventSourceARN"):
            try:
                store_media.defer(raw["receiptHandle"], delay, raw["eventSourceARN"])
            except Exception as again:  # visible again after the queue's visibility timeout instead
                logger.warning("visibility change failed", extra={"error_type": type(again).__name__})
        raise RetryLater(job.media_id) from exc
    logger.info("media outcome", extra={"media_id": job.media_id, "outcome": outcome})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from shared import constants as c
    from shared.secrets import get_secret_field

    if not event.get("Records"):
        return {"batchItemFailures": []}
    token = get_secret_field(c.SECRET_ACCESS_TOKEN)

    def record_handler(record: Any) -> None:
        _one(record, token)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
