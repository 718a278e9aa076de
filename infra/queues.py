"""The inbound and send queues, each with a dead-letter queue, and their event-source mappings.

All four queues: SSE with the data CMK, SSL-only queue policy. A queue's visibility timeout is six times
its consumer's timeout (the Lambda guidance for SQS event sources), so a message is never redelivered
while a consumer still works on it. The send DLQ takes a message after `maxSendAttempts` receives.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import WaguardConfig
from lambdas.shared import constants as c

VISIBILITY_FACTOR = 6
INBOUND_MAX_RECEIVES = 5
DLQ_RETENTION = Duration.days(14)
QUEUE_RETENTION = Duration.days(4)


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    key: kms.IKey,
    retention: Duration,
    visibility: Duration | None = None,
    dlq: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    """The one shape of a waguard queue: SSE with `key` (data keys reused 5 minutes), SSL-only policy."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.minutes(5),
        enforce_ssl=True,
        retention_period=retention,
        visibility_timeout=visibility,
        dead_letter_queue=dlq,
    )


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: WaguardConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._cfg = cfg
        self.inbound_dlq = encrypted_queue(self, "InboundDlq", key, DLQ_RETENTION)
        self.inbound = encrypted_queue(
            self,
            "Inbound",
            key,
            QUEUE_RETENTION,
            visibility=Duration.seconds(VISIBILITY_FACTOR * cfg.function(c.FN_PROCESSOR).timeout_seconds),
            dlq=sqs.DeadLetterQueue(queue=self.inbound_dlq, max_receive_count=INBOUND_MAX_RECEIVES),
        )
        self.send_dlq = encrypted_queue(self, "SendDlq", key, DLQ_RETENTION)
        self.send = encrypted_queue(
            self,
            "Send",
            key,
            QUEUE_RETENTION,
            visibility=Duration.seconds(VISIBILITY_FACTOR * cfg.function(c.FN_SENDER).timeout_seconds),
            dlq=sqs.DeadLetterQueue(queue=self.send_dlq, max_receive_count=cfg.max_send_attempts),
        )

    @property
    def dead_letter_queues(self) -> dict[str, sqs.Queue]:
        return {"inbound": self.inbound_dlq, "send": self.send_dlq}

    def subscribe(
        self, queue: sqs.Queue, consumer: lambda_.IFunction, *, batch_size: int, max_concurrency: int
    ) -> lambda_.EventSourceMapping:
        """An SQS event-source mapping with partial batch responses (the consumer's role is granted apart)."""
        mapping = lambda_.EventSourceMapping(
            self,
            f"{queue.node.id}Mapping",
            target=consumer,
            event_source_arn=queue.queue_arn,
            batch_size=batch_size,
            max_batching_window=Duration.seconds(self._cfg.max_batching_window_seconds),
            report_batch_item_failures=True,
            max_concurrency=max_concurrency,
            enabled=True,
        )
        return mapping
