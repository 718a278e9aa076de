"""SQS event source mappings, run as Lambda's pollers run them.

One thread per `AWS::Lambda::EventSourceMapping`: receive up to BatchSize messages (long poll, within the
batching window), hand them to the function as Lambda's SQS event, then delete what succeeded: with
`ReportBatchItemFailures`, every record not named in `batchItemFailures`; without it, the whole batch
on success. A failed invocation deletes nothing. The visibility of failed records is left alone (the
function may have set it itself, e.g. the sender's backoff), and the queue's redrive policy moves a
record to its DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from waguard import aws
from waguard.model import MappingSpec
from waguard.workers import InvocationError

WAIT_SECONDS = 1


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, attr in (attributes or {}).items():
        binary = attr.get("BinaryValue")
        out[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": attr.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(b).decode() if isinstance(b, bytes) else b
                for b in attr.get("BinaryListValues", [])
            ],
            "dataType": attr.get("DataType"),
        }
    return out


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for received messages (boto3 `receive_message` shapes)."""
    records = []
    for m in messages:
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m.get("Body", ""),
            "attributes": dict(m.get("Attributes") or {}),
            "messageAttributes": _message_attributes(m.get("MessageAttributes") or {}),
            "md5OfBody": m.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        if m.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def succeeded(messages: list[dict[str, Any]], response: Any, report_failures: bool) -> list[dict[str, Any]]:
    """The messages to delete after a successful invocation, by Lambda's rules for partial batch responses.

    An empty or null response, or an empty `batchItemFailures`, means every record succeeded; an item
    without a valid `itemIdentifier` of this batch makes Lambda treat the whole batch as failed.
    """
    if not report_failures or not response:
        return messages
    if not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return []
    ids = {m["MessageId"] for m in messages}
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in ids:
            return []
        failed.add(identifier)
    return [m for m in messages if m["MessageId"] not in failed]


class Poller(threading.Thread):
    def __init__(
        self,
        mapping: MappingSpec,
        invoke: Callable[[dict[str, Any]], Any],
        endpoint: str,
        region: str,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        super().__init__(name=f"poller-{mapping.function}", daemon=True)
        self.mapping = mapping
        self.invoke = invoke
        self.region = region
        self.report = report
        self.stopping = threading.Event()
        self.sqs = aws.client("sqs", endpoint, region)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the endpoint restarting, a network hiccup: try again shortly
                if not self.stopping.is_set():
                    self.report(f"{self.mapping.function}: polling failed ({type(exc).__name__}); retrying")
                    self.stopping.wait(1)

    def receive(self) -> list[dict[str, Any]]:
        m = self.mapping
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + m.batching_window
        while len(messages) < m.batch_size and not self.stopping.is_set():
            got = self.sqs.receive_message(
                QueueUrl=m.queue_url,
                MaxNumberOfMessages=min(10, m.batch_size - len(messages)),
                WaitTimeSeconds=WAIT_SECONDS if not messages else 0,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)
            if not messages or not got or time.monotonic() >= deadline:
                break
        return messages

    def poll_once(self) -> int:
        """Receive one batch, invoke, delete the successes; the number of messages received."""
        messages = self.receive()
        if not messages:
            return 0
        m = self.mapping
        try:
            response = self.invoke(sqs_event(messages, m.queue_arn, self.region))
        except InvocationError as exc:
            if not self.stopping.is_set():
                self.report(
                    f"{m.function}: a batch of {len(messages)} failed ({exc.error_type}); will be retried"
                )
            return len(messages)
        done = succeeded(messages, response, m.report_batch_item_failures)
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=m.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"]} for i, msg in enumerate(chunk)
                ],
            )
        return len(messages)
