"""Guarded writes: an item with encrypted attributes is written only while its key is the contact's key.

A warm container caches data keys (store.crypto). After an erasure served by another container, the cache
can still hold the shredded key; a write sealed under it would be stored and never be readable again, which
is silent data loss behind a 2xx. So every write of encrypted attributes goes through `run`: the build
function seals its values with `Write.seal` and declares its puts and updates; `run` sends them in one
TransactWriteItems together with a ConditionCheck per contact key used (`DK.key_id` is still the one the
values were sealed under). When a guard fails, the stale key is dropped, the key is read again (after an
erasure a new key is created: a new life for the contact) and the write is built and sealed anew.

Cost: one TransactWriteItems call instead of one PutItem/UpdateItem (twice the write units; the same
number of calls, and one call where a message and its PROFILE were two).

Conditions of the declared operations themselves (a message already stored, `last_inbound_at` only
forward) are reported by `Cancelled.codes`, aligned with the operations in declaration order; the caller
decides (a duplicate, a second build without the condition).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared import constants as c
from shared.settings import table_name
from store import tables

T = TypeVar("T")
ATTEMPTS = 4
CONDITION_FAILED = "ConditionalCheckFailed"
_RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class Cancelled(Exception):
    """One of the write's own conditions failed: `codes[i]` is the reason of operation i (None: fine)."""

    def __init__(self, codes: list[str | None]) -> None:
        super().__init__("the write's condition failed")
        self.codes = codes

    def failed(self, index: int, end: int | None = None) -> bool:
        """Whether operation `index` (or any of `index` .. `end` - 1) failed its condition."""
        return any(code == CONDITION_FAILED for code in self.codes[index : (end or index + 1)])


class _KeyChanged(Exception):
    def __init__(self, stale: list[tuple[str, str]]) -> None:
        super().__init__("a data key changed while the write was built")
        self.stale = stale


class Write:
    """The operations of one guarded write (at most 100 with the guards, DynamoDB's transaction limit)."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self._keys: dict[str, Any] = {}

    def seal(self, chash: str, logical: str, pk: str, sk: str, attr: str, value: Any) -> str:
        """Encrypt `value` for attribute `attr` of item (pk, sk) under the current key of `chash`."""
        from store.crypto import cipher

        wkey = self._keys.get(chash)
        if wkey is None:
            wkey = self._keys[chash] = cipher().write_key(chash)
        return cipher().seal(wkey, logical, pk, sk, attr, value)

    def put(self, logical: str, item: dict[str, Any], condition: str | None = None, **expr: Any) -> int:
        """Declare a put (`expr`: ExpressionAttributeNames / ExpressionAttributeValues); its index."""
        op: dict[str, Any] = {"TableName": table_name(logical), "Item": item}
        if condition:
            op["ConditionExpression"] = condition
        op.update({k: v for k, v in expr.items() if v})
        self.ops.append({"Put": op})
        return len(self.ops) - 1

    def update(
        self,
        logical: str,
        key: dict[str, Any],
        expression: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        condition: str | None = None,
    ) -> int:
        """Declare an update; returns its index."""
        op: dict[str, Any] = {"TableName": table_name(logical), "Key": key, "UpdateExpression": expression}
        if names:
            op["ExpressionAttributeNames"] = names
        if values:
            op["ExpressionAttributeValues"] = values
        if condition:
            op["ConditionExpression"] = condition
        self.ops.append({"Update": op})
        return len(self.ops) - 1

    def check(
        self,
        logical: str,
        key: dict[str, Any],
        condition: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> int:
        """Declare a ConditionCheck on another item (read inside the write at no extra call); its index."""
        op: dict[str, Any] = {"TableName": table_name(logical), "Key": key, "ConditionExpression": condition}
        if names:
            op["ExpressionAttributeNames"] = names
        if values:
            op["ExpressionAttributeValues"] = values
        self.ops.append({"ConditionCheck": op})
        return len(self.ops) - 1

    def _guards(self) -> list[dict[str, Any]]:
        from store.crypto import DATA_KEY_SK, KEY_ID

        return [
            {
                "ConditionCheck": {
                    "TableName": table_name(c.TABLE_KEYS),
                    "Key": {c.PK: chash, c.SK: DATA_KEY_SK},
                    "ConditionExpression": "#k = :k",
                    "ExpressionAttributeNames": {"#k": KEY_ID},
                    "ExpressionAttributeValues": {":k": wkey.key_id},
                }
            }
            for chash, wkey in self._keys.items()
        ]

    def commit(self) -> None:
        if not self.ops:
            return
        guards = self._guards()
        client = tables.client()
        try:
            client.transact_write_items(TransactItems=[*self.ops, *guards])
        except client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes: list[str | None] = [
                None if (r.get("Code") in (None, "None")) else str(r.get("Code")) for r in reasons
            ]
            codes += [None] * (len(self.ops) + len(guards) - len(codes))
            own, checks = codes[: len(self.ops)], codes[len(self.ops) :]
            stale = [
                (chash, wkey.key_id)
                for (chash, wkey), code in zip(self._keys.items(), checks, strict=True)
                if code == CONDITION_FAILED
            ]
            if stale:
                raise _KeyChanged(stale) from exc
            if any(code in _RETRYABLE for code in codes):
                raise _KeyChanged([]) from exc
            raise Cancelled(own) from exc


def run(build: Callable[[Write], T], attempts: int = ATTEMPTS) -> T:
    """Build and commit a guarded write; rebuild it under fresh keys while a key changed underneath.

    Raises `Cancelled` when one of the write's own conditions failed.
    """
    from store.crypto import cipher

    for attempt in range(attempts):
        write = Write()
        result = build(write)
        try:
            write.commit()
            return result
        except _KeyChanged as exc:
            for chash, key_id in exc.stale:
                cipher().forget_key(chash, key_id)
            if not exc.stale:  # a conflict with another transaction (a campaign's counter shard): jitter
                time.sleep(0.02 * (attempt + 1) * (1 + secrets.randbelow(100) / 100))
            if attempt == attempts - 1:
                raise RuntimeError("a guarded write kept meeting changed keys") from exc
    raise AssertionError("unreachable")
