"""The per-second send budget (store.ratelimit): shared by concurrent workers, bounded waiting."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from shared import constants as c

NUMBER = "106540352242922"


def test_two_threads_never_exceed_the_budget(aws_stack):
    from store import ratelimit, tables

    limit = 7
    taken: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.time() + 2.2
    tables.table(c.TABLE_MESSAGES)

    def worker() -> None:
        while time.time() < deadline:
            second = int(time.time())
            if ratelimit.try_take(NUMBER, limit, second):
                with lock:
                    taken[second] += 1

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken, "no token was ever taken"
    assert max(taken.values()) <= limit
    assert limit in taken.values()  # a whole second's budget was used
    for second, count in taken.items():
        assert ratelimit.used(NUMBER, second) == count
    (item, *_) = [i for i in aws_stack.items(c.TABLE_MESSAGES) if i["pk"] == "RATE#" + NUMBER]
    assert int(item["expires_at"]) <= time.time() + 86400 + 5  # operational retention: 1 day


def test_acquire_waits_for_the_next_second_then_gives_up(monkeypatch):
    from store import ratelimit

    clock = [100.25]
    sleeps: list[float] = []
    open_at = {101}  # the budget of second 100 is spent; second 101 has tokens

    monkeypatch.setattr(ratelimit, "try_take", lambda number, per_second, second: second in open_at)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    assert ratelimit.acquire(NUMBER, 5, clock=lambda: clock[0], sleep=sleep, jitter=lambda: 0.0)
    assert sleeps == [pytest.approx(0.75)]

    open_at.clear()
    sleeps.clear()
    clock[0] = 100.25
    assert not ratelimit.acquire(NUMBER, 5, clock=lambda: clock[0], sleep=sleep, jitter=lambda: 1.0)
    assert sum(sleeps) <= ratelimit.MAX_WAIT_SECONDS < 2


def test_limit_is_clamped(aws_stack, monkeypatch):
    import json

    from shared import settings
    from store import ratelimit

    raw = json.loads(aws_stack.env[c.ENV_SETTINGS])
    assert ratelimit.limit() == raw["send_rate_per_second"] == 80
    for configured, expected in ((5000, 1000), (0, 1)):
        monkeypatch.setenv(c.ENV_SETTINGS, json.dumps({**raw, "send_rate_per_second": configured}))
        settings.reset()
        assert ratelimit.limit() == expected
    settings.reset()
