"""moto's DynamoDB takes no lock: DynamoDB applies a conditional update atomically per item, and moto
backs up and restores whole tables around a transaction, which is not safe beside another thread. Code
that calls DynamoDB from several threads (the sender's batch) is run against moto with both serialized,
as DynamoDB would apply them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.RLock()


def _serialized(real: Any) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return real(self, *args, **kwargs)

    call.__wrapped__ = real  # type: ignore[attr-defined]
    return call


@contextmanager
def serialized() -> Iterator[None]:
    """moto's update_item and transact_write_items, one at a time, for the duration."""
    from moto.dynamodb.models import DynamoDBBackend

    saved = {name: getattr(DynamoDBBackend, name) for name in ("update_item", "transact_write_items")}
    try:
        for name, real in saved.items():
            setattr(DynamoDBBackend, name, _serialized(real))
        yield
    finally:
        for name, real in saved.items():
            setattr(DynamoDBBackend, name, real)
