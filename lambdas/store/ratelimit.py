"""The messages-per-second budget of a business phone number, shared by every concurrent sender.

One counter item per number and second in the messages table (`RATE#<phone_number_id>` /
`<epoch second>`, data class `operational`): a token is one conditional `ADD n :1` that succeeds only
while `n < limit`, so any number of workers (threads and Lambda instances) together never exceed the
limit in any wall-clock second. See docs/sending.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from shared import constants as c
from shared.settings import get_settings
from store import tables

RATE_PREFIX = "RATE#"
MAX_WAIT_SECONDS = 1.5  # bounded: a worker waits at most this long for a token before deferring
META_MAX_RATE = 1000


def limit() -> int:
    """The configured budget (messages per second), clamped to 1..1000 (Meta's highest throughput)."""
    return max(1, min(META_MAX_RATE, int(get_settings().send_rate_per_second)))


def campaign_key(phone_number_id: str) -> str:
    """The campaigns' own budget of a business number: campaigns never spend the budget of single
    replies (and the reverse), so a reply is never starved by a campaign."""
    return f"{phone_number_id}#campaign"


def campaign_limit() -> int:
    """`campaignRatePerSecond` (locally `WA_CAMPAIGN_RATE`), at most the number's `sendRatePerSecond`."""
    settings = get_settings()
    return max(1, min(int(settings.campaign_rate_per_second), limit()))


def _take_args(phone_number_id: str, per_second: int, second: int) -> dict[str, Any]:
    return {
        "Key": {c.PK: RATE_PREFIX + phone_number_id, c.SK: str(second)},
        "UpdateExpression": "ADD n :one SET expires_at = if_not_exists(expires_at, :ttl)",
        "ConditionExpression": "attribute_not_exists(n) OR n < :limit",
        "ExpressionAttributeValues": {
            ":one": 1,
            ":limit": per_second,
            ":ttl": tables.expires_at(c.CLASS_OPERATIONAL, second),
        },
    }


def take_op(phone_number_id: str, per_second: int, second: int) -> dict[str, Any]:
    """`try_take`'s update as a TransactWriteItems `Update`, for a caller that takes the token inside a
    write it makes anyway (the sender's lease, store/outbound.py `claim`)."""
    from shared.settings import table_name

    return {"TableName": table_name(c.TABLE_MESSAGES), **_take_args(phone_number_id, per_second, second)}


def try_take(phone_number_id: str, per_second: int, second: int) -> bool:
    """Take one token of `second`'s budget; False when the budget of that second is spent."""
    from botocore.exceptions import ClientError

    try:
        tables.table(c.TABLE_MESSAGES).update_item(**_take_args(phone_number_id, per_second, second))
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def acquire(
    phone_number_id: str,
    per_second: int | None = None,
    max_wait: float = MAX_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    take: Callable[[str, int, int], bool] | None = None,
) -> bool:
    """One send token, waiting for the next second(s) while the budget is spent, at most `max_wait`.

    False when no token came within `max_wait`: the caller defers the message instead of waiting longer.
    `take`: how a token is taken (default `try_take`; the sender takes it inside its lease's write).
    """
    per_second = per_second or limit()
    waited = 0.0
    while True:
        now = clock()
        if (take or try_take)(phone_number_id, per_second, int(now)):
            return True
        # Wake just after the next second starts, spread by up to 50 ms so waiters do not stampede.
        pause = (int(now) + 1 - now) + 0.05 * jitter()
        if waited + pause > max_wait:
            return False
        sleep(pause)
        waited += pause


def used(phone_number_id: str, second: int) -> int:
    """Tokens taken in one second (tests and benchmarks)."""
    item = tables.get_live(c.TABLE_MESSAGES, RATE_PREFIX + phone_number_id, str(second))
    return int(item["n"]) if item else 0
