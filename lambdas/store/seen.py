"""Delivery markers: a webhook item already processed is recognized after its records are gone.

Meta's signature carries no timestamp, Meta redelivers for up to 7 days and an operator may redrive a
dead-letter queue. Dedupe used to read the message or status item itself, which an erasure deletes (and
TTL expires): the same signed body posted again was new, and brought back the erased content and the
consent it carried. So each processed item also leaves a marker of its own, outside every contact's
partition, that an erasure does not sweep:

- `SEEN#<kind>#<digest>` / `SEEN` in the contacts table, with the `suppression` retention (an erased
  contact stays recognizable as long as it stays suppressed); `kind` is `in` (an inbound message), `st`
  (a status, per wamid and status) or `pf` (a `user_preferences` item);
- `digest` is a keyed hash under the deployment's contact key (the wamid pseudonym `wamid_h`, or an HMAC of
  the preference), never the wamid, number or text; the marker holds nothing else (no contact pseudonym);
- messages and statuses declare their marker in the same guarded write as the item itself
  (`declare`), so both exist or neither; a preference has no item of its own and claims its marker
  (`claim`: `new` until its consent event is recorded, then `done`, so a crash in between is redone).
"""

from __future__ import annotations

from typing import Any

from shared import constants as c
from store import tables

PREFIX = "SEEN#"
SORT_KEY = "SEEN"
MESSAGE = "in"
STATUS = "st"
PREFERENCE = "pf"
NEW = "new"
DONE = "done"
DUPLICATE = "duplicate"
_NOT_HELD = "attribute_not_exists(pk) OR #e < :now"


def key(kind: str, digest: str) -> dict[str, str]:
    return {c.PK: f"{PREFIX}{kind}#{digest}", c.SK: SORT_KEY}


def _expr() -> dict[str, Any]:
    return {
        "ExpressionAttributeNames": {"#e": c.TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {":now": tables.now()},
    }


def declare(write: Any, kind: str, digest: str) -> int:
    """Declare the marker's put in a guarded write (store.sealed), failing when it is held; its index."""
    item = tables.stamp({**key(kind, digest)}, c.CLASS_SUPPRESSION)
    return int(write.put(c.TABLE_CONTACTS, item, _NOT_HELD, **_expr()))


def held(kind: str, digest: str) -> bool:
    k = key(kind, digest)
    return tables.get_live(c.TABLE_CONTACTS, k[c.PK], k[c.SK]) is not None


def claim(kind: str, digest: str) -> str:
    """Take the marker of an item without one of its own: NEW (first time, or an unfinished earlier try:
    redo it) or DUPLICATE (done before)."""
    from botocore.exceptions import ClientError

    item = tables.stamp({**key(kind, digest), "state": NEW}, c.CLASS_SUPPRESSION)
    try:
        tables.table(c.TABLE_CONTACTS).put_item(Item=item, ConditionExpression=_NOT_HELD, **_expr())
        return NEW
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    existing = tables.get_live(c.TABLE_CONTACTS, item[c.PK], item[c.SK])
    return DUPLICATE if existing is None or existing.get("state") != NEW else NEW


def done(kind: str, digest: str) -> None:
    tables.table(c.TABLE_CONTACTS).update_item(
        Key=key(kind, digest),
        UpdateExpression="SET #s = :d",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":d": DONE},
    )
