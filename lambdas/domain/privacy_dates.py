"""The legal deadlines of data-subject requests (contract: "Privacy operations"), pure date arithmetic.

- GDPR Art. 12(3): one month after receipt: the same day of the next month, or that month's last day when
  it has none (31 January -> 28 or 29 February; 30 April -> 30 May); an extension moves the due date by
  two further months, clamped the same way.
- CCPA (Cal. Civ. Code 1798.130(a)(2)): 45 days; an extension adds 45 days.

Times keep their time of day and are UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

GDPR = "gdpr"
CCPA = "ccpa"
LAWS = (GDPR, CCPA)
CCPA_DAYS = 45
GDPR_MONTHS = 1
GDPR_EXTENSION_MONTHS = 2


def add_months(at: datetime, months: int) -> datetime:
    """`at` moved by whole calendar months, the day clamped to the target month's last day."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def due_at(law: str, received_at: datetime) -> datetime:
    """When a request of `law` received at `received_at` must be answered."""
    if law == GDPR:
        return add_months(received_at, GDPR_MONTHS)
    if law == CCPA:
        return received_at + timedelta(days=CCPA_DAYS)
    raise ValueError(f"unknown law {law!r}")


def extended(law: str, due: datetime) -> datetime:
    """The due date after the one extension the law allows."""
    if law == GDPR:
        return add_months(due, GDPR_EXTENSION_MONTHS)
    if law == CCPA:
        return due + timedelta(days=CCPA_DAYS)
    raise ValueError(f"unknown law {law!r}")


def parse(value: str) -> datetime:
    """An ISO-8601 instant (a trailing `Z` allowed; no zone: UTC) as an aware UTC datetime."""
    at = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def iso(at: datetime) -> str:
    """UTC, whole seconds, `Z`."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
