"""The messages-per-second budget of a business phone number, shared by every concurrent sender.

One counter item per number and second in the messages table (`RATE#<phone_number_id>` /
`<epoch second>`, data class `operational`): a token is one conditional `ADD n :1` that succeeds only
while `n < limit`, so any number of workers (threads and Lambda instances) together never exceed the
limit in any wall-clock second. See docs/sending.md.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from shared import constants as c
from shared.settings import get_settings
from store import tables

RATE_PREFIX = "RATE#"
MAX_WAIT_SECONDS = 1.5  # bounded: a worker waits at most this long for a token before deferring
META_MAX_RATE = 1000
SLOW_SK = "SLOW"
NEXT_SK = "NEXT"  # a campaign budget's next free send slot (claim_slot)
STALE_SLOT_SECONDS = 1.0  # a block's slot this far in the past is not used (no burst of late sends)
COOLDOWN_SECONDS = 60  # a halved campaign budget holds this long after the last 130429, then recovers
HALVING_GAP_SECONDS = 5  # a burst of 130429 answers (every message in flight) halves once, not per answer
MAX_DIVISOR = 16
SLOW_CACHE_SECONDS = 1.0
_slow_cache: dict[str, tuple[float, int, int]] = {}  # number -> (read at, divisor, until)
_slow_lock = threading.Lock()
_slow_read = threading.Lock()


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


def campaign_rate(phone_number_id: str, now: float | None = None) -> int:
    """The campaigns' messages per second for the number now: `campaign_limit()`, divided while Meta's
    throughput limit (130429) slowed it down."""
    return max(1, campaign_limit() // _divisor(phone_number_id, time.time() if now is None else now))


def _slow_item(phone_number_id: str, consistent: bool = True) -> dict[str, Any] | None:
    return tables.get_live(
        c.TABLE_MESSAGES, RATE_PREFIX + campaign_key(phone_number_id), SLOW_SK, consistent=consistent
    )


def _divisor(phone_number_id: str, now: float) -> int:
    """The divisor in force (1 when none or its cool-down is over); read at most once a second."""
    with _slow_lock:
        cached = _slow_cache.get(phone_number_id)
    if cached is None or not 0 <= now - cached[0] < SLOW_CACHE_SECONDS:
        with _slow_read:  # one read for the sender's concurrent sends, the others wait for it
            with _slow_lock:
                cached = _slow_cache.get(phone_number_id)
            if cached is None or not 0 <= now - cached[0] < SLOW_CACHE_SECONDS:
                item = _slow_item(phone_number_id, consistent=False)
                cached = (now, int(item["divisor"]), int(item["until"])) if item else (now, 1, 0)
                with _slow_lock:
                    _slow_cache[phone_number_id] = cached
    return cached[1] if now < cached[2] else 1


def slow_campaigns(phone_number_id: str, now: float | None = None) -> int:
    """Meta answered 130429 (throughput exceeded) for the number: halve its campaigns' budget for
    `COOLDOWN_SECONDS` (once per `HALVING_GAP_SECONDS`, down to 1/`MAX_DIVISOR`). The divisor in force."""
    from botocore.exceptions import ClientError

    at = int(time.time() if now is None else now)
    item = _slow_item(phone_number_id)
    until, halved_at = (int(item["until"]), int(item["halved_at"])) if item else (0, 0)
    active = at < until
    current = int(item["divisor"]) if item and active else 1
    if active and at - halved_at < HALVING_GAP_SECONDS:
        return current  # this burst already halved it
    divisor = min(MAX_DIVISOR, current * 2)
    values: dict[str, Any] = {
        ":d": divisor,
        ":u": at + COOLDOWN_SECONDS,
        ":h": at,
        ":ttl": tables.expires_at(c.CLASS_OPERATIONAL, at),
    }
    condition = "attribute_not_exists(halved_at)"
    if item:
        condition = "halved_at = :prev"
        values[":prev"] = item["halved_at"]
    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            Key={c.PK: RATE_PREFIX + campaign_key(phone_number_id), c.SK: SLOW_SK},
            UpdateExpression="SET divisor = :d, #u = :u, halved_at = :h, expires_at = :ttl",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#u": "until"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        divisor = current  # another instance halved it at the same moment
    with _slow_lock:
        _slow_cache.pop(phone_number_id, None)
    return divisor


def reset() -> None:
    """Forget the cached slowdowns (tests: a fresh container)."""
    with _slow_lock:
        _slow_cache.clear()
    _idle_after.clear()


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


def claim_slot(key: str, per_second: int, now: float, max_wait: float = MAX_WAIT_SECONDS) -> float | None:
    """The time (epoch seconds) of the next free send slot of budget `key`, slots `1 / per_second` apart
    (one item `RATE#<key>` / `NEXT`, `t` the next free slot in ms); None when it is more than `max_wait`
    away. One conditional update while the budget is busy, two when it was idle (a refused update returns
    the item, so no read is needed to tell an idle budget from one taken too far ahead)."""
    got = claim_block(key, per_second, now, 1, max_wait)
    return got[0] / 1000 if got else None


def _interval(per_second: int) -> int:
    return max(1, round(1000 / per_second))


def claim_block(
    key: str, per_second: int, now: float, wanted: int, max_wait: float = MAX_WAIT_SECONDS, idle: bool = False
) -> tuple[int, int] | None:
    """`claim_slot` for up to `wanted` consecutive slots at once (one sender invocation's campaign
    messages): (the first slot's time in ms, how many), never a slot more than `max_wait` away (fewer
    slots when the budget is taken that far); None when even the first is further. `idle`: the budget is
    believed idle (its last block ended before `now`): that update is tried first. Each slot is still
    claimed by one conditional update of the shared item, so every instance together keeps the rate."""
    from botocore.exceptions import ClientError

    interval = _interval(per_second)
    now_ms, last_ms = int(now * 1000), int((now + max_wait) * 1000)
    wanted = max(1, min(wanted, (last_ms - now_ms) // interval + 1))
    key_item = {c.PK: RATE_PREFIX + key, c.SK: NEXT_SK}
    values = {":now": now_ms, ":ttl": tables.expires_at(c.CLASS_OPERATIONAL, now)}
    table = tables.table(c.TABLE_MESSAGES)
    seen: int | None = None  # the budget's next free slot as a refused update returned it
    for attempt in range(8):
        if seen is not None and seen > last_ms:
            return None  # the budget is taken further ahead than we may wait
        if idle if attempt == 0 else (seen is None or seen < now_ms):
            try:  # idle: the first slot is now
                table.update_item(
                    Key=key_item,
                    UpdateExpression="SET t = :next, expires_at = :ttl",
                    ConditionExpression="attribute_not_exists(t) OR t < :now",
                    ExpressionAttributeValues={**values, ":next": now_ms + wanted * interval},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return now_ms, wanted
            except ClientError as exc:
                seen = _refused_t(exc)
                continue
        # busy: the next free slot is ahead; take as many as fit before `max_wait` and move it on
        fit = wanted if seen is None else max(1, min(wanted, (last_ms - seen) // interval + 1))
        bound = last_ms - (fit - 1) * interval  # the block's last slot no further than `max_wait`
        try:
            got = table.update_item(
                Key=key_item,
                UpdateExpression="SET t = t + :i, expires_at = :ttl",
                ConditionExpression="t >= :now AND t <= :last",
                ExpressionAttributeValues={**values, ":i": fit * interval, ":last": bound},
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return int(got["Attributes"]["t"]) - fit * interval, fit
        except ClientError as exc:
            seen = _refused_t(exc)  # another instance moved it meanwhile: the refusal says where it is
    return None


def _refused_t(exc: Any) -> int | None:
    """A refused conditional update's item's `t` (ReturnValuesOnConditionCheckFailure); other errors
    raise."""
    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
        raise exc
    held = (exc.response.get("Item") or {}).get("t")
    return int(held["N"]) if isinstance(held, dict) and "N" in held else None


def give_back(key: str, first_ms: int, end_ms: int) -> bool:
    """Unused slots `first_ms` .. `end_ms` (exclusive) of a block return to the budget when no one claimed
    after them (its next free slot is still `end_ms`); False when someone did (they stay unused)."""
    from botocore.exceptions import ClientError

    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            Key={c.PK: RATE_PREFIX + key, c.SK: NEXT_SK},
            UpdateExpression="SET t = :first",
            ConditionExpression="t = :end",
            ExpressionAttributeValues={":first": first_ms, ":end": end_ms},
        )
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return False


_idle_after: dict[str, int] = {}  # budget key -> the end (ms) of the last block this container claimed


class Slots:
    """The campaign send slots of one sender invocation: the first of its messages to need a slot claims
    a block, one for each of the invocation's campaign messages still in hand (`expected`), and the others
    take theirs from it (one update for the batch instead of one or two per message). A message that ends
    without a slot (gated out, held, a duplicate) says so (`finish`); slots left at the end go back to the
    budget (`give_back`) when no one claimed after them."""

    def __init__(self, expected: int = 0) -> None:
        self._lock = threading.Lock()
        self._mine = threading.local()
        self.expected = expected  # campaign messages that may still ask for a slot
        self._free: dict[tuple[str, int], list[int]] = {}  # (key, per second) -> unused slots (ms)
        self._ends: dict[tuple[str, int], int] = {}  # (key, per second) -> the end of its last block

    def take(self, key: str, per_second: int, now: float, max_wait: float = MAX_WAIT_SECONDS) -> float | None:
        """A slot's time (epoch seconds), None when none is within `max_wait`."""
        with self._lock:
            pool = self._free.setdefault((key, per_second), [])
            while pool and pool[0] < int((now - STALE_SLOT_SECONDS) * 1000):
                pool.pop(0)  # long past (its message never came): left unused rather than sent in a burst
            if not pool:
                idle = _idle_after.get(key, 0) < int(now * 1000)
                got = claim_block(key, per_second, now, max(1, self.expected), max_wait, idle=idle)
                if got is None:
                    return None
                first, count = got
                interval = _interval(per_second)
                pool.extend(first + i * interval for i in range(count))
                self._ends[(key, per_second)] = first + count * interval
                _idle_after[key] = first + count * interval
            self.expected = max(0, self.expected - 1)
            self._mine.took = True
            return pool.pop(0) / 1000

    def finish(self, expected: bool = True) -> None:
        """The calling thread's message is done: one slot fewer expected (when it was one of `expected`),
        unless it took one."""
        with self._lock:
            if expected and not getattr(self._mine, "took", False):
                self.expected = max(0, self.expected - 1)
            self._mine.took = False

    def give_back(self) -> None:
        """Every block's unused slots back to its budget (one update each, only when some are unused)."""
        with self._lock:
            for (key, _), pool in self._free.items():
                end = self._ends.get((key, _))
                if pool and end is not None and give_back(key, pool[0], end):
                    _idle_after[key] = pool[0]
                pool.clear()


def acquire_spaced(
    key: str,
    per_second: int,
    max_wait: float = MAX_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    slots: Slots | None = None,
) -> bool:
    """A campaign's send slot: sends of every instance spaced `1 / per_second` apart (never a burst as a
    second starts), waiting for the slot at most `max_wait`; False: the caller defers the message.
    `slots`: the invocation's blocks of slots (one claim for its messages), else one slot claimed."""
    now = clock()
    if slots is not None:
        slot = slots.take(key, per_second, now, max_wait)
    else:
        slot = claim_slot(key, per_second, now, max_wait)
    if slot is None:
        return False
    wait = slot - clock()
    if wait > 0:
        sleep(wait)
    return True


def used(phone_number_id: str, second: int) -> int:
    """Tokens taken in one second (tests and benchmarks)."""
    item = tables.get_live(c.TABLE_MESSAGES, RATE_PREFIX + phone_number_id, str(second))
    return int(item["n"]) if item else 0
