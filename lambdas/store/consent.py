"""The consent ledger: append-only events per contact pseudonym, ordered by the time waguard records them.

Item: `<chash>` / `EV#<recorded_at iso, µs>#<8 hex>` with clear `purpose`, `status`, `source`,
`recorded_at`, `meta_timestamp`?, `effective` (False only: evidence that changed nothing, with the reason
in `ignored`; see domain.consent) and the encrypted `data` (`{"evidence": ...}`). An event whose key was
shredded (erased) is treated as absent; one whose `data` does not open under a key that exists raises
(contacts.Unreadable): the gate decides on this history and must not read a failure as "no consent".

`<chash>` / `SUMMARY` (constants.CONSENT_SUMMARY_SK): each purpose's latest effective event, `purposes`
`{purpose: {"status", "sk", "x": its expiry}}` and a `rev` token, no evidence; put in the same guarded write
as each effective event, conditional on the `rev` it replaced (the ledger is append-only in IAM: PutItem,
no UpdateItem), rebuilt from the ledger when missing (events written before it existed) and marked stale
(no `purposes`) when it kept changing; its TTL the latest expiry; erased with the partition. The gate reads
it in its batched read of the contact (`summarized`) instead of querying the ledger.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import constants as c
from store import contacts, sealed, tables

PREFIX = "EV#"
SUMMARY = c.CONSENT_SUMMARY_SK
SUMMARY_ATTEMPTS = 4
Summary = tuple[dict[str, Any], str | None, dict[str, Any]]  # a SUMMARY put: item, condition, expressions
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

    def build(write: Any, summary: Summary | None) -> None:
        sealed_item = {
            **item,
            contacts.DATA: write.seal(pk, c.TABLE_CONSENT, pk, sk, contacts.DATA, {"evidence": evidence}),
        }
        write.put(c.TABLE_CONSENT, sealed_item, "attribute_not_exists(pk)")
        if summary is not None:
            write.put(c.TABLE_CONSENT, summary[0], summary[1], **summary[2])

    # guarded: never stored under a key an erasure elsewhere has shredded; an effective event moves the
    # contact's SUMMARY in the same write
    entry = {"status": status, "sk": sk, "x": int(item[c.TTL_ATTRIBUTE])}
    for _ in range(SUMMARY_ATTEMPTS if ignored is None else 0):
        summary = _next_summary(pk, purpose, entry)
        try:
            sealed.run(lambda w, summary=summary: build(w, summary))  # type: ignore[misc]
            return item
        except sealed.Cancelled as exc:
            if exc.failed(0):
                raise
    # an ineffective event (the summary unchanged), or the summary kept changing: marked stale (the gate
    # reads the ledger until the next event rebuilds it)
    stale: Summary | None = None
    if ignored is None:
        stale = (
            {c.PK: pk, c.SK: SUMMARY, "rev": secrets.token_hex(8), c.TTL_ATTRIBUTE: entry["x"]},
            None,
            {},
        )
    sealed.run(lambda w: build(w, stale))
    return item


def _next_summary(pk: str, purpose: str, entry: dict[str, Any]) -> Summary:
    """The contact's SUMMARY with `entry` (status, sk, expiry of a new event of `purpose`) as the latest of
    its purpose unless a later one is there, as a conditional put on the one read (its `rev`): (item,
    condition, expression attributes). One that is missing, expired or stale is rebuilt from the ledger
    (events written before summaries existed)."""
    held = (
        tables.table(c.TABLE_CONSENT).get_item(Key={c.PK: pk, c.SK: SUMMARY}, ConsistentRead=True).get("Item")
    )
    usable = held is not None and tables.is_live(held) and isinstance(held.get("purposes"), dict)
    state: dict[str, Any] = dict(held["purposes"]) if usable and held else _from_ledger(pk)
    if purpose not in state or str(state[purpose]["sk"]) < str(entry["sk"]):
        state[purpose] = entry
    item: dict[str, Any] = {c.PK: pk, c.SK: SUMMARY, "purposes": state, "rev": secrets.token_hex(8)}
    item[c.TTL_ATTRIBUTE] = max(int(v["x"]) for v in state.values())
    if held is None:
        return item, "attribute_not_exists(pk)", {}
    names, values = {"ExpressionAttributeNames": {"#r": "rev"}}, {":r": held.get("rev", "")}
    return item, "#r = :r", {**names, "ExpressionAttributeValues": values}


def _from_ledger(pk: str) -> dict[str, Any]:
    """Each purpose's latest effective event of one pseudonym's ledger: {purpose: {status, sk, x}}."""
    state: dict[str, Any] = {}
    for event in history([pk]):
        if event.get("effective", True) is not False:
            state[str(event["purpose"])] = {
                "status": event["status"],
                "sk": event[c.SK],
                "x": int(event[c.TTL_ATTRIBUTE]),
            }
    return state


def summarized(identity: Any, purpose: str) -> bool | None:
    """Whether `purpose` is granted, as the SUMMARY items the gate's batched read of the identity set
    found them (store.contacts.read_set); None when they cannot say: not read, none stored (a contact
    whose events predate summaries, or none at all), stale, or a key this container does not hold (the
    ledger would not open either). The ledger then decides (`history`)."""
    from store.crypto import cipher

    seen = getattr(identity, "seen", None)
    if seen is None:
        return None
    now, latest = tables.now(), None
    for pk in identity.hashes:
        item = seen.consent.get(pk)
        if not tables.is_live(item) or not isinstance(item.get("purposes"), dict) or not cipher().holds(pk):
            return None
        got = item["purposes"].get(purpose)
        if got and int(got["x"]) > now and (latest is None or str(got["sk"]) > str(latest["sk"])):
            latest = got
    return latest is not None and latest["status"] == "granted"


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
