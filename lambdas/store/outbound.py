"""Outbound messages: the `OUT#<id>` items of the messages table and the send queue.

An outbound item lives in its contact's partition (`<chash>` / `OUT#<id>`) and is found by id through
GSI `by_msg_id` and by Meta's message id (pseudonymized, `wamid_h`) through GSI `by_wamid`. Personal
data (the recipient, the text or template, Meta's wamid) is field-encrypted under the contact's key;
the rest (`status`, `purpose`, `kind`, `template_name`, `error`) is in clear for operations.

A status only moves forward (constants.STATUS_RANK, `played` counts as `read`, `failed` is final): every
status write is a conditional update on `status_rank`, so concurrent writers and late webhooks cannot
move it back. Every write also requires the item to exist: an erased contact's message is never
re-created by a late status or a send finishing after the erasure.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import get_settings, require_env
from store import sealed, tables

OUT_PREFIX = "OUT#"
ATTR_DATA = "data"
ATTR_WAMID = "wamid"
LEASE_ATTR = "lease_until"


@dataclass(frozen=True)
class Outbound:
    """One outbound message as stored, personal data still encrypted."""

    item: dict[str, Any]

    @property
    def pk(self) -> str:
        return str(self.item[c.PK])

    @property
    def sk(self) -> str:
        return str(self.item[c.SK])

    @property
    def msg_id(self) -> str:
        return str(self.item["msg_id"])

    @property
    def status(self) -> str:
        return str(self.item.get("status", "queued"))

    @property
    def business_number(self) -> str | None:
        """The business number (phone_number_id) it goes out from, in clear (the business's own)."""
        number = self.item.get("business_number")
        return str(number) if number else None

    @property
    def attempts(self) -> int:
        return int(self.item.get("attempts", 0))

    @property
    def error(self) -> dict[str, Any] | None:
        err = self.item.get("error")
        return {"code": _plain(err.get("code")), "title": str(err.get("title", ""))} if err else None

    def content(self) -> dict[str, Any] | None:
        """The decrypted `data` (`{"to", KIND, ...}`); None once the key is shredded."""
        return self._open(ATTR_DATA)  # type: ignore[no-any-return]

    def wamid(self) -> str | None:
        return self._open(ATTR_WAMID)  # type: ignore[no-any-return]

    def _open(self, attr: str) -> Any:
        from store import crypto

        token = self.item.get(attr)
        if not token:
            return None
        return crypto.cipher().decrypt_or_none(self.pk, c.TABLE_MESSAGES, self.pk, self.sk, attr, token)


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: integers as int, the rest as given."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def new_id() -> str:
    """A message id: opaque, unguessable, URL-safe, no personal data."""
    return "msg_" + secrets.token_hex(12)


def is_message_id(value: str) -> bool:
    return len(value) == 28 and value.startswith("msg_") and all(ch in "0123456789abcdef" for ch in value[4:])


def _sk(msg_id: str) -> str:
    return OUT_PREFIX + msg_id


def _is_conditional_failure(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


# ---- create and read ---------------------------------------------------------------------------------
def create(
    chash: str,
    msg_id: str,
    purpose: str,
    content: dict[str, Any],
    idem_key: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
    also: Any = None,
) -> Outbound:
    """Write a new `queued` outbound message (`declare_new`; `also(write)`: more ops of the same write)."""
    made: list[dict[str, Any]] = []

    def build(write: Any) -> None:  # guarded: never sealed under a key an erasure has shredded
        made[:] = [declare_new(write, chash, msg_id, purpose, content, idem_key, extra)]
        if also is not None:
            also(write)

    sealed.run(build)
    return Outbound(made[0])


def declare_new(
    write: Any,
    chash: str,
    msg_id: str,
    purpose: str,
    content: dict[str, Any],
    idem_key: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Declare a new `queued` message in a guarded write; the item. `extra`: clear attributes without personal
    data (a campaign message's `campaign`, `campaign_recipient`); `content`: `{"to", "kind"?, KIND, ...}`
    (domain.references.content_of); `kind` is kept in clear (an operational fact, no personal data)."""
    at = tables.now()
    sk = _sk(msg_id)
    kind = str(content.get("kind") or ("template" if "template" in content else "text"))
    item: dict[str, Any] = {c.PK: chash, c.SK: sk, "direction": "out", "msg_id": msg_id, "purpose": purpose}
    item.update(kind=kind, status="queued", status_rank=c.STATUS_RANK["queued"], attempts=0, created_at=at)
    item.update(business_number=str(content.get("from") or get_settings().phone_number_id), updated_at=at)
    item[c.ATTR_STORED_US] = tables.now_us()
    if kind == "template":
        item["template_name"] = str(content["template"]["name"])
    item.update(
        {**(extra or {}), **({"idem_pk": idem_key["pk"], "idem_sk": idem_key["sk"]} if idem_key else {})}
    )
    tables.stamp(item, c.CLASS_MESSAGES, at)
    item[ATTR_DATA] = write.seal(chash, c.TABLE_MESSAGES, chash, sk, ATTR_DATA, content)
    write.put(c.TABLE_MESSAGES, item, "attribute_not_exists(pk)")
    return item


def delete(chash: str, msg_id: str) -> None:
    tables.table(c.TABLE_MESSAGES).delete_item(Key={c.PK: chash, c.SK: _sk(msg_id)})


def get(chash: str, msg_id: str) -> Outbound | None:
    item = tables.get_live(c.TABLE_MESSAGES, chash, _sk(msg_id))
    return Outbound(item) if item else None


def get_by_id(msg_id: str, confirm: bool = True) -> Outbound | None:
    """The live outbound message with this id, read consistently from the table after the GSI lookup
    (unless not `confirm`: the index's copy, whose status may lag; the sender's conditional writes are
    what decide, see domain/delivery.py)."""
    from boto3.dynamodb.conditions import Attr

    if not is_message_id(msg_id):
        return None
    item = tables.find_message(msg_id, Attr(c.SK).eq(_sk(msg_id)), confirm)
    return Outbound(item) if item else None


# ---- the send attempt ----------------------------------------------------------------------------------
SPENT = "spent"  # `claim` with a token: the budget of this second is spent (nothing was written)


def _claim_args(out: Outbound, lease_seconds: int, at: int) -> dict[str, Any]:
    return {
        "Key": {c.PK: out.pk, c.SK: out.sk},
        "UpdateExpression": "SET #lease = :until, updated_at = :now ADD attempts :one",
        "ConditionExpression": (
            "attribute_exists(pk) AND #status = :queued AND expires_at > :now "
            "AND (attribute_not_exists(#lease) OR #lease < :now)"
        ),
        "ExpressionAttributeNames": {"#lease": LEASE_ATTR, "#status": "status"},
        "ExpressionAttributeValues": {
            ":until": at + lease_seconds,
            ":now": at,
            ":one": 1,
            ":queued": "queued",
        },
    }


def claim(
    out: Outbound, lease_seconds: int, now: int | None = None, token: dict[str, Any] | None = None
) -> Outbound | str | None:
    """Take the send lease of a queued message and count one attempt; None when it is not ours to send.

    Two deliveries of the same queue message (SQS is at-least-once) or a re-delivery while an earlier
    attempt is still in flight never both call the Graph API: only the holder of an unexpired lease does.
    `token`: the rate budget's update (store.ratelimit.take_op), taken in the same transaction, or a
    condition check (store.campaigns.active_check): `SPENT` when it refused (then nothing was written);
    the claimed item is then the caller's copy with the lease and attempt applied (a transaction returns
    no values).
    """
    at = tables.now() if now is None else now
    args = _claim_args(out, lease_seconds, at)
    if token is not None:
        return _claim_with_token(out, args, token, at + lease_seconds, at)
    try:
        got = tables.table(c.TABLE_MESSAGES).update_item(**args, ReturnValues="ALL_NEW")
    except Exception as exc:
        if _is_conditional_failure(exc):
            return None
        raise
    return Outbound(got["Attributes"])


def _claim_with_token(
    out: Outbound, args: dict[str, Any], token: dict[str, Any], until: int, at: int
) -> Outbound | str | None:
    from shared.settings import table_name

    client = tables.client()
    update = {"TableName": table_name(c.TABLE_MESSAGES), **args}
    kind = "Update" if "UpdateExpression" in token else "ConditionCheck"  # a token, or a check that holds
    try:
        client.transact_write_items(TransactItems=[{"Update": update}, {kind: token}])
    except client.exceptions.TransactionCanceledException as exc:
        codes = [str(r.get("Code")) for r in exc.response.get("CancellationReasons") or []]
        if codes[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in codes:
            return None  # not ours (or another attempt is at it right now)
        if codes[1:2] == ["ConditionalCheckFailed"]:
            return SPENT
        raise
    return Outbound({**out.item, LEASE_ATTR: until, "updated_at": at, "attempts": out.attempts + 1})


def release(out: Outbound, error: dict[str, Any] | None = None) -> None:
    """Give the lease back after a retryable failure, remembering the error for the last attempt."""
    names = {"#lease": LEASE_ATTR}
    values: dict[str, Any] = {":now": tables.now()}
    update = "SET updated_at = :now"
    if error:
        update += ", last_error = :err"
        values[":err"] = _error_attr(error)
    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            Key={c.PK: out.pk, c.SK: out.sk},
            UpdateExpression=update + " REMOVE #lease",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except Exception as exc:
        if not _is_conditional_failure(exc):
            raise


def mark_sent(out: Outbound, wamid: str, wamid_h: str, followed: list[bool] | None = None) -> bool:
    """Record Meta's wamid (encrypted) and its pseudonym, and move the status to `sent` (forward only); a
    campaign message's recipient moves to `sent` in the same write (`followed[0]` says whether it did).

    False when the item is gone (the contact was erased while the message was in flight).
    """
    from store import campaigns

    at = tables.now()
    want, span = [followed is not None], list[int]()  # span: the recipient's ops in the write, when declared
    key = {c.PK: out.pk, c.SK: out.sk}

    def seal(write: Any) -> str:
        return str(write.seal(out.pk, c.TABLE_MESSAGES, out.pk, out.sk, ATTR_WAMID, wamid))

    def to_sent(write: Any) -> None:
        write.update(
            c.TABLE_MESSAGES,
            key,
            "SET #wamid = :w, wamid_h = :h, #status = :sent, status_rank = :rank, updated_at = :now, "
            "sent_at = :now REMOVE #lease",
            {"#lease": LEASE_ATTR, "#status": "status", "#wamid": ATTR_WAMID},
            {":w": seal(write), ":h": wamid_h, ":sent": "sent", ":rank": c.STATUS_RANK["sent"], ":now": at},
            "attribute_exists(pk) AND status_rank < :rank",
        )
        span[:] = [1, 3] if want[0] and campaigns.declare_follow(write, out.item, "sent") else []

    def keep_status(write: Any) -> None:
        write.update(
            c.TABLE_MESSAGES,
            key,
            "SET #wamid = :w, wamid_h = :h, updated_at = :now REMOVE #lease",
            {"#lease": LEASE_ATTR, "#wamid": ATTR_WAMID},
            {":w": seal(write), ":h": wamid_h, ":now": at},
            "attribute_exists(pk)",
        )

    for _ in range(2):
        try:
            sealed.run(to_sent)
            if followed is not None:
                followed[:] = [bool(span)]
            return True
        except sealed.Cancelled as exc:
            if not (span and exc.failed(*span)):
                break
            want[0] = False  # the recipient is not pending: written again without it (`move` decides)
    # Already past `sent` (a status webhook won the race) or gone: keep the status, record the wamid.
    try:
        sealed.run(keep_status)
        return True
    except sealed.Cancelled:
        return False


def _error_attr(error: dict[str, Any]) -> dict[str, Any]:
    code = error.get("code")
    return {
        "code": code if isinstance(code, int | str) else str(code),
        "title": str(error.get("title", ""))[:256],
    }


def mark_failed(out: Outbound, error: dict[str, Any], unsent_only: bool = False) -> bool:
    """Move the message to `failed` (final) with Meta's `{code, title}`. False when it is gone (or, with
    `unsent_only`, for a caller without the send lease, when another attempt has sent it meanwhile)."""
    below = c.STATUS_RANK["sent"] if unsent_only else None
    return _advance(out.pk, out.sk, "failed", error=error, release_lease=True, below=below)


def _advance_args(
    pk: str,
    sk: str,
    status: str,
    timestamp: int | None = None,
    error: dict[str, Any] | None = None,
    release_lease: bool = False,
    below: int | None = None,
) -> dict[str, Any]:
    """The conditional update that moves one outbound message to `status` when its stored rank is lower
    (and lower than `below`)."""
    rank = c.STATUS_RANK[status]
    at = tables.now()
    names = {"#status": "status"}
    values: dict[str, Any] = {":status": status, ":rank": rank, ":now": at}
    condition = "attribute_exists(pk) AND status_rank < :rank AND expires_at > :now"
    if below is not None:
        condition += " AND status_rank < :below"
        values[":below"] = below
    update = "SET #status = :status, status_rank = :rank, updated_at = :now"
    if timestamp is not None:
        update += ", status_timestamp = :ts"
        values[":ts"] = int(timestamp)
    if error:
        update += ", #error = :err"
        names["#error"] = "error"
        values[":err"] = _error_attr(error)
    if release_lease:
        update += " REMOVE #lease"
        names["#lease"] = LEASE_ATTR
    return {
        "Key": {c.PK: pk, c.SK: sk},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _advance(
    pk: str,
    sk: str,
    status: str,
    timestamp: int | None = None,
    error: dict[str, Any] | None = None,
    release_lease: bool = False,
    below: int | None = None,
) -> bool:
    """Move one outbound message to `status` when its stored rank is lower (and lower than `below`)."""
    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            **_advance_args(pk, sk, status, timestamp, error, release_lease, below)
        )
        return True
    except Exception as exc:
        if _is_conditional_failure(exc):
            return False
        raise


def _status_args(
    status: str, timestamp: int | float | str, error: dict | None
) -> tuple[int | None, Any, Any]:
    """(timestamp, error, below) of a status webhook's update (`failed` only before `delivered`)."""
    try:
        ts: int | None = int(float(timestamp))
    except (TypeError, ValueError):
        ts = None
    failed = status == "failed"
    return ts, error if failed else None, c.STATUS_RANK["delivered"] if failed else None


def declare_status(
    write: Any, item: dict[str, Any], status: str, timestamp: int | float | str, error: dict | None = None
) -> int | None:
    """Declare, in a guarded write (store.sealed), the forward-only update `apply_status` would make to
    this outbound message (its index), or None when its stored rank says it would change nothing. A
    status webhook's own write carries it, so the status costs no call of its own. A campaign message's
    recipient follows in the same write (store.campaigns.declare_follow: two more ops after this one);
    when any of these ops' conditions fails the caller writes again without them and `apply_status`
    decides (and domain.statuses moves the recipient)."""
    status = c.STATUS_ALIASES.get(status, status)
    if status not in c.STATUS_RANK or status == "queued":
        return None
    if int(item.get("status_rank", -1)) >= c.STATUS_RANK[status]:
        return None
    from store import campaigns

    ts, err, below = _status_args(status, timestamp, error)
    args = _advance_args(str(item[c.PK]), str(item[c.SK]), status, ts, err, below=below)
    index = write.update(
        c.TABLE_MESSAGES,
        args["Key"],
        args["UpdateExpression"],
        args["ExpressionAttributeNames"],
        args["ExpressionAttributeValues"],
        args["ConditionExpression"],
    )
    campaigns.declare_follow(write, item, status, err)  # a campaign message's recipient follows
    return int(index)


@dataclass(frozen=True)
class Advanced:
    """What a status webhook did to one outbound message: `changed` when it moved to the status, and
    `already` when the message was at that status before (Meta's retry or ours)."""

    pk: str
    msg_id: str
    status: str
    changed: bool
    already: bool
    campaign: str | None = None  # a campaign message's campaign and recipient (domain/campaigns.py)
    recipient: str | None = None
    followed: bool = False  # the status's own write moved the recipient too (declare_status)


def with_wamid(wamid_h: str) -> list[dict[str, Any]]:
    """The live outbound messages with this wamid pseudonym (GSI `by_wamid`; one, or none)."""
    from boto3.dynamodb.conditions import Attr, Key

    return list(
        tables.query_live(
            c.TABLE_MESSAGES,
            Key("wamid_h").eq(wamid_h),
            index=c.GSI_BY_WAMID,
            FilterExpression=Attr(c.SK).begins_with(OUT_PREFIX),
        )
    )


def apply_status(
    wamid_h: str,
    status: str,
    timestamp: int | float | str,
    error: dict | None = None,
    found: list[dict[str, Any]] | None = None,
    applied: set[tuple[str, str]] | None = None,
) -> list[Advanced]:
    """Apply a status webhook to the outbound messages with this wamid pseudonym, forward only.

    `status` is Meta's (`sent`, `delivered`, `read`, `played`, `failed`); `played` counts as `read`;
    a status that is not ahead of the stored one changes nothing; `failed` is final and records Meta's
    error `{code, title}`, but only before `delivered`: a message that reached the phone cannot fail, so a
    `failed` after `delivered` or `read` is ignored (statuses never move backwards). Empty when no
    outbound message has this wamid (an inbound message's wamid, an erased or expired message).
    `found`: `with_wamid(wamid_h)` when the caller has just read it; `applied`: the (pk, sk) of those
    the status webhook's own write moved already (`declare_status`).
    """
    status = c.STATUS_ALIASES.get(status, status)
    if found is None:
        found = with_wamid(wamid_h)
    out: list[Advanced] = []
    movable = status in c.STATUS_RANK and status != "queued"
    ts, err, below = _status_args(status, timestamp, error)
    for item in found:
        stored = int(item.get("status_rank", -1))  # from the index: never ahead of the table
        key = (str(item[c.PK]), str(item[c.SK]))
        changed = movable and (
            key in (applied or ())
            or (
                stored < c.STATUS_RANK[status]
                and _advance(*key, status, timestamp=ts, error=err, below=below)
            )
        )
        already = str(item.get("status")) == status
        if changed:  # the caller's copy follows (a later status of the same delivery reads it)
            item.update({"status": status, "status_rank": c.STATUS_RANK[status]})
        out.append(
            Advanced(
                str(item[c.PK]),
                str(item.get("msg_id", "")),
                status,
                changed,
                already,
                item.get("campaign"),
                item.get("campaign_recipient"),
                key in (applied or ()),
            )
        )
    return out


def advance_status(
    wamid_h: str, status: str, timestamp: int | float | str, error: dict | None = None
) -> bool:
    """`apply_status`; True when an outbound message has this wamid (whether or not its status moved)."""
    return bool(apply_status(wamid_h, status, timestamp, error))


# ---- the send queue ------------------------------------------------------------------------------------
@cache
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def reset() -> None:
    """Forget the cached SQS client (tests switch endpoints)."""
    _sqs.cache_clear()


def queue_url(source_arn: str | None = None) -> str:
    """The send queue's URL: `WG_SEND_QUEUE_URL`, or (for its consumer, which is given no URL) the URL of
    the queue the record came from (`arn:aws:sqs:<region>:<account>:<name>`)."""
    import os

    url = os.environ.get(c.ENV_SEND_QUEUE_URL, "")
    if url or not source_arn:
        return url or require_env(c.ENV_SEND_QUEUE_URL)
    parts = source_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    _, partition, _, region, account, name = parts
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


def enqueue(
    msg_id: str, delay_seconds: int = 0, source_arn: str | None = None, body: dict[str, Any] | None = None
) -> None:
    """Queue one message for the sender: its id only (no personal data); `body`: `{"campaign": ID}`."""
    args: dict[str, Any] = {
        "QueueUrl": queue_url(source_arn),
        "MessageBody": json.dumps(body or {"message_id": msg_id}),
    }
    if delay_seconds:
        args["DelaySeconds"] = max(0, min(900, int(delay_seconds)))
    _sqs().send_message(**args)


def enqueue_many(msg_ids: list[str], source_arn: str | None = None, to: dict[str, str] | None = None) -> None:
    """Queue messages for the sender, ten to a SendMessageBatch (bodies as `enqueue`'s, with `contact`: the
    recipient's reference `ct_…` given in `to`, read with the message); raises when any is not accepted
    (the caller's retry queues them again: the sender sends each once)."""
    url, to = (queue_url(source_arn) if msg_ids else ""), to or {}
    for at in range(0, len(msg_ids), 10):
        bodies = [{"message_id": m, **({"contact": to[m]} if m in to else {})} for m in msg_ids[at : at + 10]]
        entries = [{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(bodies)]
        out = _sqs().send_message_batch(QueueUrl=url, Entries=entries)
        if out.get("Failed"):
            raise RuntimeError(f"{len(out['Failed'])} of {len(entries)} queue messages refused")


def defer(receipt_handle: str, seconds: int, source_arn: str | None = None) -> None:
    """Make one received send-queue message visible again after `seconds` (SQS allows 0..43200)."""
    _sqs().change_message_visibility(
        QueueUrl=queue_url(source_arn),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(43200, int(seconds))),
    )
