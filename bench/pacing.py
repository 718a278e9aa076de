"""campaign_pacing: a campaign of N recipients (10,000 in `make bench`) against the fake Graph API answering
after 100 ms, sent by several concurrent sender workers: the rate the Graph API receives over every
10-second window against the configured `campaignRatePerSecond`, duplicates and lost recipients.

The deployed code runs in-process on moto: the contacts are granted marketing consent through the same
domain calls as `PUT /contacts/{c}/consent` (untimed), the campaign is submitted through the campaigns
handler (`POST /campaigns`, an explicit audience of N numbers), and `WORKERS` threads, each a warm sender
container, consume the send queue as Lambda's event-source mapping does (batches of 10, failed records
left on the queue until the visibility the sender set ends: real time, no fast-forward). The campaign's
preparation steps run in the same workers, as they do deployed. The fake Graph API (in-process, its own
HTTP threads) records the monotonic time each send reached it; the windows are consecutive 10-second
spans from the first send, the last (partial) one left out.

The rate is chosen for this machine, not for AWS: every moto call costs Python CPU in this one process
(under the GIL). With a campaign message at about 7 AWS calls and moto's constant costs cut
(waguard/moto_fixes.py), it takes some 60 ms of CPU here across preparation and sending (150 ms before,
when the rate was 5/s), so 10/s leaves the pacing, not moto, the limit with room on a core. The pacing code
does not depend on the rate (slots of 1/rate seconds in a budget shared through DynamoDB).

The harness's heap holds moto's whole database (10,000 contacts, their consent, keys and messages, the
queues' and the bus's messages), which a deployed sender's never does: Python's full garbage collections
scanned it, a second-long pause every 20 s by the end, and every sender stalled together (a window 20%
short). What the seeding built, and then what each second of the run kept, is frozen out of the
collector (`gc.freeze()`); young garbage is still collected.

Baseline: the configured rate itself, which perfect pacing gives in every window (the goal: every window
within 5% of it, 0 duplicates, 0 lost).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from bench.stack import graph_api, local_stack, quiet_logs

LATENCY = 0.1
RATE = 10  # campaignRatePerSecond for the run (see the module doc)
WORKERS = 8  # Lambda scales the sender out with the queue; a campaign token can hold a thread up to 1 s
WINDOW_SECONDS = 10
TOLERANCE = 0.05
BATCH = 10


def _numbers(count: int) -> list[str]:
    return [str(4917000000000 + i) for i in range(count)]


def _seed(numbers: list[str]) -> float:
    """Marketing granted to every number, as `PUT /contacts/{c}/consent` records it (the grant and the
    number kept sealed in the PROFILE, so a campaign reaches it); seconds taken."""
    from domain import consent
    from tests.conftest import seed_templates

    seed_templates()  # the registry holds the fake WABA's templates, APPROVED (as the tests' stack)
    started = time.perf_counter()
    for i, number in enumerate(numbers):
        if i % 500 == 0:
            gc.freeze()  # the database seeded so far, out of the full collections (see the module doc)
        identity = consent.identify(number)
        consent.record(identity, "marketing", "granted", "web_form", publish=False)
        consent.remember_address(identity)
    return time.perf_counter() - started


def _submit(numbers: list[str]) -> tuple[str, float]:
    import json

    from handlers import campaigns_api
    from tests import factory as f

    body = {
        "name": "Pacing bench",
        "template": {"name": "spring_sale", "language": {"code": "en_US"}},
        "audience": {"contacts": [{"to": n} for n in numbers]},
    }
    started = time.perf_counter()
    event = f.rest_event("POST", "/campaigns", body=body, headers={"Content-Type": "application/json"})
    reply = campaigns_api.handler(event, f.LambdaContext())
    assert reply["statusCode"] == 202, reply
    return str(json.loads(reply["body"])["id"]), time.perf_counter() - started


def _status(cid: str) -> str:
    from store import campaigns as store

    meta = store.get(cid)
    return str(meta["status"]) if meta else "missing"


def _workers(stack: Any, cid: str, deadline: float) -> dict[str, Any]:
    """`WORKERS` sender containers on the send queue until the campaign completes (or `deadline`)."""
    from bench.esm import EventSourceMapping
    from handlers import sender

    done = threading.Event()
    mappings = [
        EventSourceMapping(stack.queues["send"], sender.handler, region=stack.region, batch_size=BATCH)
        for _ in range(WORKERS)
    ]
    for mapping in mappings:
        mapping.fast_forward = False  # a deferred record waits the visibility the sender set, as in AWS
    errors: list[str] = []

    def work(mapping: EventSourceMapping) -> None:
        while not done.is_set():
            try:
                if mapping.poll_once() == 0:
                    time.sleep(0.2)  # as a long poll would: an idle worker costs no CPU
            except Exception as exc:  # the harness's own trouble: reported, the worker goes on
                errors.append(type(exc).__name__)
                time.sleep(0.1)

    threads = [threading.Thread(target=work, args=(m,), daemon=True) for m in mappings]
    for t in threads:
        t.start()
    status = _status(cid)
    while time.time() < deadline and status not in ("completed", "cancelled", "paused"):
        time.sleep(1)
        gc.freeze()  # what the last second kept (moto's new items and messages): out of the full collections
        status = _status(cid)
    done.set()
    for t in threads:
        t.join(timeout=30)
    return {
        "final_status": status,
        "invocations": sum(m.invocations for m in mappings),
        "records": sum(m.records for m in mappings),
        "records_retried": sum(m.failures for m in mappings),
        "invocation_errors": sum(len(m.errors) for m in mappings),
        "harness_errors": len(errors),
    }


def windows(times: list[float], rate: float, width: float = WINDOW_SECONDS) -> dict[str, Any]:
    """Sends per second in consecutive `width`-second windows from the first send (the last, partial
    window left out); the largest deviation from `rate`."""
    if not times:
        return {"windows": [], "max_deviation": None, "within": False}
    ordered = sorted(times)
    start = ordered[0]
    full = int((ordered[-1] - start) // width)
    counts = [0] * full
    for t in ordered:
        k = int((t - start) // width)
        if k < full:
            counts[k] += 1
    rates = [round(n / width, 2) for n in counts]
    deviations = [abs(r - rate) / rate for r in rates]
    worst = max(deviations) if deviations else None
    return {
        "windows": rates,
        "full_windows": full,
        "min_rate": min(rates) if rates else None,
        "max_rate": max(rates) if rates else None,
        "max_deviation": round(worst, 4) if worst is not None else None,
        "within": bool(rates) and worst is not None and worst <= TOLERANCE,
    }


def run(recipients: int = 10_000, rate: int = RATE) -> dict[str, Any]:
    quiet_logs()
    settings = {"campaign_rate_per_second": rate, "send_rate_per_second": max(rate, 80)}
    numbers = _numbers(recipients)
    with local_stack(settings=settings) as stack, graph_api(LATENCY) as fake:
        from handlers import campaigns_api, sender  # noqa: F401
        from store import campaigns as store

        quiet_logs()
        seeded = _seed(numbers)
        cid, submit_seconds = _submit(numbers)
        gc.collect()
        gc.freeze()  # the seeded database (see the module doc)
        started = time.time()
        limit = float(os.environ.get("BENCH_PACING_MAX_SECONDS") or recipients / rate * 2 + 120)
        try:
            ran = _workers(stack, cid, deadline=started + limit)
        finally:
            gc.unfreeze()
        elapsed = time.time() - started
        calls = fake.calls()
        counts = store.counts(cid)
        recount = store.recount(cid)
    sent_to = [str(call["body"].get("to")) for call in calls if call.get("status") == 200]
    unique = set(sent_to)
    duplicates = len(sent_to) - len(unique)
    missing = len(set(numbers) - unique)
    completed = ran["final_status"] == "completed"
    lost = missing if completed else 0  # stopped early: the unsent ones are not lost, only not sent yet
    pace = windows([float(call["started"]) for call in calls if call.get("status") == 200], rate)
    return {
        "method": (
            f"{recipients} recipients (explicit audience, marketing granted), campaignRatePerSecond {rate}, "
            f"fake Graph API latency {int(LATENCY * 1000)} ms (in-process), {WORKERS} sender workers "
            f"(threads, each a warm container, batches of {BATCH}, real visibility timeouts); the rate the "
            f"Graph API received over consecutive {WINDOW_SECONDS}-second windows from the first send "
            "(the last, partial window left out)"
        ),
        "recipients": recipients,
        "configured_rate": rate,
        "graph_latency_ms": int(LATENCY * 1000),
        "workers": WORKERS,
        "seed_seconds": round(seeded, 1),
        "submit_seconds": round(submit_seconds, 1),
        "run_seconds": round(elapsed, 1),
        "graph_calls": len(calls),
        "sent": len(sent_to),
        "duplicates": duplicates,
        "lost": lost,
        "not_sent_when_stopped": 0 if completed else missing,
        "counts": {k: v for k, v in counts.items() if k != "skipped_by"},
        "counters_equal_recount": counts == recount,
        **ran,
        **pace,
        "overall_rate": round(
            len(sent_to) / (max(c["started"] for c in calls) - min(c["started"] for c in calls)), 2
        )
        if len(calls) > 1
        else None,
        "baseline": {"what": "the configured rate in every window (perfect pacing)", "rate": rate},
        "tolerance": TOLERANCE,
        "met": bool(pace["within"]) and duplicates == 0 and lost == 0 and completed,
    }
