"""media_send_memory: peak Python memory of the sender while a 100 MB document it sends by `media_id` is
copied for the contact and uploaded to Meta.

The document is an upload of the business held sealed in S3; `domain.media_out.for_meta` seals the
contact's own copy (read chunk by chunk, put as a multipart upload) and then streams it to Meta's
`POST /{version}/{number}/media` as a multipart form. S3 is a disk-backed stand-in (moto would hold every
object in this process and hide the sender's own figure) and Meta a sink that reads the form in 1 MiB
pieces and answers a media id; DynamoDB and KMS are moto's. Peak traced memory (tracemalloc) during
`for_meta` is compared with the sender's memory size (cdk.json `functions.sender.memoryMb`): the goal is
under a quarter of it, i.e. the document is streamed, never held whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.stack import local_stack, quiet_logs

MB = 1024 * 1024
TOKEN = "test-access-token"  # tests/conftest.py SECRETS


class _DiskS3:
    """The S3 calls of store.media, objects kept in files (parts appended in order)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    def put_object(self, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._path(Key).write_bytes(Body)
        return {}

    def create_multipart_upload(self, Key: str, **_: Any) -> dict[str, Any]:
        self._path(Key).write_bytes(b"")
        return {"UploadId": "u1"}

    def upload_part(self, Key: str, Body: bytes, PartNumber: int, **_: Any) -> dict[str, Any]:
        with self._path(Key).open("ab") as out:
            out.write(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, Key: str, **_: Any) -> dict[str, Any]:
        self._path(Key).unlink(missing_ok=True)
        return {}

    def delete_object(self, Key: str, **_: Any) -> dict[str, Any]:
        self._path(Key).unlink(missing_ok=True)
        return {}

    def get_object(self, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": self._path(Key).open("rb")}


class _MetaSink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            got = self.rfile.read(min(MB, left))
            if not got:
                break
            left -= len(got)
            _MetaSink.received += len(got)
        body = json.dumps({"id": "4490709327384033"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def _document(size: int) -> Any:
    block = os.urandom(MB)
    left = size
    while left > 0:
        yield block[: min(MB, left)]
        left -= MB


def run(size_mb: int = 100) -> dict[str, Any]:
    from infra.config import WaguardConfig

    quiet_logs()
    memory_mb = WaguardConfig.from_cdk_json().function("sender").memory_mb
    size = size_mb * MB
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetaSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _MetaSink.received = 0
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as root, local_stack(WA_GRAPH_API_URL=base):
            from domain import media_out
            from shared import constants as c
            from shared.settings import get_settings
            from store import contacts, media

            original = media.s3
            media.s3 = lambda: _DiskS3(Path(root))  # type: ignore[assignment]
            try:
                stored = media.put_object(c.MEDIA_UPLOADS_PK, _document(size), c.MEDIA_MAX_BYTES["document"])
                media.save("med_" + "c" * 24, c.MEDIA_UPLOADS_PK, "upload", "application/pdf", stored)
                pk = contacts.chash("4915100000002")
                tracemalloc.start()
                started = time.perf_counter()
                answer = media_out.for_meta(
                    pk, "med_" + "c" * 24, "106540352242922", TOKEN, get_settings(), time.monotonic() + 600
                )
                seconds = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                copy = media.find(contacts.media_copy_ref("med_" + "c" * 24, pk))
            finally:
                media.s3 = original  # type: ignore[method-assign]
    finally:
        server.shutdown()
        server.server_close()
    peak_mb = peak / MB
    return {
        "document_mb": size_mb,
        "meta_media_id": answer if isinstance(answer, str) else None,
        "copy_size": copy.size if copy else None,
        "sent_to_meta_mb": round(_MetaSink.received / MB, 2),
        "peak_traced_mb": round(peak_mb, 1),
        "function_memory_mb": memory_mb,
        "seconds": round(seconds, 2),
        "goal": "peak < 25% of the function's memory",
        "met": bool(isinstance(answer, str) and copy and copy.size == size and peak_mb < memory_mb / 4),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
