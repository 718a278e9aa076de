"""`Range: bytes=...` for `GET /media/{id}` (RFC 9110 14.1.2): one range, clamped to one answer's size."""

from __future__ import annotations

import pytest

from domain.media import INLINE_MAX_BYTES, Unsatisfiable, parse_range

SIZE = 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("bytes=0-0", SIZE, (0, 0)),
        ("bytes=0-99", SIZE, (0, 99)),
        ("BYTES = 5 - 9", SIZE, (5, 9)),
        ("bytes=100-", SIZE, (100, 100 + INLINE_MAX_BYTES - 1)),  # clamped to one answer
        ("bytes=-10", SIZE, (SIZE - 10, SIZE - 1)),
        ("bytes=-99999999", 50, (0, 49)),  # more than there is: all of it
        ("bytes=40-99999", 50, (40, 49)),
        ("bytes=49-", 50, (49, 49)),
        (None, 50, None),
        ("", 50, None),
        ("bytes=5-2", 50, None),  # invalid: ignored
        ("bytes=0-1,5-6", 50, None),  # several ranges: ignored
        ("items=0-5", 50, None),
        ("bytes=-", 50, None),
    ],
)
def test_ranges(header: str | None, size: int, span: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == span


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=50-", 50), ("bytes=50-60", 50), ("bytes=-0", 50), ("bytes=-5", 0), ("bytes=0-", 0)],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)
