"""The application audit log: who did what, when, with what outcome; never personal data.

`subject` is a contact pseudonym at most; `actor` is the caller's IAM principal ARN.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from shared import constants as c
from store import tables


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def record(
    actor: str,
    action: str,
    outcome: str,
    route: str = "",
    items: int = 0,
    subject: str | None = None,
    receipt_id: str | None = None,
) -> dict[str, Any]:
    at = tables.now()
    iso = _iso(at)
    item: dict[str, Any] = {
        c.PK: "AUDIT#" + iso[:10],
        c.SK: f"{iso}#{secrets.token_hex(4)}",
        "actor": actor or "unknown",
        "action": action,
        "route": route,
        "outcome": outcome,
        "items": int(items),
        "recorded_at": iso,
    }
    if subject:
        item["subject"] = subject
    if receipt_id:
        item["receipt_id"] = receipt_id
    tables.table(c.TABLE_AUDIT).put_item(Item=tables.stamp(item, c.CLASS_AUDIT, at))
    return item


def day(date: str) -> list[dict[str, Any]]:
    """Audit records of one UTC day (`YYYY-MM-DD`), oldest first."""
    from boto3.dynamodb.conditions import Key

    return list(tables.query_live(c.TABLE_AUDIT, Key(c.PK).eq("AUDIT#" + date)))


RUNS_PK = "AUDITRUN"  # the audit runs (waguard's self-audit), newest last by `sk` = run time


def keep_run(run_at: str, findings: list[dict[str, str]], trigger: str) -> dict[str, Any]:
    """Keep one audit run (its findings name resources by logical id: no personal data)."""
    item: dict[str, Any] = {
        c.PK: RUNS_PK,
        c.SK: f"{_iso(time.time())}#{secrets.token_hex(4)}",  # microseconds: runs of one second in order
        "run_at": run_at,
        "trigger": trigger,
        "findings": findings,
        "count": len(findings),
    }
    tables.table(c.TABLE_AUDIT).put_item(Item=tables.stamp(item, c.CLASS_AUDIT))
    return item


def last_run() -> dict[str, Any] | None:
    """The newest audit run kept, or None."""
    from boto3.dynamodb.conditions import Key

    for item in tables.query_live(c.TABLE_AUDIT, Key(c.PK).eq(RUNS_PK), ScanIndexForward=False, Limit=1):
        return item
    return None
