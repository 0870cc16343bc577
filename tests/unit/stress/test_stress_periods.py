"""Period windows and interval buckets of the time-series endpoints."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from stress.compute.periods import bucket_last_mask, earliest_start, period_window, shift_months

END = date(2026, 11, 24)  # a Tuesday


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("week", date(2026, 11, 18)),
        ("month", date(2026, 10, 25)),
        ("quarter", date(2026, 8, 25)),
        ("year", date(2025, 11, 25)),
        ("ytd", date(2026, 1, 1)),
    ],
)
def test_named_periods_end_on_the_end_date(period: str, start: date) -> None:
    window = period_window(period, END, first_available=date(2020, 1, 2), last_on_or_before_end=END)
    assert (window.start, window.end, window.cut) == (start, END, False)


def test_day_is_the_last_snapshot_on_or_before_the_end() -> None:
    window = period_window("day", date(2026, 11, 22), first_available=None, last_on_or_before_end=date(2026, 11, 20))
    assert window.start == date(2026, 11, 20)


def test_inception_starts_at_the_first_snapshot_and_is_cut_to_five_years() -> None:
    recent = period_window("inception", END, first_available=date(2026, 7, 1), last_on_or_before_end=END)
    assert (recent.start, recent.cut) == (date(2026, 7, 1), False)
    old = period_window("inception", END, first_available=date(2015, 1, 2), last_on_or_before_end=END)
    assert (old.start, old.cut) == (earliest_start(END), True)
    assert earliest_start(END) == date(2021, 11, 25)


def test_month_arithmetic_clamps_to_month_end() -> None:
    assert shift_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert shift_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert shift_months(date(2026, 1, 15), -3) == date(2025, 10, 15)


def test_unknown_period_is_rejected() -> None:
    with pytest.raises(ValueError, match="decade"):
        period_window("decade", END, first_available=None, last_on_or_before_end=None)


def test_weekly_and_monthly_buckets_keep_the_last_snapshot_of_each_bucket() -> None:
    dates = np.array(
        ["2026-10-29", "2026-10-30", "2026-11-02", "2026-11-05", "2026-11-06", "2026-11-09"], dtype="datetime64[D]"
    )
    weekly = dates[bucket_last_mask(dates, "weekly")]
    assert weekly.astype(str).tolist() == ["2026-10-30", "2026-11-06", "2026-11-09"]
    monthly = dates[bucket_last_mask(dates, "monthly")]
    assert monthly.astype(str).tolist() == ["2026-10-30", "2026-11-09"]
    assert bucket_last_mask(dates, "daily").all()
