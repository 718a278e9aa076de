"""A ranged media read that S3 answers short is read again, and is an error when it stays short: never a
206 whose Content-Range claims bytes it does not carry (issue 21)."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from store import crypto, media
from store import media_crypto as mc

KEY = bytes(range(32))
OBJECT_KEY = "media/abc"
DATA = os.urandom(3 * mc.CHUNK + 17)


def _sealed(data: bytes) -> bytes:
    sealer = mc.Sealer(KEY, "k1", OBJECT_KEY)
    return sealer.feed(data) + sealer.finish()


class FakeS3:
    """Honours `Range` as S3 does, but cuts the first `short` answers by `cut` bytes."""

    def __init__(self, blob: bytes, short: int, cut: int) -> None:
        self.blob, self.short, self.cut, self.calls = blob, short, cut, 0

    def get_object(self, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        assert Key == OBJECT_KEY
        first, last = (int(x) for x in Range.removeprefix("bytes=").split("-"))
        body = self.blob[first : last + 1]
        if self.calls < self.short:
            body = body[: len(body) - self.cut]
        self.calls += 1
        return {"Body": io.BytesIO(body)}


class FakeCipher:
    def read_key(self, chash: str, key_id: str) -> bytes:
        assert key_id == "k1"
        return KEY


RECORD = media.Record("med_x", "chash", "in", "video/mp4", len(DATA), "", OBJECT_KEY, "k1", 0)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    def install(short: int, cut: int) -> FakeS3:
        fake = FakeS3(_sealed(DATA), short, cut)
        monkeypatch.setattr(media, "s3", lambda: fake)
        monkeypatch.setattr(media, "bucket", lambda: "bucket")
        monkeypatch.setattr(crypto, "cipher", FakeCipher)
        return fake

    return install


# The last two records asked for (a span ending at the object's end); cut at a record boundary (a whole
# record missing: every tag still checks) and inside one.
START, END = mc.CHUNK + 5, len(DATA) - 1


@pytest.mark.parametrize("cut", [len(DATA) - 3 * mc.CHUNK + 28, 1, mc.RECORD])
def test_one_short_answer_is_read_again(s3, cut: int) -> None:
    fake = s3(short=1, cut=cut)
    assert media.read_range(RECORD, START, END) == DATA[START : END + 1]
    assert fake.calls == 2


@pytest.mark.parametrize("cut", [len(DATA) - 3 * mc.CHUNK + 28, 1])
def test_a_span_that_stays_short_is_an_error_not_a_shorter_part(s3, cut: int) -> None:
    fake = s3(short=2, cut=cut)
    with pytest.raises(media.ShortRead):
        media.read_range(RECORD, START, END)
    assert fake.calls == media.RANGE_READ_ATTEMPTS


def test_a_whole_answer_is_read_once(s3) -> None:
    fake = s3(short=0, cut=0)
    assert media.read_range(RECORD, 0, 99) == DATA[:100]
    assert media.read_range(RECORD, START, END) == DATA[START : END + 1]
    assert fake.calls == 2
