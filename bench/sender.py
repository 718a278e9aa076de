"""sender_throughput: messages per second per sender invocation with a fake Graph API answering after
100 ms, and the concurrency that implies for 80 and 1,000 messages per second.

Messages are accepted through `POST /messages` (service text, windows opened by inbound messages), then
the send queue is consumed in batches of 10 (cdk.json senderBatchSize) by the sender handler; only the
handler's time counts. The per-number rate budget is lifted to Meta's maximum (the worker's capacity,
not the budget, is measured).

In-process moto answers each AWS call with several milliseconds of Python CPU, and under the GIL the ten
sending threads queue for it: the raw figure measures moto, not the worker. So the time spent inside moto
is measured per invocation (a timer around moto's request processing) and taken out, and each thread's
AWS calls are charged instead at `AWS_CALL_MS` each, sequentially (DynamoDB/SQS in-region latency, a
conservative single-digit-millisecond figure): that is the headline figure. Raw and moto-free figures are
reported beside it.

Baseline, same run, same fake: a bare worker sending each batch of 10 with 10 threads of plain urllib
POSTs (no AWS at all): what the Graph API's latency alone allows.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.stack import APP_SECRET, graph_api_process, graph_calls, local_stack, median, quiet_logs

LATENCY = 0.1
AWS_CALL_MS = 10.0
BATCH = 10
GOAL = 50.0
TARGET_RATES = (80, 1000)


def _accept(stack: Any, messages: int) -> None:
    from bench.esm import EventSourceMapping
    from handlers import messages_api, processor, webhook
    from tests import factory as f

    contacts = [str(4915500000000 + i) for i in range(20)]
    inbound = EventSourceMapping(stack.queues["inbound"], processor.handler, region=stack.region)
    for wa_id in contacts:
        event = f.webhook_post(f.webhook_body([f.text_message(wa_id, "hi")]), APP_SECRET)
        assert webhook.handler(event, f.LambdaContext())["statusCode"] == 200
    inbound.drain()
    for i in range(messages):
        body = {"to": contacts[i % len(contacts)], "purpose": "service", "text": {"body": f"Order {i} ships"}}
        event = f.rest_event("POST", "/messages", body=body, headers={"Content-Type": "application/json"})
        assert messages_api.handler(event, f.LambdaContext())["statusCode"] == 202


class MotoClock:
    """CPU seconds spent inside moto's request processing, summed over threads, while installed (CPU time,
    not wall time: a thread waiting for the GIL inside moto is not charged; under the GIL the CPU time of
    all threads adds up to the wall time moto occupied)."""

    def __init__(self) -> None:
        import threading

        self.seconds = 0.0
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> MotoClock:
        from moto.core.botocore_stubber import BotocoreStubber

        self._original = BotocoreStubber.process_request
        clock = self

        def timed(stub: Any, request: Any) -> Any:
            started = time.thread_time()
            try:
                return clock._original(stub, request)
            finally:
                with clock._lock:
                    clock.seconds += time.thread_time() - started

        BotocoreStubber.process_request = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        BotocoreStubber.process_request = self._original  # type: ignore[method-assign]


def _drain(stack: Any) -> dict[str, Any]:
    from bench.esm import EventSourceMapping
    from bench.meter import Meter
    from handlers import sender

    mapping = EventSourceMapping(stack.queues["send"], sender.handler, region=stack.region, batch_size=BATCH)
    raw: list[float] = []
    free: list[float] = []
    projected: list[float] = []
    calls_per_message: list[float] = []
    cpu_per_message: list[float] = []
    with Meter() as meter, MotoClock() as moto:
        while True:
            before, moto_before = mapping.handler_seconds, moto.seconds
            meter.reset()
            cpu_before = time.process_time()
            n = mapping.poll_once()
            cpu = time.process_time() - cpu_before
            if n == 0:
                visible, in_flight = mapping.depth()
                if visible == 0 and in_flight == 0:
                    break
                continue
            wall = mapping.handler_seconds - before
            inside = moto.seconds - moto_before
            if n != BATCH:
                continue
            per_message = meter.total() / n
            cpu_per_message.append((cpu - inside) / n)
            raw.append(wall)
            free.append(max(wall - inside, LATENCY))
            projected.append(max(wall - inside, LATENCY) + per_message * AWS_CALL_MS / 1000)
            calls_per_message.append(per_message)
    return {
        "invocations": mapping.invocations,
        "records": mapping.records,
        "retried_records": mapping.failures,
        "full_batches": len(raw),
        "raw_p50_ms": round(median(raw) * 1000, 1),
        "moto_free_p50_ms": round(median(free) * 1000, 1),
        "projected_p50_ms": round(median(projected) * 1000, 1),
        "aws_calls_per_message": round(median(calls_per_message), 2),
        "function_cpu_ms_per_message": round(median(cpu_per_message) * 1000, 2),
    }


def _bare(url: str, batches: int) -> dict[str, Any]:
    import urllib.request

    body = json.dumps(
        {"messaging_product": "whatsapp", "to": "4915500000000", "type": "text", "text": {"body": "x"}}
    ).encode()

    def post(_: int) -> int:
        request = urllib.request.Request(
            url,
            data=body,
            headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as answer:
            return answer.status

    durations = []
    for _ in range(batches):
        with ThreadPoolExecutor(max_workers=BATCH) as pool:  # a new pool per batch, as per invocation
            started = time.perf_counter()
            assert all(s == 200 for s in pool.map(post, range(BATCH)))
            durations.append(time.perf_counter() - started)
    p50 = median(durations)
    return {
        "what": f"batches of {BATCH} bare urllib POSTs on {BATCH} threads to the same fake (no AWS)",
        "invocation_p50_ms": round(p50 * 1000, 1),
        "msg_per_s": round(BATCH / p50, 1),
    }


def run(messages: int = 300) -> dict[str, Any]:
    quiet_logs()
    bare_batches = 20
    with (
        local_stack(settings={"send_rate_per_second": 1000}) as stack,
        graph_api_process(LATENCY, messages + bare_batches * BATCH) as base_url,
    ):
        from handlers import messages_api, sender  # noqa: F401

        quiet_logs()
        _accept(stack, messages)
        drained = _drain(stack)
        sent = len(graph_calls(base_url))
        from shared.settings import get_settings

        s = get_settings()
        url = f"{s.graph_api_url}/{s.graph_api_version}/{s.phone_number_id}/messages"
        bare = _bare(url, bare_batches)
    assert sent == messages, f"{sent} of {messages} reached the Graph API"

    def rate(ms: float) -> float:
        return round(BATCH / (ms / 1000), 1)

    per_invocation = rate(drained["projected_p50_ms"])
    implied = {str(r): math.ceil(r / per_invocation) for r in TARGET_RATES}
    return {
        "method": f"{messages} messages, batches of {BATCH}, fake Graph API latency {int(LATENCY * 1000)} "
        "ms, "
        f"rate budget lifted; handler time only, p50 over full batches; moto's own CPU time taken out and "
        f"each AWS call charged {AWS_CALL_MS:.0f} ms on its thread",
        "graph_latency_ms": int(LATENCY * 1000),
        "aws_call_ms": AWS_CALL_MS,
        "batch_size": BATCH,
        "msg_per_s_per_invocation": per_invocation,
        "invocation_p50_ms": drained["projected_p50_ms"],
        "measured_in_process": {
            "raw_invocation_p50_ms": drained["raw_p50_ms"],
            "raw_msg_per_s": rate(drained["raw_p50_ms"]),
            "moto_free_invocation_p50_ms": drained["moto_free_p50_ms"],
            "moto_free_msg_per_s": rate(drained["moto_free_p50_ms"]),
            "aws_calls_per_message": drained["aws_calls_per_message"],
            "function_cpu_ms_per_message": drained["function_cpu_ms_per_message"],
            "invocations": drained["invocations"],
            "retried_records": drained["retried_records"],
        },
        "implied_concurrency": implied,
        "baseline": bare,
        "ratio_to_baseline": round(per_invocation / bare["msg_per_s"], 2),
        "goal_msg_per_s": GOAL,
        "met": per_invocation >= GOAL,
    }
