"""Routes of the stress service: portfolio time series (api.md #22, #23)."""

from __future__ import annotations

import re
from datetime import date
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import envelope, parse_enum_multi
from common.auth import Principal, current_principal
from common.errors import ValidationFailed
from stress.compute.periods import EXPOSURE_PERIODS, INTERVALS, MAX_RANGE_YEARS, PERFORMANCE_PERIODS, earliest_start
from stress.repository import PortfolioRef
from stress.schemas import ExposureEnvelope, PerformanceEnvelope
from stress.timeseries import PortfolioTimeSeries, WindowQuery

_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,20}$")

PORTFOLIO_ID = Query(None, description="Portfolio to read; default: the caller's default portfolio")
START_DATE = Query(None, description="Explicit window start (inclusive); use instead of `period`")
END_DATE = Query(None, description="Window end (inclusive); default: the latest snapshot date")


def _choice(value: str | None, allowed: tuple[str, ...], field: str, default: str) -> str:
    if value is None:
        return default
    canonical = value.strip().lower()
    if canonical not in allowed:
        raise ValidationFailed.field(f"query.{field}", f"must be one of {', '.join(allowed)}", value)
    return canonical


def window_query(
    period: str | None, start_date: date | None, end_date: date | None, allowed: tuple[str, ...]
) -> WindowQuery:
    """Validate period / start_date / end_date (422 VALIDATION_ERROR naming the parameter)."""
    name = _choice(period, allowed, "period", "month")
    if period is not None and start_date is not None:
        raise ValidationFailed.field(
            "query.start_date", "give either period or start_date (with an optional end_date), not both", start_date
        )
    if start_date is not None and end_date is not None and start_date > end_date:
        raise ValidationFailed.field("query.start_date", "must be on or before end_date", start_date.isoformat())
    return WindowQuery(period=name, start=start_date, end=end_date)


def check_range(ref: PortfolioRef, query: WindowQuery) -> None:
    """An explicit range may span at most 5 years (api.md §2.8)."""
    end = PortfolioTimeSeries.resolve_end(ref, query)
    if query.start is not None and end is not None and query.start < earliest_start(end):
        raise ValidationFailed.field(
            "query.start_date", f"the range may span at most {MAX_RANGE_YEARS} years", query.start.isoformat()
        )


def benchmark_symbol(value: str | None, default: str) -> str | None:
    """Canonical benchmark symbol; None for `none` (omit the comparison)."""
    raw = default if value is None else value.strip()
    if raw.lower() == "none":
        return None
    if not _SYMBOL_RE.match(raw):
        raise ValidationFailed.field("query.benchmark", "must be a ticker symbol or `none`", value)
    return raw.upper()


def router(series: PortfolioTimeSeries) -> APIRouter:
    """The /api/v1/portfolio/exposures and /performance routes."""
    api = APIRouter(tags=["portfolio"])

    @api.get(
        "/api/v1/portfolio/exposures",
        summary="Exposure time series from daily snapshots",
        description=(
            "Daily (or weekly / monthly: the last snapshot of each bucket) points of equity, the capital view "
            "(`market_value`: signed market values, long/short by quantity sign, gross = long + |short|, "
            "net = long + short), the directional view (`exposure`: signed delta-adjusted dollar exposure, "
            "options as contracts × 100 × delta × underlying price), unsigned `notional`, and gross/net leverage "
            "(exposure / equity, fractions; null when equity ≤ 0). Money is USD as 2-dp strings; points ascend "
            "by date. Periods end at `end_date` or the latest snapshot: `week` = the last 7 calendar days, "
            "`month`/`quarter`/`year` = the last 1/3/12 calendar months, `ytd` = since 1 January, `inception` = "
            "all history (at most 5 years). An explicit `start_date`/`end_date` range may span at most 5 years. "
            "`partial` is true when history starts after the window's first trading day; no history → "
            "`points: []` and `data_status: no_history`."
        ),
        response_model=ExposureEnvelope,
        responses={404: {"description": "PORTFOLIO_NOT_FOUND"}, 422: {"description": "VALIDATION_ERROR"}},
    )
    async def get_exposures(
        request: Request,
        portfolio_id: UUID | None = PORTFOLIO_ID,
        period: str | None = Query(None, description="week | month (default) | quarter | ytd | year | inception"),
        start_date: date | None = START_DATE,
        end_date: date | None = END_DATE,
        interval: str | None = Query(None, description="daily (default) | weekly | monthly"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        query = window_query(period, start_date, end_date, EXPOSURE_PERIODS)
        bucket = _choice(interval, INTERVALS, "interval", "daily")
        ref = await series.resolve(principal, portfolio_id)
        check_range(ref, query)
        data, meta = await series.exposures(ref, query, bucket)
        return envelope(data, request=request, **meta)

    @api.get(
        "/api/v1/portfolio/performance",
        summary="P&L and performance metrics from daily snapshots",
        description=(
            "P&L (USD, 2-dp string: Σ daily P&L) and time-weighted return (fraction: Π(1 + daily_return) − 1, "
            "so deposits, withdrawals and uploads are not performance) over the period, plus `periods` "
            "(day, week, month, ytd ending at `end_date`, each `partial` when history does not cover it). "
            "`stats` (calculations.md §8.5, annualisation 252): annualised return and volatility, Sharpe and "
            "Sortino on daily excess returns over the 3-month T-bill (DGS3MO/252, last available value), max "
            "drawdown (≤ 0) on the wealth index starting at 1 with peak/trough/recovery dates, best/worst day, "
            "share of positive days, and the mean risk-free rate (fraction). Statistics need 60 daily returns "
            "(max drawdown 2); below that they are null and `data_status` is `insufficient_history`. "
            "`benchmark` (default SPY, `none` omits) compares the adjusted-close return over the same window "
            "and gives the realised beta (OLS slope of portfolio on benchmark daily returns), alpha and "
            "correlation. `include=series` adds the per-day series."
        ),
        response_model=PerformanceEnvelope,
        responses={
            404: {"description": "PORTFOLIO_NOT_FOUND, or SYMBOL_NOT_FOUND for a benchmark without price history"},
            422: {"description": "VALIDATION_ERROR"},
        },
    )
    async def get_performance(
        request: Request,
        portfolio_id: UUID | None = PORTFOLIO_ID,
        period: str | None = Query(None, description="day | week | month (default) | quarter | ytd | year | inception"),
        start_date: date | None = START_DATE,
        end_date: date | None = END_DATE,
        benchmark: str | None = Query(None, description="Benchmark symbol (default SPY); `none` omits it"),
        include: str | None = Query(None, description="Optional blocks: series"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        query = window_query(period, start_date, end_date, PERFORMANCE_PERIODS)
        symbol = benchmark_symbol(benchmark, series.default_benchmark)
        include_series = "series" in parse_enum_multi(include, ("series",), "include")
        ref = await series.resolve(principal, portfolio_id)
        check_range(ref, query)
        data, meta = await series.performance(ref, query, symbol, include_series)
        return envelope(data, request=request, **meta)

    return api
