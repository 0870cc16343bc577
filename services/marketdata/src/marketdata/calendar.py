"""NYSE trading calendar (exchange-calendars XNYS, 2015-01-01 … 2035-12-31).

Pure helpers that need no database: the calendar is built once per process from
exchange-calendars and kept as sorted numpy arrays, so lookups are binary searches. The seed
materialises the same data into `marketdata.trading_day` and `marketdata.market_holiday`
(`trading_day_rows()`, `holiday_rows()`), which other services read through
`marketdata.api_trading_day`.

A trading day counts as completed once its close has passed: 16:00 America/New_York, or the
early-close time (usually 13:00) on early-close days.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

CALENDAR_START = date(2015, 1, 1)
CALENDAR_END = date(2035, 12, 31)
EXCHANGE = "XNYS"
NEW_YORK = ZoneInfo("America/New_York")
REGULAR_CLOSE = time(16, 0)

_ADHOC_NAMES = {
    date(2018, 12, 5): "National Day of Mourning (George H. W. Bush)",
    date(2025, 1, 9): "National Day of Mourning (Jimmy Carter)",
}


class CalendarRangeError(ValueError):
    """A date outside the materialised calendar (2015-01-01 … 2035-12-31)."""


@dataclass(frozen=True)
class Holiday:
    """A weekday on which NYSE is closed, or closes early."""

    holiday_date: date
    name: str
    early_close: bool
    close_time: time | None


@dataclass(frozen=True)
class TradingDay:
    """One NYSE session with its neighbours and close."""

    trading_date: date
    previous_trading_date: date | None
    next_trading_date: date | None
    early_close: bool
    close_at: datetime


@dataclass(frozen=True)
class _Calendar:
    sessions: np.ndarray  # datetime64[D], sorted
    closes_ns: np.ndarray  # int64 epoch ns of each session's close (UTC), same order
    early: np.ndarray  # bool per session
    holidays: tuple[Holiday, ...]


def _d64(d: date) -> np.datetime64:
    return np.datetime64(d.isoformat(), "D")


def _to_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


@functools.lru_cache(maxsize=1)
def _calendar() -> _Calendar:
    import exchange_calendars as xc
    import pandas as pd

    with warnings.catch_warnings():
        # exchange-calendars 4.x reads tz-aware Series.values, deprecated in pandas 3.1 (harmless here).
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = xc.get_calendar(EXCHANGE, start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat())
    sessions = cal.sessions
    closes = cal.closes.loc[sessions]
    sessions_d = np.array([ts.date().isoformat() for ts in sessions], dtype="datetime64[D]")
    closes_ns = np.array([int(ts.value) for ts in closes], dtype=np.int64)
    regular_close_local = [ts.tz_convert(NEW_YORK).time() for ts in closes]
    early = np.array([t < REGULAR_CLOSE for t in regular_close_local], dtype=bool)

    start, end = pd.Timestamp(CALENDAR_START), pd.Timestamp(CALENDAR_END)
    names: dict[date, str] = {}
    for ts, name in cal.regular_holidays.holidays(start, end, return_name=True).items():
        names[ts.date()] = str(name)
    early_names: dict[date, str] = {}
    for _close, holiday_cal in cal.special_closes:
        for ts, name in holiday_cal.holidays(start, end, return_name=True).items():
            early_names[ts.date()] = str(name)

    session_set = set(sessions_d.tolist())
    holidays: list[Holiday] = []
    day = CALENDAR_START
    while day <= CALENDAR_END:
        if day.weekday() < 5 and day not in session_set:
            holidays.append(Holiday(day, names.get(day) or _ADHOC_NAMES.get(day, "Market closed"), False, None))
        day += timedelta(days=1)
    for i in np.flatnonzero(early):
        d = _to_date(sessions_d[i])
        holidays.append(Holiday(d, early_names.get(d, "Early close"), True, regular_close_local[i]))
    holidays.sort(key=lambda h: h.holiday_date)
    return _Calendar(sessions_d, closes_ns, early, tuple(holidays))


def _check(d: date) -> None:
    if d < CALENDAR_START or d > CALENDAR_END:
        raise CalendarRangeError(f"{d.isoformat()} is outside the trading calendar ({CALENDAR_START}…{CALENDAR_END})")


def _index(d: date) -> int | None:
    cal = _calendar()
    i = int(np.searchsorted(cal.sessions, _d64(d)))
    if i < len(cal.sessions) and cal.sessions[i] == _d64(d):
        return i
    return None


def is_trading_day(d: date) -> bool:
    """True when NYSE has a session on `d` (early-close days included)."""
    _check(d)
    return _index(d) is not None


def is_early_close(d: date) -> bool:
    """True when `d` is a session that closes before 16:00 ET."""
    _check(d)
    i = _index(d)
    return i is not None and bool(_calendar().early[i])


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before `d` (prev(t) of calculations.md §0.1)."""
    _check(d)
    cal = _calendar()
    i = int(np.searchsorted(cal.sessions, _d64(d), side="left")) - 1
    if i < 0:
        raise CalendarRangeError(f"no trading day before {d.isoformat()} in the calendar")
    return _to_date(cal.sessions[i])


def next_trading_day(d: date) -> date:
    """The first trading day strictly after `d`."""
    _check(d)
    cal = _calendar()
    i = int(np.searchsorted(cal.sessions, _d64(d), side="right"))
    if i >= len(cal.sessions):
        raise CalendarRangeError(f"no trading day after {d.isoformat()} in the calendar")
    return _to_date(cal.sessions[i])


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in [start, end], both inclusive, ascending."""
    if end < start:
        return []
    _check(start)
    _check(end)
    cal = _calendar()
    lo = int(np.searchsorted(cal.sessions, _d64(start), side="left"))
    hi = int(np.searchsorted(cal.sessions, _d64(end), side="right"))
    return [date.fromisoformat(s) for s in np.datetime_as_string(cal.sessions[lo:hi], unit="D")]


def shift_trading_days(d: date, n: int) -> date:
    """The trading day `n` sessions before (n > 0) the last trading day on or before `d`."""
    _check(d)
    cal = _calendar()
    i = int(np.searchsorted(cal.sessions, _d64(d), side="right")) - 1 - n
    if i < 0 or i >= len(cal.sessions):
        raise CalendarRangeError(f"{n} trading days before {d.isoformat()} is outside the calendar")
    return _to_date(cal.sessions[i])


def session_close(d: date) -> datetime:
    """The UTC close of trading day `d` (16:00 ET, or the early close)."""
    _check(d)
    i = _index(d)
    if i is None:
        raise ValueError(f"{d.isoformat()} is not a trading day")
    return datetime.fromtimestamp(int(_calendar().closes_ns[i]) / 1e9, UTC)


def latest_completed_trading_day(now_utc: datetime) -> date:
    """The latest trading day whose close (16:00 ET or early close) is at or before `now_utc`."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    cal = _calendar()
    now_ns = int(now_utc.timestamp() * 1_000_000) * 1000
    i = int(np.searchsorted(cal.closes_ns, now_ns, side="right")) - 1
    if i < 0:
        raise CalendarRangeError(f"no completed trading day before {now_utc.isoformat()}")
    return _to_date(cal.sessions[i])


def holidays(start: date = CALENDAR_START, end: date = CALENDAR_END) -> list[Holiday]:
    """Full-day weekday closures and early closes in [start, end]."""
    return [h for h in _calendar().holidays if start <= h.holiday_date <= end]


def trading_day_rows() -> list[TradingDay]:
    """Every session 2015–2035 with previous/next trading dates (seed of `marketdata.trading_day`)."""
    cal = _calendar()
    days = [date.fromisoformat(s) for s in np.datetime_as_string(cal.sessions, unit="D")]
    out: list[TradingDay] = []
    for i, d in enumerate(days):
        out.append(
            TradingDay(
                trading_date=d,
                previous_trading_date=days[i - 1] if i > 0 else None,
                next_trading_date=days[i + 1] if i + 1 < len(days) else None,
                early_close=bool(cal.early[i]),
                close_at=datetime.fromtimestamp(int(cal.closes_ns[i]) / 1e9, UTC),
            )
        )
    return out
