"""Schedule maths: next firing across weekends, NYSE holidays and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from marketdata.batch_compute import next_fire, validate_cron
from marketdata.scheduler import DEFAULT_SCHEDULES, schedule_next_run, trading_day_predicate

NY = ZoneInfo("America/New_York")
DAILY = next(s for s in DEFAULT_SCHEDULES if s.name == "daily_run")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def daily_after(moment: datetime) -> datetime:
    return schedule_next_run(DAILY, moment)


def test_daily_run_fires_later_the_same_trading_day() -> None:
    assert daily_after(ny(2026, 11, 24, 15, 0)) == datetime(2026, 11, 24, 21, 30, tzinfo=UTC)


def test_daily_run_skips_the_weekend() -> None:
    assert daily_after(ny(2026, 11, 20, 16, 31)) == datetime(2026, 11, 23, 21, 30, tzinfo=UTC)


def test_daily_run_skips_thanksgiving_and_fires_on_the_early_close_friday() -> None:
    # 2026-11-26 is Thanksgiving (closed); 2026-11-27 closes at 13:00 but is a trading day.
    assert daily_after(ny(2026, 11, 25, 17, 0)) == datetime(2026, 11, 27, 21, 30, tzinfo=UTC)


def test_daily_run_skips_christmas_and_good_friday() -> None:
    assert daily_after(ny(2026, 12, 24, 17, 0)) == datetime(2026, 12, 28, 21, 30, tzinfo=UTC)
    # Good Friday 2026-04-03: from Thursday evening to Monday (EDT: 16:30 = 20:30Z).
    assert daily_after(ny(2026, 4, 2, 17, 0)) == datetime(2026, 4, 6, 20, 30, tzinfo=UTC)


def test_daily_run_keeps_16_30_new_york_across_dst_changes() -> None:
    # DST starts 2026-03-08: Friday 21:30Z (EST) → Monday 20:30Z (EDT).
    assert daily_after(ny(2026, 3, 5, 17, 0)) == datetime(2026, 3, 6, 21, 30, tzinfo=UTC)
    assert daily_after(ny(2026, 3, 6, 17, 0)) == datetime(2026, 3, 9, 20, 30, tzinfo=UTC)
    # DST ends 2026-11-01: Friday 20:30Z (EDT) → Monday 21:30Z (EST).
    assert daily_after(ny(2026, 10, 29, 17, 0)) == datetime(2026, 10, 30, 20, 30, tzinfo=UTC)
    assert daily_after(ny(2026, 10, 30, 17, 0)) == datetime(2026, 11, 2, 21, 30, tzinfo=UTC)


def test_calendar_schedules_without_trading_day_rule_fire_on_weekends_and_holidays() -> None:
    housekeeping = next(s for s in DEFAULT_SCHEDULES if s.name == "housekeeping")
    assert schedule_next_run(housekeeping, ny(2026, 11, 25, 4, 0)) == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    backfill = next(s for s in DEFAULT_SCHEDULES if s.name == "history_backfill")
    # Sunday 02:00 New York.
    assert schedule_next_run(backfill, ny(2026, 11, 25, 12, 0)) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


def test_seeded_schedules_match_the_spec() -> None:
    by_name = {s.name: s for s in DEFAULT_SCHEDULES}
    assert set(by_name) == {"daily_run", "data_quality_check", "history_backfill", "housekeeping"}
    assert by_name["daily_run"].cron == "30 16 * * 1-5" and by_name["daily_run"].trading_days_only
    assert by_name["data_quality_check"].cron == "0 19 * * 1-5"
    assert by_name["history_backfill"].cron == "0 2 * * 0"
    assert by_name["housekeeping"].cron == "0 3 * * *"
    assert all(s.timezone == "America/New_York" and s.enabled for s in DEFAULT_SCHEDULES)


def test_next_fire_is_strictly_after_the_given_instant() -> None:
    at = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
    assert next_fire(
        "30 16 * * 1-5", "America/New_York", at, trading_days_only=True, is_trading_day=trading_day_predicate
    ) == datetime(2026, 11, 25, 21, 30, tzinfo=UTC)


def test_invalid_cron_is_rejected() -> None:
    with pytest.raises(ValueError):
        validate_cron("30 16 * *")
    with pytest.raises(ValueError):
        validate_cron("61 16 * * 1-5")
