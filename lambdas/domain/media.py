"""Inbound media: the processor asks for a download, the media worker fetches it from Meta and keeps it.

- `request` (processor, on an inbound image/video/audio/document/sticker): one job on the media queue;
  the body holds waguard's media id, the contact's pseudonym and a blob sealed under the contact's key
  with Meta's media id, the declared mime type and the message type. No message attributes.
- `fetch` (media worker): `GET /{version}/{media-id}` and then its URL, both with the Bearer token (the
  URL is valid five minutes, so it is never stored); Meta's size limit for the type and the declared mime
  type are enforced; the bytes stream into S3 sealed under the contact's key (store.media) and the media
  is recorded. The message itself was stored before the job was queued: a download never holds it up.

Outcomes: `done` (kept, or kept already), `dropped` (can never succeed: refused by Meta, too large, a
different type, the contact erased), `retry` (no answer, 5xx, 429; retried with backoff until the queue's
DLQ takes the job).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from domain import graph
from shared import constants as c
from shared.observability import logger
from shared.settings import Settings
from store import contacts, media

JOB_TABLE = "media-job"
JOB_ATTR = "meta"
READ_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 30.0


class Retry(Exception):
    """Transient trouble (no answer, 5xx, 429): try the job again later."""


class Unfetchable(Exception):
    """The media can never be kept (Meta refused it, too large, another type): drop the job."""


@dataclass(frozen=True)
class Job:
    media_id: str
    contact: str
    sealed: str


def request(pk: str, msg_type: str | None, content: dict[str, Any] | None) -> None:
    """Queue the download of an inbound message's media (no-op for other messages).

    Called before the message is stored; a failure to queue is logged (ids only) and never holds up the
    message. Meta's retry of the webhook, or of the inbound record, queues it again (the worker dedupes).
    """
    from store.crypto import cipher

    if not content or msg_type not in c.MEDIA_MAX_BYTES or not content.get("id"):
        return
    meta_id = str(content["id"])
    media_id = contacts.media_ref(meta_id)
    try:
        blob = cipher().encrypt(
            pk,
            JOB_TABLE,
            pk,
            media_id,
            JOB_ATTR,
            {"id": meta_id, "mime_type": content.get("mime_type"), "type": msg_type},
        )
        media.enqueue(json.dumps({"media": media_id, "contact": pk, "meta": blob}))
    except Exception as exc:
        logger.error(
            "media download not queued", extra={"media_id": media_id, "error_type": type(exc).__name__}
        )


def parse_job(body: str) -> Job:
    raw = json.loads(body)
    return Job(str(raw["media"]), str(raw["contact"]), str(raw["meta"]))


def base_type(mime: str | None) -> str:
    return (mime or "").split(";")[0].strip().lower()


def _open(url: str, token: str) -> Any:
    """GET `url` with the Bearer token; the open answer (no redirects: the token never follows one)."""
    import http.client
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    graph.check_url(url)
    handlers: list[Any] = [NoRedirect()]
    if (urlsplit(url).hostname or "").lower() in graph.LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        return urllib.request.build_opener(*handlers).open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise Retry(f"HTTP {exc.code}") from exc
        raise Unfetchable(f"HTTP {exc.code}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise Retry(type(exc).__name__) from exc


def _stream(answer: Any) -> Iterator[bytes]:
    import http.client

    with answer:
        while True:
            try:
                piece = answer.read(READ_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise Retry(type(exc).__name__) from exc
            if not piece:
                return
            yield piece


def fetch(job: Job, token: str, settings: Settings) -> str:
    """Download and keep one inbound media; `done` or `dropped` (raises Retry for transient trouble)."""
    from store.crypto import KeyShredded, cipher

    if media.exists(job.contact, job.media_id):
        return "done"
    try:
        meta = cipher().decrypt(job.contact, JOB_TABLE, job.contact, job.media_id, JOB_ATTR, job.sealed)
    except KeyShredded:
        return "dropped"  # the contact was erased since: nothing of theirs is fetched
    kind, declared = str(meta["type"]), base_type(meta.get("mime_type"))
    limit = c.MEDIA_MAX_BYTES[kind]
    base = graph.check_url(settings.graph_api_url)
    with _open(f"{base}/{settings.graph_api_version}/{quote(str(meta['id']), safe='')}", token) as answer:
        info = json.loads(answer.read(graph.MAX_RESPONSE_BYTES))
    served = base_type(info.get("mime_type"))
    if declared and served and served != declared:
        raise Unfetchable("the media is not of the declared type")
    if int(info.get("file_size") or 0) > limit:
        raise Unfetchable("larger than Meta allows for the type")
    mime_type = declared or served
    if not mime_type or not info.get("url"):
        raise Unfetchable("no mime type or no URL")
    answer = _open(str(info["url"]), token)
    try:
        stored = media.put_object(job.contact, _stream(answer), limit)
    except media.TooLarge as exc:
        raise Unfetchable(str(exc)) from exc
    try:
        kept = media.save(job.media_id, job.contact, "in", mime_type, stored)
    except media.StaleKey as exc:  # erased while downloading: the next attempt finds the key gone
        media.delete_object(stored.s3_key)
        raise Retry("the contact's key changed") from exc
    if not kept:
        media.delete_object(stored.s3_key)  # another attempt kept it first
    return "done"


# ---- GET /media/{id} ---------------------------------------------------------------------------------
# Larger media than one answer carries is read in parts: `Range: bytes=START-END` (RFC 9110 206).
INLINE_MAX_BYTES = c.MEDIA_INLINE_MAX_BYTES
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class TooLargeToServe(Exception):
    """The media is held but larger than one answer can carry: ask for it in parts (Range)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class Unsatisfiable(Exception):
    """The range asked for starts past the media's end (416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


@dataclass(frozen=True)
class Download:
    mime_type: str
    data: bytes
    holder: str  # the pseudonym of the contact (or the uploads' partition) that holds it: for the audit
    size: int  # of the whole media
    span: tuple[int, int] | None = None  # (first, last) byte of a part (206), None for the whole (200)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range `header` asks for, clamped to the media and to INLINE_MAX_BYTES; None when
    there is none to honour (absent, malformed or several ranges: RFC 9110 lets a server ignore them).
    Raises Unsatisfiable when it starts past the end."""
    found = _RANGE.match(header or "")
    if found is None or (not found.group(1) and not found.group(2)):
        return None
    if size == 0:
        raise Unsatisfiable(size)  # no byte of an empty media can be asked for
    first_text, last_text = found.groups()
    if not first_text:  # the last N bytes
        length = int(last_text)
        if length == 0:
            raise Unsatisfiable(size)
        first, last = max(0, size - length), size - 1
    else:
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
        if last_text and last < first:
            return None  # not a valid range: ignored
        if first >= size:
            raise Unsatisfiable(size)
    return first, min(last, size - 1, first + INLINE_MAX_BYTES - 1)


def download(media_id: str, range_header: str | None = None) -> Download | None:
    """The bytes of waguard's media id, whole or the part `range_header` asks for; None when unknown,
    expired or erased. Raises TooLargeToServe (whole, too large) and Unsatisfiable (416)."""
    from store.crypto import KeyShredded

    if not media_id.startswith(c.MEDIA_ID_PREFIX):
        return None
    record = media.find(media_id)
    if record is None:
        return None
    span = parse_range(range_header, record.size)
    if span is None and record.size > INLINE_MAX_BYTES:
        raise TooLargeToServe(record.size)
    try:
        if span is None:
            return Download(record.mime_type, b"".join(media.read(record)), record.chash, record.size)
        data = media.read_range(record, *span)
    except KeyShredded:
        return None
    return Download(record.mime_type, data, record.chash, record.size, span)
