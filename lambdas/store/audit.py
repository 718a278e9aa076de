"""The application audit log: who did what, when, with what outcome; never personal data.

`subject` is a contact pseudonym at most; `actor` is the caller's IAM principal ARN.
"""

from __future__ import annotations

import secrets
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
