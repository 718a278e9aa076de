"""Media the business sends: uploads (`POST /media`), `media_id` on `POST /messages`, and the upload to Meta.

- `upload` (messages API): raw bytes of a type Meta accepts, at most Meta's size for that type, sealed
  under the uploads partition's own data key (never a contact's: an upload belongs to nobody yet) and
  recorded like any media (`store.media`, partition `MEDIA_UPLOADS_PK`, direction `upload`).
- `check` (messages API, accepting a send): the id names an upload, or media of this conversation (the
  contact's identity set), of a mime type Meta accepts for the kind and within its size; 400 otherwise.
  An id of another contact is answered exactly like an unknown one.
- `for_meta` (sender, inside the send lease): the contact's own copy of an upload is made first, sealed
  under the contact's key (`MEDIA#` direction `out`, id `contacts.media_copy_ref`), so the export lists what
  was sent and an erasure shreds it like anything else of the contact; then the bytes go to Meta's
  `POST /{version}/{phone-number-id}/media` (multipart, streamed chunk by chunk) and Meta's id is what
  the message names. Meta's refusal fails the message; no answer, 5xx or 429 retries it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from domain import graph
from domain.errors import Refused
from domain.media import INLINE_MAX_BYTES, base_type
from shared import constants as c
from shared.settings import Settings
from store import contacts, media

UPLOAD_TIMEOUT_SECONDS = 60.0


def kinds_of(mime: str) -> list[str]:
    """The message kinds Meta accepts a media of this (base) mime type for."""
    return [kind for kind, types in c.MEDIA_MIME_TYPES.items() if mime in types]


def upload(content_type: str | None, data: bytes) -> dict[str, Any]:
    """`POST /media`: keep the bytes for sending; `{"id", "mime_type", "size"}`."""
    mime = base_type(content_type)
    kinds = kinds_of(mime)
    if not kinds:
        raise Refused(400, "unsupported_media", "Content-Type: not a media type Meta accepts")
    if not data:
        raise Refused(400, "invalid_body", "the body holds no bytes")
    limit = max(c.MEDIA_MAX_BYTES[k] for k in kinds)
    if len(data) > limit:
        raise Refused(400, "too_large", f"{mime}: Meta accepts at most {limit} bytes")
    if len(data) > INLINE_MAX_BYTES:
        raise Refused(413, "too_large", f"the API carries at most {INLINE_MAX_BYTES} bytes: send a link")
    media_id = c.MEDIA_ID_PREFIX + secrets.token_hex(12)
    stored = media.put_object(c.MEDIA_UPLOADS_PK, [data], limit)
    media.save(media_id, c.MEDIA_UPLOADS_PK, "upload", mime, stored)
    return {"id": media_id, "mime_type": mime, "size": stored.size}


def check(contact_hashes: tuple[str, ...], media_id: str, kind: str) -> str:
    """waguard's `media_id` when it may be sent as `kind` to this contact (Refused otherwise)."""
    unknown = Refused(400, "unknown_media", f"{kind}.media_id: no media with this id is held")
    if not media_id.startswith(c.MEDIA_ID_PREFIX):
        raise unknown
    record = media.find(media_id)
    if record is None or (record.chash != c.MEDIA_UPLOADS_PK and record.chash not in contact_hashes):
        raise unknown
    if record.mime_type not in c.MEDIA_MIME_TYPES[kind]:
        raise Refused(400, "invalid_body", f"{kind}.media_id: {record.mime_type} cannot be sent as {kind}")
    if record.size > c.MEDIA_MAX_BYTES[kind]:
        raise Refused(
            400, "too_large", f"{kind}.media_id: Meta accepts at most {c.MEDIA_MAX_BYTES[kind]} bytes"
        )
    return media_id


def _in_time(pieces: Iterator[bytes], until: float) -> Iterator[bytes]:
    """`pieces`, unless `until` (time.monotonic) passes first: then Unavailable (the attempt is retried)."""
    for piece in pieces:
        if time.monotonic() > until:
            raise graph.Unavailable("timeout")
        yield piece


def _contact_copy(pk: str, upload: media.Record, until: float) -> None:
    """Seal the contact's own copy of an upload (once: a retry finds it)."""
    copy_id = contacts.media_copy_ref(upload.media_id, pk)
    if media.exists(pk, copy_id):
        return
    stored = media.put_object(pk, _in_time(media.read(upload), until), c.MEDIA_MAX_BYTES["document"])
    try:
        kept = media.save(copy_id, pk, "out", upload.mime_type, stored)
    except media.StaleKey as exc:  # erased meanwhile: the send is checked again on the next attempt
        media.delete_object(stored.s3_key)
        raise graph.Unavailable("the contact's key changed") from exc
    if not kept:
        media.delete_object(stored.s3_key)


def _form(record: media.Record, boundary: str) -> tuple[list[bytes], bytes, int]:
    """Meta's multipart form around the file: (head parts, tail, total length)."""
    fields = [("messaging_product", "whatsapp"), ("type", record.mime_type)]
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    ext = record.mime_type.rsplit("/", 1)[-1].replace("+", ".")[:40]
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="media.{ext}"\r\n'
        f"Content-Type: {record.mime_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return [head], tail, len(head) + record.size + len(tail)


def _body(record: media.Record, head: list[bytes], tail: bytes, until: float) -> Iterator[bytes]:
    yield from head
    yield from _in_time(media.read(record), until)
    yield tail


def for_meta(
    pk: str, media_id: str, number: str, token: str, settings: Settings, until: float
) -> str | graph.GraphResult:
    """Meta's media id for waguard's `media_id` sent to the contact `pk` from `number`; or the Graph
    answer that stands for the message's outcome (retryable or not) when it cannot be had. Copying and
    uploading stop at `until` (time.monotonic): a retryable timeout."""
    from store.crypto import KeyShredded

    record = media.find(media_id)
    if record is None:
        return graph.GraphResult(http_status=410, title="the media is no longer held")
    if record.chash == c.MEDIA_UPLOADS_PK:
        try:
            _contact_copy(pk, record, until)
        except graph.Unavailable as exc:
            return graph.GraphResult(http_status=None, title=str(exc))
    boundary = "waguard-" + secrets.token_hex(12)
    head, tail, length = _form(record, boundary)
    url = f"{graph.check_url(settings.graph_api_url)}/{settings.graph_api_version}/{number}/media"
    try:
        answer = graph.post(
            url,
            token,
            _body(record, head, tail, until),
            f"multipart/form-data; boundary={boundary}",
            max(1.0, min(UPLOAD_TIMEOUT_SECONDS, until - time.monotonic())),
            length,
        )
    except KeyShredded:
        return graph.GraphResult(http_status=410, title="the media is no longer held")
    except graph.Unavailable as exc:
        return graph.GraphResult(http_status=None, title=str(exc))
    if answer.http_status is not None and 200 <= answer.http_status < 300:
        try:
            meta_id = json.loads(answer.raw).get("id")
        except (ValueError, AttributeError):
            meta_id = None
        if isinstance(meta_id, str) and meta_id:
            return meta_id
        return graph.GraphResult(http_status=answer.http_status, title="unexpected response", unexpected=True)
    return graph.result_of(answer)
