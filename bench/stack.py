"""The benchmarks' AWS: the stack's tables, queues, key and secret on moto in-process (the same resources
as the tests' `aws_stack` fixture, built by the same code), the functions' environment set, and
optionally the fake Graph API with a fixed latency."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
for path in (str(ROOT), str(LAMBDAS)):
    if path not in sys.path:
        sys.path.insert(0, path)

PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "test-app-secret"  # tests/conftest.py SECRETS


@contextmanager
def environment(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *remove)}
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def local_stack(settings: dict[str, Any] | None = None, **env: str) -> Iterator[Any]:
    """A fresh moto account with the stack's data resources; `settings` overrides WG_SETTINGS keys."""
    import json

    from moto import mock_aws

    from shared import constants as c
    from tests.conftest import _create_stack, reset_runtime_caches

    base = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
    from waguard import moto_fixes

    # moto would copy whole tables per transaction (quadratic at 1e5 items), and the sender's batch runs
    # in threads: requests one at a time, as DynamoDB applies them.
    moto_fixes.install()
    with environment(base, remove=("AWS_ENDPOINT_URL", "AWS_PROFILE")), mock_aws():
        stack = _create_stack()
        if settings:
            merged = {**json.loads(stack.env[c.ENV_SETTINGS]), **settings}
            stack.env[c.ENV_SETTINGS] = json.dumps(merged)
        with environment({**stack.env, **env}):
            reset_runtime_caches()
            _reset_handlers()
            try:
                yield stack
            finally:
                reset_runtime_caches()
                _reset_handlers()


def _reset_handlers() -> None:
    from bench.meter import reset_clients

    reset_clients()


@contextmanager
def graph_api(latency: float = 0.0) -> Iterator[Any]:
    """The fake Graph API; every call waits `latency` seconds before answering (as Meta's round trip)."""
    from waguard import graph_fake

    server, url = graph_fake.start()
    if latency > 0:
        original = server._next_scripted

        def delayed() -> dict[str, Any]:
            entry = original()
            return entry if entry is not None else {"delay": latency}

        server._next_scripted = delayed  # type: ignore[method-assign]
    try:
        with environment({"WA_GRAPH_API_URL": url, "WA_PHONE_NUMBER_ID": PHONE_NUMBER_ID}):
            from shared import settings

            settings.reset()
            yield server
    finally:
        server.shutdown()


@contextmanager
def graph_api_process(latency: float, calls: int) -> Iterator[str]:
    """The fake Graph API in its own process (its CPU stays out of the measured process), the first
    `calls` calls answered after `latency` seconds; yields the base URL."""
    import json
    import subprocess
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "waguard.graph_fake", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("graph-fake: "):
            raise RuntimeError(f"the fake Graph API did not start: {line!r}")
        url = line.split(" ", 1)[1].strip()
        script = json.dumps([{"delay": latency}] * calls).encode()
        request = urllib.request.Request(
            url + "/_fake/script", data=script, headers={"Content-Type": "application/json"}, method="POST"
        )
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10).close()
        with environment({"WA_GRAPH_API_URL": url, "WA_PHONE_NUMBER_ID": PHONE_NUMBER_ID}):
            from shared import settings

            settings.reset()
            yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def graph_calls(url: str) -> list[dict[str, Any]]:
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/_fake/calls", timeout=10) as answer:
        calls = json.loads(answer.read())
    return [c for c in calls if str(c.get("path", "")).endswith("/messages")]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def quiet_logs() -> None:
    """The service logger at WARNING: benchmarks measure work, not log formatting."""
    import logging

    logging.getLogger("waguard").setLevel(logging.WARNING)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
