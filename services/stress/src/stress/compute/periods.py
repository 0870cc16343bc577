"""Period windows and time buckets of the time-series endpoints (api.md #22, #23).

A window is the inclusive date range [start, end] of the snapshots it shows. Snapshot `t` carries
the move from the previous close to the close of `t`, so a window [start, end] measures the
performance from the last close before `start` to the close of `end`.

Period definitions (`end` = the requested end_date, else the latest snapshot date):

* `day`       the last snapshot on or before `end` alone (its own daily P&L and return);
* `week`      (end − 7 calendar days, end]              → start = end − 6 days;
* `month`     (end − 1 calendar month, end]             → 2026-11-24 starts 2026-10-25;
* `quarter`   (end − 3 calendar months, end];
* `year`      (end − 12 calendar months, end];
* `ytd`       1 January of end's year .. end (the move from the last close of the previous year);
* `inception` the first snapshot .. end, cut to the last 5 years (the cut is reported as partial).

Month arithmetic clamps to the end of a shorter month (31 March − 1 month = 28/29 February).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

EXPOSURE_PERIODS: tuple[str, ...] = ("week", "month", "quarter", "ytd", "year", "inception")
PERFORMANCE_PERIODS: tuple[str, ...] = ("day", *EXPOSURE_PERIODS)
INTERVALS: tuple[str, ...] = ("daily", "weekly", "monthly")
MAX_RANGE_YEARS = 5


def shift_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, clamped to the last day of the target month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def earliest_start(end: date) -> date:
    """The earliest start a window ending on `end` may have (5 years, api.md §2.8)."""
    return shift_months(end, -12 * MAX_RANGE_YEARS) + timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """An inclusive date window; `cut` when it was shortened to the 5-year maximum."""

    start: date
    end: date
    cut: bool = False


def period_window(
    period: str, end: date, *, first_available: date | None, last_on_or_before_end: date | None
) -> Window:
    """The window of a named period ending on `end` (definitions in the module docstring)."""
    if period == "day":
        start = last_on_or_before_end or end
        return Window(start, end)
    if period == "week":
        return Window(end - timedelta(days=6), end)
    if period == "month":
        return Window(shift_months(end, -1) + timedelta(days=1), end)
    if period == "quarter":
        return Window(shift_months(end, -3) + timedelta(days=1), end)
    if period == "year":
        return Window(shift_months(end, -12) + timedelta(days=1), end)
    if period == "ytd":
        return Window(date(end.year, 1, 1), end)
    if period == "inception":
        start = first_available if first_available is not None and first_available <= end else end
        floor = earliest_start(end)
        if start < floor:
            return Window(floor, end, cut=True)
        return Window(start, end)
    raise ValueError(f"unknown period {period!r}")


def bucket_last_mask(dates: np.ndarray, interval: str) -> np.ndarray:
    """Mask of the last date of each bucket in ascending `dates` (datetime64[D]).

    `daily` keeps every date; `weekly` keeps the last snapshot of each Monday-Sunday week;
    `monthly` the last snapshot of each calendar month (snapshots exist on trading days only, so
    this is the last trading day of the bucket that has data).
    """
    if interval == "daily" or dates.size == 0:
        return np.ones(dates.shape, dtype=bool)
    if interval == "weekly":
        # 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
        keys = (dates.astype("datetime64[D]").astype(np.int64) + 3) // 7
    elif interval == "monthly":
        keys = dates.astype("datetime64[M]").astype(np.int64)
    else:
        raise ValueError(f"unknown interval {interval!r}")
    mask = np.ones(dates.shape, dtype=bool)
    mask[:-1] = keys[:-1] != keys[1:]
    return mask
