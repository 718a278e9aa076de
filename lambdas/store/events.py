"""Business events on the stack's EventBridge bus (contract: Conversations).

`publish` puts events with `source` `waguard` and the detail type as `detail-type`: neither carries
personal data (the bus's customer-managed key covers `detail` only); `resources` stays empty. Entries go
out ten per PutEvents call (EventBridge's limit) and a failed entry is retried with backoff; what still
fails raises `Unpublished`, so the caller's work is retried or answered with an error, never dropped.

An entry must fit EventBridge's 256 KB: a `detail` over the budget loses its `message.text` (marked
`"truncated": true`); the text stays readable through the conversation route.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import require_env

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 256 * 1024
DETAIL_BUDGET = MAX_ENTRY_BYTES - 2048  # room for source, detail-type and the bus name
ATTEMPTS = 3
BACKOFF_SECONDS = 0.2


class Unpublished(RuntimeError):
    """EventBridge did not take every event (throttled or unavailable) after the retries."""


@cache
def _client() -> Any:
    import boto3

    return boto3.client("events")


def reset() -> None:
    _client.cache_clear()


def _fit(detail: dict[str, Any]) -> str:
    text = json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= DETAIL_BUDGET:
        return text
    message = dict(detail.get("message") or {})
    message.pop("text", None)
    message["truncated"] = True
    return json.dumps({**detail, "message": message}, ensure_ascii=False, separators=(",", ":"))


def entry(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "Source": c.EVENT_SOURCE,
        "DetailType": detail_type,
        "Detail": _fit(detail),
        "EventBusName": require_env(c.ENV_EVENT_BUS_NAME),
    }


def publish(events: list[tuple[str, dict[str, Any]]]) -> int:
    """Put every event on the bus (ten per call); returns how many were put. Raises Unpublished."""
    entries = [entry(t, d) for t, d in events]
    for start in range(0, len(entries), MAX_ENTRIES):
        _put(entries[start : start + MAX_ENTRIES])
    return len(entries)


def _put(chunk: list[dict[str, Any]]) -> None:
    pending = chunk
    for attempt in range(ATTEMPTS):
        try:
            answer = _client().put_events(Entries=pending)
        except Exception as exc:  # throttled, 5xx, unreachable: retried, then raised
            if attempt == ATTEMPTS - 1:
                raise Unpublished(type(exc).__name__) from exc
        else:
            results = answer.get("Entries", [])
            pending = [e for e, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
            if not pending:
                return
        time.sleep(BACKOFF_SECONDS * 2**attempt)
    raise Unpublished(f"{len(pending)} events not taken by EventBridge")
