"""Gauges behind the "daily cycle missed its deadline" alert (deploy/prometheus/alerts.yml).

The expected as-of date moves forward at each session's close (holidays and early closes come from
the exchange calendar), the completed one when a run-all run for that date completes. The alert
fires when expected > completed some hours after the close; both are dates as Unix time of
00:00 UTC so PromQL can compare them and subtract them from `time()`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prometheus_client import Gauge

from common import metrics
from marketdata import batch_repository as repo
from marketdata.context import MarketDataContext
from marketdata.market_data import default_as_of

SERVICE = "marketdata"


def expected_gauge() -> Gauge:
    """sigmasight_marketdata_cycle_expected_as_of_timestamp_seconds."""
    return metrics.gauge(
        SERVICE,
        "cycle_expected_as_of_timestamp_seconds",
        "Business date the daily cycle should cover by now (latest closed session with data), 00:00 UTC",
    )


def completed_gauge() -> Gauge:
    """sigmasight_marketdata_cycle_completed_as_of_timestamp_seconds (0 before the first completed cycle)."""
    return metrics.gauge(
        SERVICE,
        "cycle_completed_as_of_timestamp_seconds",
        "Business date of the latest completed daily cycle (run-all), 00:00 UTC; 0 when none",
    )


def date_timestamp(value: date) -> float:
    """Unix time of 00:00 UTC on `value`."""
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


async def refresh_cycle_gauges(ctx: MarketDataContext, now: datetime) -> None:
    """Set both gauges from the calendar and the latest completed run-all run."""
    expected_gauge().set(date_timestamp(default_as_of(ctx, now)))
    async with ctx.db.session() as session:
        completed = await repo.last_completed_cycle_as_of(session)
    completed_gauge().set(date_timestamp(completed) if completed is not None else 0.0)
