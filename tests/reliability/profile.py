"""The size of the reliability tests: the default profile (part of `make test`) or the full one
(`WAGUARD_RELIABILITY=full`, what `make fuzz` runs)."""

from __future__ import annotations

import os

FULL = os.environ.get("WAGUARD_RELIABILITY", "").lower() == "full"


def scale(ci: int, full: int) -> int:
    """The size of a test in the current profile."""
    return full if FULL else ci
