"""EventBridge schedules, run locally: each `rate(...)` rule of the template invokes its function on that
rate, with the event EventBridge sends (`detail-type: Scheduled Event`), as `waguard serve` runs queue
consumers for the event-source mappings. The first run is one period after start, as in AWS."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from waguard.model import ScheduleSpec


def scheduled_event(rule_arn: str, region: str, account: str, now: float | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule delivers to its Lambda target."""
    at = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler(threading.Thread):
    """Invokes one schedule's function every `every_seconds` until stopped (`period` overrides the rate)."""

    def __init__(
        self,
        schedule: ScheduleSpec,
        invoke: Callable[[dict[str, Any]], Any],
        rule_arn: str,
        region: str,
        account: str,
        report: Callable[[str], None] = lambda line: None,
        period: float | None = None,
    ) -> None:
        super().__init__(name=f"schedule-{schedule.function}", daemon=True)
        self.schedule = schedule
        self.invoke = invoke
        self.rule_arn, self.region, self.account = rule_arn, region, account
        self.report = report
        self.period = period if period is not None else float(schedule.every_seconds)
        self.stopping = threading.Event()
        self.runs = 0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                self.invoke(scheduled_event(self.rule_arn, self.region, self.account))
            except Exception as exc:  # EventBridge retries and then drops; the next period runs anyway
                self.report(f"{self.schedule.function}: scheduled run failed ({type(exc).__name__})")
            self.runs += 1
