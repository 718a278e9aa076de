"""The consent ledger: append-only events per contact pseudonym, ordered by the time waguard records them.

Item: `<chash>` / `EV#<recorded_at iso, µs>#<8 hex>` with clear `purpose`, `status`, `source`,
`recorded_at`, `meta_timestamp`?, `effective` (False only: evidence that changed nothing, with the reason
in `ignored`; see domain.consent) and the encrypted `data` (`{"evidence": ...}`). An event whose key was
shredded (erased) is treated as absent; one whose `data` does not open under a key that exists raises
(contacts.Unreadable): the gate decides on this history and must not read a failure as "no consent".
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import constants as c
from store import contacts, sealed, tables

PREFIX = "EV#"
_lock = threading.Lock()
_last: list[datetime] = [datetime.min.replace(tzinfo=UTC)]


def _recorded_at() -> datetime:
    """Now in UTC with µs, strictly increasing within this process (a stable order for fast writers)."""
    with _lock:
        at = datetime.now(UTC)
        if at <= _last[0]:
            at = _last[0] + timedelta(microseconds=1)
        _last[0] = at
        return at


def append(
    pk: str,
    purpose: str,
    status: str,
    source: str,
    evidence: str | None = None,
    meta_timestamp: int | None = None,
    ignored: str | None = None,
) -> dict[str, Any]:
    """Append one event under the pseudonym `pk`; returns the stored item (without ciphertext).
    `ignored` (a reason) keeps it as evidence that changed nothing: `effective` False."""
    at = _recorded_at()
    recorded_at = at.isoformat(timespec="microseconds")
    sk = f"{PREFIX}{recorded_at}#{secrets.token_hex(4)}"
    item: dict[str, Any] = {
        c.PK: pk,
        c.SK: sk,
        "purpose": purpose,
        "status": status,
        "source": source,
        "recorded_at": recorded_at,
    }
    if meta_timestamp is not None:
        item["meta_timestamp"] = int(meta_timestamp)
    if ignored is not None:
        item["effective"] = False
        item["ignored"] = ignored
    elif status == "granted":  # GSI by_grant: the candidates of a consented campaign audience
        item[c.ATTR_GRANTED_PURPOSE] = purpose
    tables.stamp(item, c.CLASS_CONSENT, at.timestamp())

    def build(write: Any) -> None:
        sealed_item = {
            **item,
            contacts.DATA: write.seal(pk, c.TABLE_CONSENT, pk, sk, contacts.DATA, {"evidence": evidence}),
        }
        write.put(c.TABLE_CONSENT, sealed_item, "attribute_not_exists(pk)")

    sealed.run(build)  # guarded: never stored under a key an erasure elsewhere has shredded
    return item


def history(hashes: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """Every live event of the identity set not erased, oldest first, with `evidence` decrypted
    (contacts.Unreadable when one does not open although its key exists)."""
    from boto3.dynamodb.conditions import Key

    events: list[dict[str, Any]] = []
    for pk in hashes:
        for item in tables.query_live(c.TABLE_CONSENT, Key(c.PK).eq(pk) & Key(c.SK).begins_with(PREFIX)):
            data = contacts.open_data(
                pk, item[c.SK], item.get(contacts.DATA), table=c.TABLE_CONSENT, strict=True
            )
            if data is None:  # the contact's key was shredded: erased, absent
                continue
            events.append({**item, "evidence": data.get("evidence")})
    events.sort(key=lambda e: e[c.SK])
    return events


def grants_page(
    purpose: str, cursor: dict[str, Any] | None, limit: int
) -> tuple[list[str], dict[str, Any] | None]:
    """One page of the pseudonyms that recorded an effective grant of `purpose` (GSI by_grant, never a
    Scan), and the cursor of the next page (None at the end). A later revocation is the gate's to see."""
    from boto3.dynamodb.conditions import Key

    args: dict[str, Any] = {
        "IndexName": c.GSI_BY_GRANT,
        "KeyConditionExpression": Key(c.ATTR_GRANTED_PURPOSE).eq(purpose),
        "Limit": limit,
    }
    if cursor:
        args["ExclusiveStartKey"] = cursor
    page = tables.table(c.TABLE_CONSENT).query(**args)
    pks = [str(i[c.PK]) for i in page.get("Items", []) if tables.is_live(i)]
    return pks, page.get("LastEvaluatedKey")
