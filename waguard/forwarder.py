"""`waguard serve --forward-events URL`: the local stand-in of the deployed API destination.

In AWS the bus's forwarding rule targets an API destination that POSTs each event to the business's
endpoint. moto delivers rule targets only to queues, so locally the same rule (materialized from the
template) targets a queue, and this forwarder drains it as the API destination would:

- each event is POSTed as its EventBridge JSON envelope (`version`, `id`, `detail-type`, `source`,
  `account`, `time`, `region`, `resources`, `detail`), `Content-Type: application/json`, with the header
  `X-Waguard-Events-Key: KEY`, and must be answered within 5 seconds (API destinations' limit);
- a non-2xx answer, a timeout or a refused connection is retried with exponential backoff starting at
  `WA_RETRY_BASE_SECONDS` (the message becomes visible again after the delay; its `id` is unchanged);
- after the rule's retry attempts (template metadata `waguard:forward`) the event goes to the dead-letter
  queue.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

HEADER = "X-Waguard-Events-Key"  # = shared.constants.EVENTS_HEADER (a test checks they agree)
FORWARD_METADATA = "waguard:forward"  # = infra.events.FORWARD_METADATA
TIMEOUT_SECONDS = 5.0
MAX_DELAY_SECONDS = 300


@dataclass(frozen=True)
class Route:
    queue_url: str
    dlq_url: str
    endpoint: str
    key: str
    attempts: int  # retries after the first delivery
    base_seconds: float
    account: str = ""  # moto's envelopes lack `account`; EventBridge's carry it


class Forwarder(threading.Thread):
    def __init__(self, route: Route, sqs: Any, report: Any = None) -> None:
        super().__init__(name="events-forwarder", daemon=True)
        self.route = route
        self.sqs = sqs
        self.report = report or (lambda line: None)
        self.stopping = threading.Event()
        self.delivered = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                got = self.sqs.receive_message(
                    QueueUrl=self.route.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=30,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except Exception as exc:  # moto stopping, a transient error: try again shortly
                if self.stopping.wait(0.5):
                    return
                self.report(f"events forwarder: receive failed: {type(exc).__name__}")
                continue
            for message in got.get("Messages", []):
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if post(self.route.endpoint, self.route.key, envelope(message["Body"], self.route.account)):
            self.delivered += 1
            self.sqs.delete_message(QueueUrl=self.route.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return
        if receives > self.route.attempts:
            self.sqs.send_message(QueueUrl=self.route.dlq_url, MessageBody=message["Body"])
            self.sqs.delete_message(QueueUrl=self.route.queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.dead_lettered += 1
            self.report(f"events forwarder: an event went to the dead-letter queue after {receives} tries")
            return
        delay = min(MAX_DELAY_SECONDS, round(self.route.base_seconds * 2 ** (receives - 1)))
        self.sqs.change_message_visibility(
            QueueUrl=self.route.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=delay
        )


def start(tpl: Any, physical: dict[str, Any], endpoint_url: str, target: str, key: str, base: float,
          report: Any = None) -> Forwarder:  # fmt: skip
    """Route the template's forwarding rule to a local queue and start draining it into `target`."""
    from waguard import aws
    from waguard.cfn import Resolver, TemplateError
    from waguard.cfn.resolve import physical_name

    rules = [
        lid
        for lid, r in tpl.resources.items()
        if r.type == "AWS::Events::Rule" and FORWARD_METADATA in r.metadata
    ]
    if not rules:
        raise TemplateError("the template has no events forwarding rule (metadata waguard:forward)")
    rule = rules[0]
    meta = tpl.resources[rule].metadata[FORWARD_METADATA] or {}
    bus = str(Resolver(tpl, physical).resolve(tpl.props(rule).get("EventBusName", "default")))
    sqs = aws.client("sqs", endpoint_url, tpl.region)
    urls = {
        part: sqs.create_queue(QueueName=physical_name(tpl, f"LocalEvents{part}", 75))["QueueUrl"]
        for part in ("Forward", "ForwardDlq")
    }
    arn = sqs.get_queue_attributes(QueueUrl=urls["Forward"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.client("events", endpoint_url, tpl.region).put_targets(
        Rule=physical[rule].ref, EventBusName=bus, Targets=[{"Id": "local-api-destination", "Arn": arn}]
    )
    attempts = int(meta.get("retryAttempts", 8))
    route = Route(urls["Forward"], urls["ForwardDlq"], target, key, attempts, base, str(tpl.account))
    forwarder = Forwarder(route, sqs, report)
    forwarder.start()
    return forwarder


ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def envelope(body: str, account: str) -> str:
    """The EventBridge envelope as an API destination sends it: its fields in EventBridge's order."""
    event = json.loads(body)
    event.setdefault("account", account)
    event.setdefault("resources", [])
    return json.dumps({k: event[k] for k in ENVELOPE if k in event}, ensure_ascii=False)


def post(endpoint: str, key: str, body: str) -> bool:
    """POST one envelope; True on a 2xx answer within the timeout."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the developer's own endpoint
        endpoint,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", HEADER: key},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return 200 <= answer.status < 300
    except (urllib.error.URLError, TimeoutError, OSError):
        return False
