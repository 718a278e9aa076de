"""Campaigns: items of the messages table under the campaign's own partition (docs/decisions.md).

- `CAMPAIGN#<id>` / `META`: name, status, template, from, audience kind, times, the preparation cursor.
- `CAMPAIGN#<id>` / `E#<000000>`: one entry of an explicit audience, the contact by reference only.
- `CAMPAIGN#<id>` / `R#<person>`: one recipient (`person`: the reference of the smallest pseudonym of the
  contact's identity set, so a number, a user id and a reference of one person are one item), its
  bucket `status`, `skipped_by`, `message_id`, `error`. A duplicate entry is `R#<person>~<entry>`.
- `CAMPAIGNS` / `<created_at>#<id>`: the listing, newest first; `CAMPAIGNS_DUE` / `<send_at>#<id>`: the
  scheduled ones the schedule starts (removed once started).
- `<pseudonym>` / `CP#<id>#<sk>` (in the contact's own partition): a pointer to a campaign item that names
  the contact (an entry `E#…`, a recipient `R#…`), so that an erasure, which sweeps the contact's
  partitions, finds them by key: an entry is blanked (`erased`), a recipient line becomes an anonymous
  `R#~erased~<random>` in the bucket the contract gives (`erase_lines`).

An entry's own `components` (personalized parameters) are sealed under the contact's key (store.sealed),
so crypto-shredding covers them; `entries` opens them (an entry whose key is shredded reads as erased).

No phone number or user id is stored here; every item carries the TTL of the `messages` class counted
from the campaign's last possible send (`send_at`), so the campaign lives as long as its messages.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

from shared import constants as c
from shared import ids
from shared.settings import table_name
from store import tables

PK_PREFIX = "CAMPAIGN#"
META = "META"
ENTRY = "E#"
RECIPIENT = "R#"
LISTING = "CAMPAIGNS"
DUE = "CAMPAIGNS_DUE"
POINTER = "CP#"
ERASED = "~erased~"  # the key of an anonymous recipient line (R#~erased~<random>) left by an erasure
COMPONENTS = "components"
COUNTER = "N#"  # `N#<shard>`: the campaign's counters, one shard per hash of the recipient's key
COUNTER_SHARDS = 16  # spreads concurrent transactions (a transaction conflicts on an item another holds)
SKIP_PREFIX = "skipped_by_"
TRANSACT_ATTEMPTS = 6
SEALED_PER_WRITE = 50  # entries with components per guarded write (each with its key guard: 100 ops)
# A recipient's bucket and its rank: a bucket only moves to a higher rank (cancel and skip only from
# pending; a message's statuses forward only, as the outbound item's).
RANK: dict[str, int] = {
    "pending": 0,
    "cancelled": 1,
    "skipped": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "failed": 5,
}
PREVIOUS = {"sent": "pending", "delivered": "sent", "read": "delivered"}  # a recipient's usual bucket before
BUCKETS = ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")
SKIP_REASONS = ("no_consent", "erased", "restricted", "invalid_contact", "duplicate", "frequency_cap")


def pk(cid: str) -> str:
    return PK_PREFIX + cid


def _conditional(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _set_extra(extra: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> list[str]:
    """`SET` clauses for attributes given by name (placeholders added to `names` and `values`)."""
    sets = []
    for i, (name, value) in enumerate(extra.items()):
        names[f"#x{i}"] = name
        values[f":x{i}"] = value
        sets.append(f"#x{i} = :x{i}")
    return sets


def _update_if(
    cid: str, sk: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
) -> bool:
    """One conditional update of a campaign item; False when the condition did not hold."""
    try:
        tables.table(c.TABLE_MESSAGES).update_item(
            Key={c.PK: pk(cid), c.SK: sk},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return True
    except Exception as exc:
        if _conditional(exc):
            return False
        raise


def _ttl_at(meta: dict[str, Any]) -> int:
    return int(meta.get("send_epoch") or meta.get("created_epoch") or tables.now())


def pointer(chash: str, cid: str, sk: str, at: int) -> dict[str, Any]:
    """The item in the contact's partition that names a campaign item about the contact."""
    item = {c.PK: chash, c.SK: f"{POINTER}{cid}#{sk}", "camp_pk": pk(cid), "camp_sk": sk}
    return tables.stamp(item, c.CLASS_MESSAGES, at)


def _chash(ref: Any) -> str | None:
    return ids.pseudonym_of(str(ref)) if ref else None


def _seal_entries(cid: str, sealed_entries: list[tuple[str, dict[str, Any]]], at: int) -> None:
    """Entries with their own components, each sealed under its contact's key (guarded writes)."""
    from store import sealed

    def build(write: sealed.Write, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        for sk, entry in chunk:
            item = {c.PK: pk(cid), c.SK: sk, **entry}
            chash = str(_chash(entry["to_ref"]))
            item[COMPONENTS] = write.seal(chash, c.TABLE_MESSAGES, pk(cid), sk, COMPONENTS, entry[COMPONENTS])
            write.put(c.TABLE_MESSAGES, tables.stamp(item, c.CLASS_MESSAGES, at))

    for start in range(0, len(sealed_entries), SEALED_PER_WRITE):
        chunk = sealed_entries[start : start + SEALED_PER_WRITE]
        sealed.run(lambda w, chunk=chunk: build(w, chunk))  # type: ignore[misc]


def create(meta: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Write the campaign, its entries (and their pointers) and its listing items (entries first: META
    makes it exist)."""
    at = _ttl_at(meta)
    cid = str(meta["id"])
    to_seal: list[tuple[str, dict[str, Any]]] = []
    with tables.table(c.TABLE_MESSAGES).batch_writer(overwrite_by_pkeys=[c.PK, c.SK]) as batch:
        for index, entry in enumerate(entries):
            sk = f"{ENTRY}{index:06d}"
            chash = _chash(entry.get("to_ref"))
            if chash:
                batch.put_item(Item=pointer(chash, cid, sk, at))
            if chash and entry.get(COMPONENTS) is not None:
                to_seal.append((sk, entry))
                continue
            item = {c.PK: pk(cid), c.SK: sk, **{k: v for k, v in entry.items() if k != COMPONENTS}}
            batch.put_item(Item=tables.stamp(item, c.CLASS_MESSAGES, at))
        listing = {c.PK: LISTING, c.SK: f"{meta['created_at']}#{cid}", "id": cid}
        batch.put_item(Item=tables.stamp(listing, c.CLASS_MESSAGES, at))
        if meta.get("send_epoch") and meta["status"] == "scheduled":
            due = {c.PK: DUE, c.SK: f"{int(meta['send_epoch']):012d}#{cid}", "id": cid}
            batch.put_item(Item=tables.stamp(due, c.CLASS_MESSAGES, at))
    _seal_entries(cid, to_seal, at)
    item = {c.PK: pk(cid), c.SK: META, **meta}
    tables.table(c.TABLE_MESSAGES).put_item(Item=tables.stamp(item, c.CLASS_MESSAGES, at))


def get(cid: str) -> dict[str, Any] | None:
    return tables.get_live(c.TABLE_MESSAGES, pk(cid), META)


def listing(limit: int = 100) -> list[str]:
    from boto3.dynamodb.conditions import Key

    items = tables.table(c.TABLE_MESSAGES).query(
        KeyConditionExpression=Key(c.PK).eq(LISTING), ScanIndexForward=False, Limit=limit
    )
    return [str(i["id"]) for i in items.get("Items", []) if tables.is_live(i)]


def due(now: int) -> list[str]:
    """Scheduled campaigns whose `send_at` has come."""
    from boto3.dynamodb.conditions import Key

    cond = Key(c.PK).eq(DUE) & Key(c.SK).lt(f"{now + 1:012d}")
    return [str(i["id"]) for i in tables.query_live(c.TABLE_MESSAGES, cond)]


def forget_due(meta: dict[str, Any]) -> None:
    cid = str(meta["id"])
    key = {c.PK: DUE, c.SK: f"{int(meta.get('send_epoch') or 0):012d}#{cid}"}
    tables.table(c.TABLE_MESSAGES).delete_item(Key=key)


def set_status(cid: str, status: str, allowed_from: tuple[str, ...], **extra: Any) -> bool:
    """Move the campaign to `status` when it is in one of `allowed_from`; False otherwise."""
    names = {"#s": "status"}
    values: dict[str, Any] = {":s": status}
    sets = ["#s = :s", *_set_extra(extra, names, values)]
    froms = []
    for i, state in enumerate(allowed_from):
        values[f":f{i}"] = state
        froms.append(f":f{i}")
    return _update_if(
        cid,
        META,
        "SET " + ", ".join(sets),
        f"attribute_exists(pk) AND #s IN ({', '.join(froms)})",
        names,
        values,
    )


def active_check(cid: str) -> dict[str, Any]:
    """A TransactWriteItems ConditionCheck that the campaign exists and is neither paused nor cancelled
    (what `campaign_steps.held` holds back): the sender's lease of a campaign message makes it, so a pause
    or cancel is seen before any send."""
    return {
        "TableName": table_name(c.TABLE_MESSAGES),
        "Key": {c.PK: pk(cid), c.SK: META},
        "ConditionExpression": "attribute_exists(pk) AND NOT (#s IN (:p, :c))",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":p": "paused", ":c": "cancelled"},
    }


def advance_cursor(cid: str, old: str | None, new: str | None, prepared: bool) -> bool:
    """Move the preparation cursor from `old` to `new` (one step at a time: a redelivered step that lost
    the race stops there)."""
    values: dict[str, Any] = {":new": new or "", ":done": prepared}
    names = {"#c": "prep_cursor", "#d": "prepared"}
    condition = "attribute_exists(pk) AND "
    if old:
        condition += "#c = :old"
        values[":old"] = old
    else:
        condition += "(attribute_not_exists(#c) OR #c = :empty)"
        values[":empty"] = ""
    return _update_if(cid, META, "SET #c = :new, #d = :done", condition, names, values)


def encode_cursor(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if value is not None else ""


def decode_cursor(value: str | None) -> Any:
    return json.loads(value) if value else None


def entries(cid: str, start: int, limit: int) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    cond = Key(c.PK).eq(pk(cid)) & Key(c.SK).between(f"{ENTRY}{start:06d}", f"{ENTRY}999999")
    page = tables.table(c.TABLE_MESSAGES).query(KeyConditionExpression=cond, Limit=limit, ConsistentRead=True)
    return [_opened(i) for i in page.get("Items", []) if tables.is_live(i)]


def _opened(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with its components opened; `erased` when its contact's key is shredded."""
    from store.crypto import cipher

    token = entry.get(COMPONENTS)
    if not isinstance(token, str) or entry.get("erased"):
        return entry
    chash = str(_chash(entry.get("to_ref")))
    opened = cipher().decrypt_or_none(chash, c.TABLE_MESSAGES, entry[c.PK], entry[c.SK], COMPONENTS, token)
    if opened is None:
        return {c.PK: entry[c.PK], c.SK: entry[c.SK], "erased": True}
    return {**entry, COMPONENTS: opened}


def _recipient_ops(meta: dict[str, Any], key: str, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The writes of a new recipient: its pointer (a line is never written that an erasure could not
    find), the line (a conditional put) and its count."""
    cid = str(meta["id"])
    record = {c.PK: pk(cid), c.SK: RECIPIENT + key, **item}
    tables.stamp(record, c.CLASS_MESSAGES, _ttl_at(meta))
    chash = _chash(item.get("contact"))
    ops: list[dict[str, Any]] = []
    if chash:
        ops.append({"Put": {"Item": pointer(chash, cid, RECIPIENT + key, _ttl_at(meta))}})
    status = str(item.get("status", "pending"))
    ops += [
        {"Put": {"Item": record, "ConditionExpression": "attribute_not_exists(pk)"}},
        _count(cid, key, {"recipients": 1, **_bucket(status, item.get("skipped_by"), 1)}),
    ]
    return ops


def add_recipient(meta: dict[str, Any], key: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """Write a recipient once, with its pointer, counted in the same transaction; None when it was new,
    else the item already stored under `key`."""
    if _transact(_recipient_ops(meta, key, item)):
        return None
    return recipient(str(meta["id"]), key) or {c.PK: pk(str(meta["id"])), c.SK: RECIPIENT + key, **item}


def declare_recipient(write: Any, meta: dict[str, Any], key: str, item: dict[str, Any]) -> int:
    """`add_recipient`'s writes declared in a guarded write (store.sealed; a campaign message created with
    its recipient in one call); the index of the line's conditional put."""
    line = -1
    for op in _recipient_ops(meta, key, item):
        if "Put" in op:
            at = write.put(c.TABLE_MESSAGES, op["Put"]["Item"], op["Put"].get("ConditionExpression"))
            line = at if op["Put"].get("ConditionExpression") else line
        else:
            _declare_update(write, op)
    return line


def _declare_update(write: Any, op: dict[str, Any]) -> None:
    """A transaction's `Update` op (as `_recipient_ops` and `_count` build it) in a guarded write."""
    u = op["Update"]
    write.update(
        c.TABLE_MESSAGES,
        u["Key"],
        u["UpdateExpression"],
        u["ExpressionAttributeNames"],
        u["ExpressionAttributeValues"],
    )


def declare_recipients(write: Any, meta: dict[str, Any], lines: list[tuple[str, dict[str, Any]]]) -> None:
    """`declare_recipient` of many new recipients (a preparation page's, each key once) in one guarded
    write: each one's pointer and line (its conditional put), their counts added up per counter shard (one
    update of each shard touched: a transaction names an item once)."""
    shards: dict[str, tuple[str, dict[str, int]]] = {}
    for key, item in lines:
        for op in _recipient_ops(meta, key, item):
            if "Put" in op:
                write.put(c.TABLE_MESSAGES, op["Put"]["Item"], op["Put"].get("ConditionExpression"))
        _, deltas = shards.setdefault(_shard(key), (key, {}))
        for name, delta in {
            "recipients": 1,
            **_bucket(str(item["status"]), item.get("skipped_by"), 1),
        }.items():
            deltas[name] = deltas.get(name, 0) + delta
    for key, deltas in shards.values():
        _declare_update(write, _count(str(meta["id"]), key, deltas))


def recipient(cid: str, key: str) -> dict[str, Any] | None:
    return tables.get_live(c.TABLE_MESSAGES, pk(cid), RECIPIENT + key)


def _bucket(status: str, skipped_by: Any, sign: int) -> dict[str, int]:
    """The counter deltas of one recipient entering (`sign` 1) or leaving (-1) bucket `status`."""
    out = {status: sign}
    if status == "skipped" and skipped_by in SKIP_REASONS:
        out[SKIP_PREFIX + str(skipped_by)] = sign
    return out


def _shard(key: str) -> str:
    return f"{COUNTER}{int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % COUNTER_SHARDS:02d}"


def _count(cid: str, key: str, deltas: dict[str, int]) -> dict[str, Any]:
    """The transaction's update of the counter shard of recipient `key`: an atomic ADD per bucket."""
    names: dict[str, str] = {"#t": c.TTL_ATTRIBUTE}
    values: dict[str, Any] = {":t": tables.expires_at(c.CLASS_MESSAGES)}
    adds = []
    for i, (name, delta) in enumerate(sorted(deltas.items())):
        names[f"#c{i}"] = name
        values[f":c{i}"] = delta
        adds.append(f"#c{i} :c{i}")
    return {
        "Update": {
            "Key": {c.PK: pk(cid), c.SK: _shard(key)},
            "UpdateExpression": "ADD " + ", ".join(adds) + " SET #t = if_not_exists(#t, :t)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _transact(ops: list[dict[str, Any]]) -> bool:
    """One transaction over the messages table; False when one of its conditions failed (a conflict on a
    counter shard is retried)."""
    name = table_name(c.TABLE_MESSAGES)
    items = [{kind: {"TableName": name, **op} for kind, op in entry.items()} for entry in ops]
    client = tables.client()
    for attempt in range(TRANSACT_ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=items)
            return True
        except client.exceptions.TransactionCanceledException as exc:
            codes = [str(r.get("Code")) for r in exc.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in codes:
                return False
            if attempt == TRANSACT_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1) * (1 + secrets.randbelow(100) / 100))  # a conflict on a shard
    return False


def move(cid: str, key: str, status: str, only_from: str | None = None, **extra: Any) -> bool:
    """Move a recipient to the bucket `status` (a higher rank only; `only_from`: from that bucket only),
    its counters moved in the same transaction. The bucket it leaves is `only_from`, else the usual one
    before `status` (a message's statuses come in order), else read."""
    guess = only_from or PREVIOUS.get(status)
    for _ in range(3):
        current, skipped_by = guess, None
        if current is None:
            line = tables.get_live(c.TABLE_MESSAGES, pk(cid), RECIPIENT + key)
            if line is None:
                return False
            current, skipped_by = str(line.get("status")), line.get("skipped_by")
        if RANK.get(current, 99) >= RANK[status]:
            return False
        if _move_from(cid, key, current, skipped_by, status, extra):
            return True
        if only_from:
            return False
        guess = None  # not where it usually is: read it
    return False


def _move_from(cid: str, key: str, current: str, skipped_by: Any, status: str, extra: dict[str, Any]) -> bool:
    return _transact([{"Update": op} for op in _move_ops(cid, key, current, skipped_by, status, extra)])


def _move_ops(
    cid: str, key: str, current: str, skipped_by: Any, status: str, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    """The two updates of a recipient's move from bucket `current` to `status`: its line (conditional on
    its bucket) and its counter shard."""
    names = {"#s": "status"}
    values: dict[str, Any] = {":s": status, ":r": RANK[status], ":from": current}
    sets = ["#s = :s", "rank_n = :r", *_set_extra(extra, names, values)]
    deltas = {**_bucket(current, skipped_by, -1), **_bucket(status, extra.get("skipped_by"), 1)}
    update = {
        "Key": {c.PK: pk(cid), c.SK: RECIPIENT + key},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(pk) AND rank_n < :r AND #s = :from",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    return [update, _count(cid, key, deltas)["Update"]]


def declare_follow(
    write: Any, message: dict[str, Any], status: str, error: dict[str, Any] | None = None
) -> bool:
    """Declare, in a guarded write that moves a campaign message (`message`: its stored copy) to `status`,
    the move of its recipient to the same bucket (line and counter), so that the message's move costs the
    recipient no write of its own. The recipient is expected in the bucket of the message's stored status;
    elsewhere the line's condition fails and the caller writes again without it (then `move` decides).
    False when the message is no campaign message (nothing declared)."""
    cid, key = message.get("campaign"), message.get("campaign_recipient")
    stored = str(message.get("status", ""))
    current = "pending" if stored == "queued" else stored
    if not cid or not key or status not in RANK or RANK.get(current, 99) >= RANK[status]:
        return False
    extra = {"error": {"code": str(error.get("code")), "title": str(error.get("title", ""))}} if error else {}
    for op in _move_ops(str(cid), str(key), current, None, status, extra):
        write.update(
            c.TABLE_MESSAGES,
            op["Key"],
            op["UpdateExpression"],
            op["ExpressionAttributeNames"],
            op["ExpressionAttributeValues"],
            op.get("ConditionExpression"),
        )
    return True


def move_extra(cid: str, key: str, **extra: Any) -> None:
    """Record attributes of a recipient (its message id) without moving its bucket."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets = _set_extra(extra, names, values)
    tables.table(c.TABLE_MESSAGES).update_item(
        Key={c.PK: pk(cid), c.SK: RECIPIENT + key},
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def recipients(cid: str, status: str | None = None) -> Any:
    """Every recipient item of the campaign, in key order (an iterator over pages)."""
    from boto3.dynamodb.conditions import Attr, Key

    cond = Key(c.PK).eq(pk(cid)) & Key(c.SK).begins_with(RECIPIENT)
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    if status:
        kwargs["FilterExpression"] = Attr("status").eq(status)
    return tables.query_live(c.TABLE_MESSAGES, cond, **kwargs)


def recipients_page(
    cid: str, status: str | None, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of recipients (`after`: the key to start after) and the next page's cursor."""
    out: list[dict[str, Any]] = []
    for item in recipients(cid, status):
        if after and str(item[c.SK]) <= RECIPIENT + after:
            continue
        out.append(item)
        if len(out) == limit + 1:
            break
    more = len(out) > limit
    out = out[:limit]
    return out, (str(out[-1][c.SK])[len(RECIPIENT) :] if more and out else None)


def counts(cid: str) -> dict[str, Any]:
    """The buckets of the campaign's recipients: the sum of its counter shards (one Query)."""
    from boto3.dynamodb.conditions import Key

    buckets = dict.fromkeys(BUCKETS, 0)
    skipped_by = dict.fromkeys(SKIP_REASONS, 0)
    total = 0
    cond = Key(c.PK).eq(pk(cid)) & Key(c.SK).begins_with(COUNTER)
    for shard in tables.query_live(c.TABLE_MESSAGES, cond, ConsistentRead=True):
        total += int(shard.get("recipients", 0))
        for bucket in BUCKETS:
            buckets[bucket] += int(shard.get(bucket, 0))
        for reason in SKIP_REASONS:
            skipped_by[reason] += int(shard.get(SKIP_PREFIX + reason, 0))
    return {"recipients": total, **buckets, "skipped_by": skipped_by}


def recount(cid: str) -> dict[str, Any]:
    """The buckets counted from the recipient items (a Query of the partition): what the counters must
    equal (tests, and a repair)."""
    buckets = dict.fromkeys(BUCKETS, 0)
    skipped_by = dict.fromkeys(SKIP_REASONS, 0)
    total = 0
    for item in recipients(cid):
        total += 1
        status = str(item.get("status", "pending"))
        buckets[status if status in buckets else "pending"] += 1
        if status == "skipped" and item.get("skipped_by") in skipped_by:
            skipped_by[str(item["skipped_by"])] += 1
    return {"recipients": total, **buckets, "skipped_by": skipped_by}


# ---- erasure ----------------------------------------------------------------------------------------------
def erase_lines(pointers: list[dict[str, Any]]) -> int:
    """An erasure met these pointers in the contact's partition: blank each entry, and replace each
    recipient line by an anonymous one (a pending recipient becomes `skipped` / `erased`, counters moved in
    the same transaction; any other keeps its bucket). The campaign items changed."""
    changed = 0
    for ptr in pointers:
        cpk, csk = str(ptr.get("camp_pk", "")), str(ptr.get("camp_sk", ""))
        if not cpk.startswith(PK_PREFIX):
            continue
        cid = cpk[len(PK_PREFIX) :]
        if csk.startswith(ENTRY):
            blank = "SET erased = :t REMOVE to_ref, #p"
            changed += _update_if(cid, csk, blank, "attribute_exists(pk)", {"#p": COMPONENTS}, {":t": True})
        elif csk.startswith(RECIPIENT):
            changed += _anonymize(cid, csk)
    return changed


def _anonymize(cid: str, sk: str) -> bool:
    """Replace one recipient line by an anonymous one (no reference, a random key)."""
    for _ in range(3):
        line = tables.get_live(c.TABLE_MESSAGES, pk(cid), sk)
        if line is None:
            return False
        old = str(line.get("status", "pending"))
        new = "skipped" if old == "pending" else old
        anon = {k: v for k, v in line.items() if k in (c.TTL_ATTRIBUTE, "entry", "error", "skipped_by")}
        anon.update({c.PK: pk(cid), c.SK: RECIPIENT + ERASED + secrets.token_hex(8), "contact": None})
        anon.update(status=new, rank_n=RANK[new])
        if old == "pending":
            anon["skipped_by"] = "erased"
        gone = {
            "Key": {c.PK: pk(cid), c.SK: sk},
            "ConditionExpression": "#s = :old",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":old": old},
        }
        ops: list[dict[str, Any]] = [{"Delete": gone}, {"Put": {"Item": anon}}]
        if new != old:
            ops.append(
                _count(cid, sk[len(RECIPIENT) :], {**_bucket(old, None, -1), **_bucket(new, "erased", 1)})
            )
        if _transact(ops):
            return True
    return False
