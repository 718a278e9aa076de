"""The legal deadlines of data-subject requests (contract: "Privacy operations"): GDPR one calendar month
with month-end clamping, extended once by two months; CCPA 45 days, extended by 45."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import privacy_dates as dates


def at(text: str) -> datetime:
    return dates.parse(text)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-01-15T10:30:00Z", "2026-02-15T10:30:00Z"),  # the same day of the next month, same time
        ("2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z"),  # February has no 31st: its last day
        ("2028-01-31T09:00:00Z", "2028-02-29T09:00:00Z"),  # leap year
        ("2028-01-29T09:00:00Z", "2028-02-29T09:00:00Z"),
        ("2026-01-29T09:00:00Z", "2026-02-28T09:00:00Z"),  # not a leap year
        ("2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"),  # a 30-day month
        ("2026-04-30T00:00:00Z", "2026-05-30T00:00:00Z"),  # not the next month's end: the same day
        ("2026-02-28T12:00:00Z", "2026-03-28T12:00:00Z"),
        ("2026-12-31T23:59:59Z", "2027-01-31T23:59:59Z"),  # across the year
        ("2026-11-30T08:00:00Z", "2026-12-30T08:00:00Z"),
    ],
)
def test_gdpr_due_is_one_calendar_month_clamped_to_the_months_end(received: str, due: str) -> None:
    assert dates.iso(dates.due_at(dates.GDPR, at(received))) == due


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-01-31T09:00:00Z", "2026-03-17T09:00:00Z"),
        ("2028-02-01T00:00:00Z", "2028-03-17T00:00:00Z"),  # 29 days of February 2028 counted
        ("2026-02-01T00:00:00Z", "2026-03-18T00:00:00Z"),
        ("2026-12-01T10:00:00Z", "2027-01-15T10:00:00Z"),
    ],
)
def test_ccpa_due_is_45_days(received: str, due: str) -> None:
    assert dates.iso(dates.due_at(dates.CCPA, at(received))) == due


def test_gdpr_extension_moves_the_due_date_by_two_months_clamped() -> None:
    due = dates.due_at(dates.GDPR, at("2026-01-31T09:00:00Z"))  # 28 February
    assert dates.iso(dates.extended(dates.GDPR, due)) == "2026-04-28T09:00:00Z"
    assert dates.iso(dates.extended(dates.GDPR, at("2026-12-31T00:00:00Z"))) == "2027-02-28T00:00:00Z"
    assert dates.iso(dates.extended(dates.GDPR, at("2027-12-31T00:00:00Z"))) == "2028-02-29T00:00:00Z"


def test_ccpa_extension_adds_45_days() -> None:
    due = dates.due_at(dates.CCPA, at("2026-01-01T00:00:00Z"))
    assert dates.iso(due) == "2026-02-15T00:00:00Z"
    assert dates.iso(dates.extended(dates.CCPA, due)) == "2026-04-01T00:00:00Z"


def test_times_are_read_as_utc_and_an_unknown_law_is_refused() -> None:
    assert dates.parse("2026-01-31T10:00:00+02:00") == datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert dates.parse("2026-01-31T10:00:00") == datetime(2026, 1, 31, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        dates.due_at("lgpd", at("2026-01-01T00:00:00Z"))
    with pytest.raises(ValueError):
        dates.parse("next tuesday")
