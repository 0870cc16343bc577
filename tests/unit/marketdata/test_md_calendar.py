"""NYSE calendar helpers: holidays, early closes, weekends and the latest completed trading day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from marketdata import calendar


def test_weekends_and_full_holidays_are_not_trading_days() -> None:
    assert calendar.is_trading_day(date(2026, 11, 24))
    assert not calendar.is_trading_day(date(2026, 11, 28))  # Saturday
    assert not calendar.is_trading_day(date(2026, 11, 29))  # Sunday
    for holiday in (
        date(2026, 11, 26),  # Thanksgiving
        date(2026, 4, 3),  # Good Friday
        date(2026, 6, 19),  # Juneteenth
        date(2026, 7, 3),  # Independence Day observed (4 July is a Saturday)
        date(2026, 12, 25),
        date(2025, 1, 9),  # National Day of Mourning (Carter)
        date(2018, 12, 5),  # National Day of Mourning (Bush)
    ):
        assert not calendar.is_trading_day(holiday), holiday
    # Columbus and Veterans Day: bond market closed, NYSE open.
    assert calendar.is_trading_day(date(2026, 10, 12)) and calendar.is_trading_day(date(2026, 11, 11))


def test_early_closes_are_trading_days_that_close_at_13_00_new_york() -> None:
    for d in (date(2026, 11, 27), date(2026, 12, 24), date(2025, 7, 3)):
        assert calendar.is_trading_day(d) and calendar.is_early_close(d), d
        assert calendar.session_close(d).astimezone(calendar.NEW_YORK).time() == time(13, 0)
    assert not calendar.is_early_close(date(2026, 11, 24))
    assert calendar.session_close(date(2026, 11, 24)) == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    assert calendar.session_close(date(2026, 7, 1)) == datetime(2026, 7, 1, 20, 0, tzinfo=UTC)  # EDT


def test_holiday_list_names_closures_and_flags_early_closes() -> None:
    by_date = {h.holiday_date: h for h in calendar.holidays(date(2026, 1, 1), date(2026, 12, 31))}
    assert by_date[date(2026, 11, 26)].name == "Thanksgiving" and not by_date[date(2026, 11, 26)].early_close
    assert by_date[date(2026, 11, 27)].early_close and by_date[date(2026, 11, 27)].close_time == time(13, 0)
    full = [h for h in by_date.values() if not h.early_close]
    assert len(full) == 10  # NYSE 2026 full-day holidays
    assert all(h.holiday_date.weekday() < 5 for h in by_date.values())
    mourning = {h.holiday_date: h.name for h in calendar.holidays(date(2025, 1, 1), date(2025, 1, 31))}
    assert mourning[date(2025, 1, 9)].startswith("National Day of Mourning")


def test_previous_and_next_trading_day_skip_weekends_and_holidays() -> None:
    assert calendar.previous_trading_day(date(2026, 11, 30)) == date(2026, 11, 27)
    assert calendar.previous_trading_day(date(2026, 11, 27)) == date(2026, 11, 25)  # over Thanksgiving
    assert calendar.previous_trading_day(date(2026, 11, 29)) == date(2026, 11, 27)  # from a Sunday
    assert calendar.next_trading_day(date(2026, 11, 25)) == date(2026, 11, 27)
    assert calendar.next_trading_day(date(2026, 12, 24)) == date(2026, 12, 28)


def test_trading_days_range_is_inclusive_and_counts_sessions() -> None:
    days = calendar.trading_days(date(2026, 11, 23), date(2026, 11, 30))
    assert days == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30)]
    assert calendar.trading_days(date(2026, 11, 30), date(2026, 11, 23)) == []
    assert len(calendar.trading_days(date(2025, 1, 1), date(2025, 12, 31))) == 250
    assert calendar.shift_trading_days(date(2026, 11, 24), 5) == date(2026, 11, 17)
    assert calendar.shift_trading_days(date(2026, 11, 28), 0) == date(2026, 11, 27)


def test_latest_completed_trading_day_turns_over_at_the_16_00_close() -> None:
    # 2026-11-25 is a regular day in EST (UTC-5): the close is 21:00 UTC.
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 25, 20, 59, 59, tzinfo=UTC)) == date(2026, 11, 24)
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 25, 21, 0, tzinfo=UTC)) == date(2026, 11, 25)
    # Summer (EDT, UTC-4): the close is 20:00 UTC.
    assert calendar.latest_completed_trading_day(datetime(2026, 7, 1, 19, 59, tzinfo=UTC)) == date(2026, 6, 30)
    assert calendar.latest_completed_trading_day(datetime(2026, 7, 1, 20, 0, tzinfo=UTC)) == date(2026, 7, 1)


def test_latest_completed_trading_day_uses_the_early_close_time() -> None:
    # Friday after Thanksgiving closes at 13:00 ET = 18:00 UTC.
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 27, 17, 59, tzinfo=UTC)) == date(2026, 11, 25)
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 27, 18, 0, tzinfo=UTC)) == date(2026, 11, 27)


def test_latest_completed_trading_day_on_weekends_and_mornings_is_the_previous_session() -> None:
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 28, 15, 0, tzinfo=UTC)) == date(2026, 11, 27)
    assert calendar.latest_completed_trading_day(datetime(2026, 11, 30, 14, 0, tzinfo=UTC)) == date(2026, 11, 27)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.latest_completed_trading_day(datetime(2026, 11, 30, 14, 0))


def test_dates_outside_the_materialised_calendar_are_rejected() -> None:
    with pytest.raises(calendar.CalendarRangeError):
        calendar.is_trading_day(date(2014, 12, 31))
    with pytest.raises(calendar.CalendarRangeError):
        calendar.previous_trading_day(date(2036, 1, 2))


def test_trading_day_rows_link_each_session_to_its_neighbours() -> None:
    rows = calendar.trading_day_rows()
    assert rows[0].trading_date == date(2015, 1, 2) and rows[0].previous_trading_date is None
    assert rows[-1].next_trading_date is None
    by_date = {r.trading_date: r for r in rows}
    friday = by_date[date(2026, 11, 27)]
    assert friday.previous_trading_date == date(2026, 11, 25) and friday.next_trading_date == date(2026, 11, 30)
    assert friday.early_close and friday.close_at == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
