"""media_memory: peak Python memory of the media worker while a 100 MB document passes through it.

The Graph fake (in-process, Bearer token required) serves the document from a generator (nothing of it is
held by the fake); the worker fetches it, seals it chunk by chunk under the contact's key and uploads it
as a multipart upload. S3 is replaced by a sink that checks and discards each part (moto would keep the
whole object in this process and hide the worker's own figure); DynamoDB, KMS and SQS are moto's.
Peak traced memory (tracemalloc) during `domain.media.fetch` is compared with the function's memory size
(cdk.json `functions.media-worker.memoryMb`): the goal is under a quarter of it, whatever the document's
size, i.e. the document is streamed, never read whole.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from typing import Any

from bench.stack import local_stack, quiet_logs

MB = 1024 * 1024
TOKEN = "test-access-token"  # tests/conftest.py SECRETS


class _Sink:
    """The S3 calls the worker makes, each part counted and dropped."""

    def __init__(self) -> None:
        self.bytes = 0
        self.parts = 0
        self.largest_part = 0

    def _take(self, body: bytes) -> None:
        self.bytes += len(body)
        self.parts += 1
        self.largest_part = max(self.largest_part, len(body))

    def put_object(self, Body: bytes, **_: Any) -> dict[str, Any]:
        self._take(Body)
        return {}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u1"}

    def upload_part(self, Body: bytes, PartNumber: int, **_: Any) -> dict[str, Any]:
        self._take(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


def _document(size: int) -> Any:
    block = os.urandom(MB)

    def chunks() -> Any:
        left = size
        while left > 0:
            yield block[: min(MB, left)]
            left -= MB

    return chunks


def run(size_mb: int = 100) -> dict[str, Any]:
    from infra.config import WaguardConfig
    from waguard import graph_fake

    quiet_logs()
    memory_mb = WaguardConfig.from_cdk_json().function("media-worker").memory_mb
    server, base = graph_fake.start(expected_token=TOKEN)
    size = size_mb * MB
    try:
        server.add_media("bench-doc", "application/pdf", chunks=_document(size), size=size)
        with local_stack(WA_GRAPH_API_URL=base):
            from domain import media as domain_media
            from shared.settings import get_settings
            from store import contacts
            from store import media as store_media

            sink = _Sink()
            store_media.s3.cache_clear()
            original = store_media.s3
            store_media.s3 = lambda: sink  # type: ignore[assignment]
            try:
                pk = contacts.chash("4915100000001")
                content = {"id": "bench-doc", "mime_type": "application/pdf"}
                domain_media.request(pk, "document", content)
                from tests.factory import drain

                (body,) = drain(os.environ["WG_MEDIA_QUEUE_URL"])
                job = domain_media.parse_job(body)
                tracemalloc.start()
                started = time.perf_counter()
                outcome = domain_media.fetch(job, TOKEN, get_settings())
                seconds = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                record = store_media.find(job.media_id)
            finally:
                store_media.s3 = original  # type: ignore[method-assign]
    finally:
        server.shutdown()
    peak_mb = peak / MB
    return {
        "document_mb": size_mb,
        "outcome": outcome,
        "recorded_size": record.size if record else None,
        "uploaded_mb": round(sink.bytes / MB, 2),
        "parts": sink.parts,
        "largest_part_mb": round(sink.largest_part / MB, 2),
        "peak_traced_mb": round(peak_mb, 1),
        "function_memory_mb": memory_mb,
        "seconds": round(seconds, 2),
        "goal": "peak < 25% of the function's memory",
        "met": bool(record and record.size == size and peak_mb < memory_mb / 4),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
