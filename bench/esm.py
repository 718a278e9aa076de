"""An SQS event-source mapping, in-process: receive from the (moto) queue, invoke the handler with the
Lambda SQS event, delete what succeeded, leave the batch item failures on the queue.

As in AWS, a record reported as failed becomes visible again when its visibility timeout ends (the queue's,
or what the function set with ChangeMessageVisibility), and SQS moves it to the dead-letter queue on the
receive after `maxReceiveCount`. `fast_forward=True` ends pending visibility timeouts at once (the test
does not wait for real time); the delay the function asked for is still recorded in `delays`.
The mapping's own SQS calls are not metered and never faulted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.meter import Meter


class LambdaContext:
    """Enough of the Lambda context for Powertools' decorators."""

    function_name = "waguard-local"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:waguard-local"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/waguard-local"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30000


@dataclass
class EventSourceMapping:
    queue_url: str
    handler: Callable[[dict[str, Any], Any], Any]
    region: str = "eu-central-1"
    batch_size: int = 10
    fast_forward: bool = True
    invocations: int = 0
    records: int = 0
    failures: int = 0
    handler_seconds: float = 0.0
    raise_errors: bool = False  # re-raise an invocation error instead of retrying the batch as AWS does
    errors: list[Exception] = field(default_factory=list)
    _sqs: Any = None
    _arn: str = ""

    def _client(self) -> Any:
        if self._sqs is None:
            import boto3

            with Meter.suspended():
                self._sqs = boto3.client("sqs", region_name=self.region)
                self._arn = self._sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
        return self._sqs

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": dict(m.get("Attributes") or {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._arn,
                    "awsRegion": self.region,
                }
                for m in messages
            ]
        }

    def poll_once(self, context: Any = None) -> int:
        """One receive + invoke + delete round; the number of records handed to the function."""
        sqs = self._client()
        with Meter.suspended():
            got = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
        if not got:
            return 0
        started = time.perf_counter()
        try:
            result = self.handler(self.event(got), context if context is not None else LambdaContext())
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception as exc:  # an invocation error: the whole batch returns to the queue
            if self.raise_errors:
                raise
            self.errors.append(exc)
            failed = {m["MessageId"] for m in got}
        self.handler_seconds += time.perf_counter() - started
        self.invocations += 1
        self.records += len(got)
        self.failures += len(failed)
        with Meter.suspended():
            done = [m for m in got if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ]
                sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if self.fast_forward:
                for m in got:
                    if m["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                        )
        return len(got)

    def depth(self) -> tuple[int, int]:
        """(visible, in flight) messages on the queue."""
        sqs = self._client()
        with Meter.suspended():
            attrs = sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, max_rounds: int = 10_000, context: Any = None) -> int:
        """Poll until the queue is empty (nothing visible and, with fast_forward, nothing in flight)."""
        total = 0
        for _ in range(max_rounds):
            n = self.poll_once(context)
            total += n
            if n == 0:
                visible, in_flight = self.depth()
                if visible == 0 and (in_flight == 0 or not self.fast_forward):
                    return total
        raise RuntimeError(f"queue not drained after {max_rounds} rounds")


def queue_bodies(queue_url: str, region: str = "eu-central-1", delete: bool = True) -> list[str]:
    """Every visible message body on a queue; deleted when `delete`, else left visible again (a peek)."""
    import boto3

    out: list[str] = []
    handles: list[str] = []
    with Meter.suspended():
        sqs = boto3.client("sqs", region_name=region)
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not got:
                break
            for m in got:
                out.append(m["Body"])
                if delete:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    handles.append(m["ReceiptHandle"])
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return out
