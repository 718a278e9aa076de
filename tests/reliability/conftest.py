"""Reliability tests: fuzzing, fault injection, PII in logs, soak. In-process on the `aws_stack` moto account.

Two profiles: the default (part of `make test`, a few seconds to a minute each) and the full one
(`WAGUARD_RELIABILITY=full`, what `make fuzz` runs: 20,000+ fuzz cases and the 10,000-message soak).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.meter import Meter


@pytest.fixture
def meter(aws_stack: Any) -> Iterator[Meter]:
    """Every AWS call of the test counted (and faultable); the stack's caches re-created under it."""
    with Meter(keep_params=True) as m:
        yield m


@pytest.fixture
def graph(aws_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The strict fake Graph API, the stack pointed at it; retry base 1 s (contract: tests may)."""
    from shared import settings
    from tests import factory as f
    from waguard import graph_fake

    server, url = graph_fake.start()
    monkeypatch.setenv("WA_GRAPH_API_URL", url)
    monkeypatch.setenv("WA_PHONE_NUMBER_ID", f.PHONE_NUMBER_ID)
    monkeypatch.setenv("WA_RETRY_BASE_SECONDS", "1")
    settings.reset()
    try:
        yield server
    finally:
        server.shutdown()
        settings.reset()
