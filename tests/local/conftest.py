"""Fixtures of the local runtime's tests: the fixture template, a moto server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from waguard import aws, cfn

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "local_template.json"
HANDLERS = str(Path(__file__).resolve().parent / "handlers")
REGION = "eu-central-1"


@pytest.fixture
def tpl() -> cfn.Template:
    return cfn.load(FIXTURE, region=REGION)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    port = aws.free_port()
    server = aws.start_moto("127.0.0.1", port)
    yield aws.url("127.0.0.1", port)
    server.stop()


@pytest.fixture
def endpoint(moto_server: str) -> str:
    """A moto endpoint with nothing in it (moto's state is per process: reset before each test)."""
    aws.reset_moto(moto_server)
    return moto_server
