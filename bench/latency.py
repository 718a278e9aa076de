"""webhook_latency: in-process time per delivery of `handlers.webhook.handler` on moto, against a minimal
reference doing the least any webhook must: HMAC-SHA256 over the raw body (constant-time compare), a JSON
parse, and one SendMessage of the body to the same moto queue.

Both run in the same process on the same stack, interleaved delivery by delivery (so machine noise hits
both alike), over the same signed deliveries (a text message each, as Meta sends them), after a warm-up
(the handler's secret and client cached, as in a warm Lambda container). The queue is purged between
rounds, untimed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from bench.stack import APP_SECRET, local_stack, median, percentile, quiet_logs

GOAL_RATIO = 1.5


def _events(n: int) -> list[dict[str, Any]]:
    from tests import factory as f

    out = []
    for i in range(n):
        msg = f.text_message(str(4915100000000 + i), f"Hello, is my order {i} on its way?")
        out.append(f.webhook_post(f.webhook_body([msg]), APP_SECRET))
    return out


def _empty(queue_url: str, region: str) -> None:
    """Drop the queued bodies in moto directly (untimed; PurgeQueue allows one call a minute)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    sqs_backends[DEFAULT_ACCOUNT_ID][region].queues[queue_url.rsplit("/", 1)[-1]]._messages.clear()


def run(deliveries: int = 1000, warmup: int = 50) -> dict[str, Any]:
    quiet_logs()
    with local_stack() as stack:
        import boto3

        from handlers import webhook
        from tests import factory as f

        quiet_logs()

        sqs = boto3.client("sqs", region_name=stack.region)
        queue = stack.queues["inbound"]
        context = f.LambdaContext()
        secret = APP_SECRET.encode()

        def reference(event: dict[str, Any]) -> dict[str, Any]:
            body = event["body"].encode()
            given = event["headers"]["X-Hub-Signature-256"][len("sha256=") :]
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, given):
                return {"statusCode": 401}
            json.loads(body)
            sqs.send_message(QueueUrl=queue, MessageBody=event["body"])
            return {"statusCode": 200}

        events = _events(deliveries + warmup)
        for event in events[:warmup]:
            assert webhook.handler(event, context)["statusCode"] == 200
            assert reference(event)["statusCode"] == 200
        handler_s: list[float] = []
        reference_s: list[float] = []
        for i, event in enumerate(events[warmup:]):
            pair = [
                ("handler", lambda e=event: webhook.handler(e, context)),
                ("reference", lambda e=event: reference(e)),
            ]
            if i % 2:
                pair.reverse()
            for name, call in pair:
                started = time.perf_counter()
                reply = call()
                elapsed = time.perf_counter() - started
                assert reply["statusCode"] == 200, reply
                (handler_s if name == "handler" else reference_s).append(elapsed)
            if i % 100 == 99:
                _empty(queue, stack.region)

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(median(values) * 1000, 3),
            "p99_ms": round(percentile(values, 99) * 1000, 3),
            "mean_ms": round(sum(values) / len(values) * 1000, 3),
        }

    handler, ref = summary(handler_s), summary(reference_s)
    p50_ratio = handler["p50_ms"] / ref["p50_ms"]
    p99_ratio = handler["p99_ms"] / ref["p99_ms"]
    return {
        "method": f"{deliveries} signed text-message deliveries, in-process on moto, handler and reference "
        "interleaved, after a warm-up; SQS moto in-process in both",
        "deliveries": deliveries,
        "handler": handler,
        "baseline": {"what": "HMAC-SHA256 + JSON parse + one SendMessage to the same moto queue", **ref},
        "p50_ratio": round(p50_ratio, 2),
        "p99_ratio": round(p99_ratio, 2),
        "goal_ratio": GOAL_RATIO,
        "met": p50_ratio <= GOAL_RATIO and p99_ratio <= GOAL_RATIO,
    }
