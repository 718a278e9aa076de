"""The streaming media cipher: chunked AES-GCM, bounded memory, tamper-evident at chunk boundaries."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import media_crypto as mc

KEY = bytes(range(32))


def seal(data: bytes, pieces: int = 3, object_key: str = "media/abc") -> bytes:
    sealer = mc.Sealer(KEY, "k1", object_key)
    out = bytearray()
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        out += sealer.feed(data[i : i + step])
    out += sealer.finish()
    return bytes(out)


def unseal(blob: bytes, object_key: str = "media/abc") -> bytes:
    stream = io.BytesIO(blob)
    assert mc.read_key_id(stream.read) == "k1"
    return b"".join(mc.open_records(KEY, object_key, stream.read))


@pytest.mark.parametrize("size", [0, 1, mc.CHUNK - 1, mc.CHUNK, mc.CHUNK + 1, 3 * mc.CHUNK + 17])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    chunks = max(1, -(-size // mc.CHUNK))
    assert len(blob) == len(mc.header("k1")) + size + chunks * (12 + 16)
    assert unseal(blob) == data
    if size >= 16:
        assert data[:16] not in blob


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=7))
def test_round_trip_whatever_the_pieces(data: bytes, pieces: int) -> None:
    assert unseal(seal(data, pieces)) == data


def test_the_sealer_never_holds_more_than_a_chunk() -> None:
    sealer = mc.Sealer(KEY, "k1", "media/abc")
    piece = os.urandom(256 * 1024)
    for _ in range(40):  # 10 MiB in
        sealer.feed(piece)
        assert len(sealer._buf) <= mc.CHUNK


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    blob = seal(os.urandom(2 * mc.CHUNK + 5))
    head = len(mc.header("k1"))
    cut = blob[: head + 2 * mc.RECORD]  # the last record dropped: the second one is not marked final
    with pytest.raises(mc.Corrupt):
        unseal(cut)


def test_reordered_chunks_and_another_objects_key_are_detected() -> None:
    blob = seal(os.urandom(2 * mc.CHUNK + 5))
    head = len(mc.header("k1"))
    first, second = blob[head : head + mc.RECORD], blob[head + mc.RECORD : head + 2 * mc.RECORD]
    swapped = blob[:head] + second + first + blob[head + 2 * mc.RECORD :]
    with pytest.raises(mc.Corrupt):
        unseal(swapped)
    with pytest.raises(mc.Corrupt):
        unseal(blob, object_key="media/other")


def test_not_a_media_object() -> None:
    with pytest.raises(mc.Corrupt):
        mc.read_key_id(io.BytesIO(b"plain bytes").read)
