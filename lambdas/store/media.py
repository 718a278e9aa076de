"""Media objects (S3, sealed under the contact's data key) and their records (contacts table).

- object: `media/<random hex>` in the media bucket (no personal data in the key), the bytes encrypted
  chunk by chunk under the contact's data key (store.media_crypto) before they are put; the bucket adds
  SSE-KMS. Objects above PART_BYTES go up as a multipart upload, one part at a time.
- record: contacts table, the contact's partition, `MEDIA#<waguard id>`: direction, size, s3 key, the
  key id the object was sealed under and the TTL of the `media` class in clear; mime type and sha256
  sealed (store.sealed, guarded on the key).
- uploads (`POST /media`) are records of the partition `MEDIA_UPLOADS_PK`, sealed under its own key.
- pointer: `MEDIAREF#<waguard id>` / `MEDIA`: the holder's partition (pseudonym or uploads), so
  `GET /media/{id}` finds the record from waguard's id alone. Written in the same transaction as the
  record; erasure deletes both.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import require_env
from store import media_crypto, sealed, tables

PART_BYTES = 8 * 1024 * 1024
DATA = "data"
RECORD_PREFIX = "MEDIA#"
POINTER_PREFIX = "MEDIAREF#"
POINTER_SK = "MEDIA"


class StaleKey(Exception):
    """The contact's key changed (an erasure) after the object was sealed: seal the object anew."""


class TooLarge(ValueError):
    """More bytes than Meta allows for the media type."""


@dataclass(frozen=True)
class Stored:
    s3_key: str
    size: int
    sha256: str
    key_id: str


@dataclass(frozen=True)
class Record:
    media_id: str
    chash: str
    direction: str
    mime_type: str
    size: int
    sha256: str
    s3_key: str
    key_id: str
    expires_at: int


@cache
def s3() -> Any:
    import boto3

    return boto3.client("s3")


def bucket() -> str:
    return require_env(c.ENV_MEDIA_BUCKET)


def new_object_key() -> str:
    return c.MEDIA_PREFIX + secrets.token_hex(16)


def _parts(ciphertext: Iterable[bytes]) -> Iterator[bytes]:
    """Regroup ciphertext pieces into parts of PART_BYTES (the last one shorter)."""
    buf = bytearray()
    for piece in ciphertext:
        buf += piece
        while len(buf) >= PART_BYTES:
            yield bytes(buf[:PART_BYTES])
            del buf[:PART_BYTES]
    if buf:
        yield bytes(buf)


def put_object(chash: str, chunks: Iterable[bytes], limit: int) -> Stored:
    """Encrypt `chunks` under the contact's current key and put them; raises TooLarge past `limit`."""
    from store.crypto import cipher

    wkey = cipher().write_key(chash)
    key = new_object_key()
    sealer = media_crypto.Sealer(wkey.key, wkey.key_id, key)
    digest = hashlib.sha256()
    size = 0

    def ciphertext() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"more than {limit} bytes")
            digest.update(chunk)
            yield sealer.feed(chunk)
        yield sealer.finish()

    parts = _parts(ciphertext())
    first = next(parts)
    second = next(parts, None)
    if second is None:
        s3().put_object(Bucket=bucket(), Key=key, Body=first)
    else:
        _multipart(key, first, second, parts)
    return Stored(key, size, digest.hexdigest(), wkey.key_id)


def _multipart(key: str, first: bytes, second: bytes, rest: Iterator[bytes]) -> None:
    upload = s3().create_multipart_upload(Bucket=bucket(), Key=key)["UploadId"]
    done: list[dict[str, Any]] = []
    try:
        for number, body in enumerate([first, second], start=1):
            done.append({"PartNumber": number, "ETag": _part(key, upload, number, body)})
        del first, second
        for number, body in enumerate(rest, start=3):
            done.append({"PartNumber": number, "ETag": _part(key, upload, number, body)})
        s3().complete_multipart_upload(
            Bucket=bucket(), Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
    except BaseException:
        s3().abort_multipart_upload(Bucket=bucket(), Key=key, UploadId=upload)
        raise


def _part(key: str, upload: str, number: int, body: bytes) -> str:
    out = s3().upload_part(Bucket=bucket(), Key=key, UploadId=upload, PartNumber=number, Body=body)
    return str(out["ETag"])


def delete_object(s3_key: str) -> None:
    s3().delete_object(Bucket=bucket(), Key=s3_key)


def record_sk(media_id: str) -> str:
    return RECORD_PREFIX + media_id


def save(media_id: str, chash: str, direction: str, mime_type: str, stored: Stored) -> bool:
    """Record the media (record and pointer in one guarded write). False when it is recorded already.
    Raises StaleKey when the contact's key is no longer the one the object was sealed under."""
    from store.crypto import cipher

    sk = record_sk(media_id)
    expires = tables.expires_at(c.CLASS_MEDIA)

    def build(write: sealed.Write) -> None:
        if cipher().write_key(chash).key_id != stored.key_id:
            raise StaleKey("the contact's key changed after the object was sealed")
        sealed_data = write.seal(
            chash, c.TABLE_CONTACTS, chash, sk, DATA, {"mime_type": mime_type, "sha256": stored.sha256}
        )
        item = {
            c.PK: chash,
            c.SK: sk,
            "direction": direction,
            "size": stored.size,
            "s3_key": stored.s3_key,
            "key_id": stored.key_id,
            "created_at": tables.now(),
            DATA: sealed_data,
            c.TTL_ATTRIBUTE: expires,
        }
        write.put(c.TABLE_CONTACTS, item, "attribute_not_exists(pk)")
        pointer = {
            c.PK: POINTER_PREFIX + media_id,
            c.SK: POINTER_SK,
            "contact": chash,
            c.TTL_ATTRIBUTE: expires,
        }
        write.put(c.TABLE_CONTACTS, pointer)

    try:
        sealed.run(build)
    except sealed.Cancelled as exc:
        if exc.failed(0):
            return False
        raise
    return True


def _record(item: dict[str, Any]) -> Record | None:
    from store.crypto import cipher

    chash, sk = str(item[c.PK]), str(item[c.SK])
    data = cipher().decrypt_or_none(chash, c.TABLE_CONTACTS, chash, sk, DATA, item[DATA])
    if data is None:
        return None
    return Record(
        media_id=sk[len(RECORD_PREFIX) :],
        chash=chash,
        direction=str(item["direction"]),
        mime_type=str(data["mime_type"]),
        size=int(item["size"]),
        sha256=str(data["sha256"]),
        s3_key=str(item["s3_key"]),
        key_id=str(item["key_id"]),
        expires_at=int(item[c.TTL_ATTRIBUTE]),
    )


def exists(chash: str, media_id: str) -> bool:
    return tables.get_live(c.TABLE_CONTACTS, chash, record_sk(media_id)) is not None


def pointer_of(media_id: str) -> str | None:
    """The partition that holds waguard's `media_id` (a contact's pseudonym, or the uploads'), or None."""
    pointer = tables.get_live(c.TABLE_CONTACTS, POINTER_PREFIX + media_id, POINTER_SK)
    return str(pointer["contact"]) if pointer else None


def find(media_id: str) -> Record | None:
    """The live, readable record of waguard's `media_id`, or None (unknown, expired or erased)."""
    holder = pointer_of(media_id)
    if holder is None:
        return None
    item = tables.get_live(c.TABLE_CONTACTS, holder, record_sk(media_id))
    return _record(item) if item else None


def of_contact(chash: str) -> list[Record]:
    """The contact's live, readable media records."""
    from boto3.dynamodb.conditions import Key

    items = tables.query_live(c.TABLE_CONTACTS, Key(c.PK).eq(chash) & Key(c.SK).begins_with(RECORD_PREFIX))
    return [r for r in (_record(i) for i in items) if r is not None]


def pointer_keys(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pointer keys of a partition's media record items (erasure deletes them with the partition)."""
    return [
        {c.PK: POINTER_PREFIX + str(i[c.SK])[len(RECORD_PREFIX) :], c.SK: POINTER_SK}
        for i in items
        if str(i[c.SK]).startswith(RECORD_PREFIX)
    ]


def read(record: Record) -> Iterator[bytes]:
    """The decrypted bytes of a record's object, chunk by chunk (raises KeyShredded after an erasure)."""
    from store.crypto import cipher

    body = s3().get_object(Bucket=bucket(), Key=record.s3_key)["Body"]
    key_id = media_crypto.read_key_id(body.read)
    key = cipher().read_key(record.chash, key_id)
    yield from media_crypto.open_records(key, record.s3_key, body.read)


class ShortRead(media_crypto.Corrupt):
    """S3 answered a ranged read with fewer bytes than it holds: no part is served from it."""


RANGE_READ_ATTEMPTS = 2


def read_range(record: Record, start: int, end: int) -> bytes:
    """Plaintext bytes `start`..`end` (inclusive) of a record's object: only the records that hold them
    are read (a ranged GET) and decrypted (raises KeyShredded after an erasure). A ranged GET that comes
    back short (or cut inside a record) is read again once; ShortRead if it still is, never a short part
    passed off as the span asked for."""
    from store.crypto import cipher

    chunk, size = media_crypto.CHUNK, media_crypto.RECORD
    first, last = start // chunk, end // chunk
    base = media_crypto.header_length(record.key_id)
    span = f"bytes={base + first * size}-{base + (last + 1) * size - 1}"
    key = cipher().read_key(record.chash, record.key_id)
    total = media_crypto.records_of(record.size)
    want = end - start + 1
    got = 0
    for _ in range(RANGE_READ_ATTEMPTS):
        body = s3().get_object(Bucket=bucket(), Key=record.s3_key, Range=span)["Body"].read()
        try:
            plain = b"".join(media_crypto.open_span(key, record.s3_key, body, first, total))
        except media_crypto.Corrupt:
            got = 0  # cut inside a record: its tag cannot match
            continue
        part = plain[start - first * chunk : end - first * chunk + 1]
        if len(part) == want:
            return part
        got = len(part)
    raise ShortRead(f"{got} of {want} bytes after {RANGE_READ_ATTEMPTS} ranged reads")


# ---- the media queue ---------------------------------------------------------------------------------


@cache
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def enqueue(body: str) -> None:
    """Queue one download job (the body carries waguard's id and a sealed blob; no message attributes)."""
    _sqs().send_message(QueueUrl=require_env(c.ENV_MEDIA_QUEUE_URL), MessageBody=body)


def defer(receipt_handle: str, seconds: int, source_arn: str) -> None:
    """Make a received job visible again after `seconds` (the consumer knows its queue by ARN)."""
    _, partition, _, region, account, name = source_arn.split(":")
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    _sqs().change_message_visibility(
        QueueUrl=f"https://sqs.{region}.{suffix}/{account}/{name}",
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(43200, int(seconds))),
    )


def reset() -> None:
    s3.cache_clear()
    _sqs.cache_clear()
