"""One audit run: the stack's template and resources (`store.stack`), the expectation
(`domain.audit_expect`), the checks (`domain.audit_checks`); the run kept in the audit table and each
finding put on the bus as an `audit.finding` event (`{"check", "resource", "detail"}`: logical ids and
configuration, never personal data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import audit_checks, audit_expect, events
from shared import constants as c
from store import audit, stack


def run_now(trigger: str) -> dict[str, Any]:
    """Run every check now; keep and publish the run; answer `{"run_at", "findings"}`."""
    src = stack.source()
    physical = src.physical
    if physical is None:
        physical = audit_expect.physical_from_stack(src.resources, src.region, src.account)
    exp = audit_expect.expectation(
        src.template, physical, region=src.region, account=src.account, stack=src.stack
    )
    findings = audit_checks.run(stack.client, exp)
    run_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    audit.keep_run(run_at, findings, trigger)
    events.publish([(c.EVENT_AUDIT_FINDING, dict(f)) for f in findings])
    return {"run_at": run_at, "findings": findings}


def last() -> dict[str, Any] | None:
    """The last run kept, `{"run_at", "findings"}`, or None when none has run."""
    item = audit.last_run()
    if item is None:
        return None
    findings = [
        {k: str(f.get(k, "")) for k in ("check", "resource", "detail")} for f in item.get("findings") or []
    ]
    return {"run_at": item["run_at"], "findings": findings}
