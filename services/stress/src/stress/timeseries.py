"""Exposure and performance time series from stored snapshots (api.md #22, #23).

Async orchestration only: `repository.TimeSeriesReader` fetches columns, `compute` does the maths,
this module shapes the response (money via common.formatting.money, statistics via stat).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import numpy as np

from common.auth import Principal, resolve_portfolio
from common.errors import NotFound
from common.formatting import iso_date, money, stat
from stress.compute import performance as perf
from stress.compute.periods import Window, bucket_last_mask, period_window
from stress.repository import PortfolioRef, TimeSeriesReader, cents_to_decimal

SUMMARY_PERIODS: tuple[str, ...] = ("day", "week", "month", "ytd")


@dataclass(frozen=True)
class WindowQuery:
    """A validated window request: a named period, or an explicit start (end optional for both)."""

    period: str
    start: date | None = None
    end: date | None = None

    @property
    def label(self) -> str:
        return "custom" if self.start is not None else self.period


def _money_cents(cents: float | None) -> str | None:
    return money(cents_to_decimal(cents))


def _stat(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else stat(value)


def _day(value: np.datetime64) -> date:
    result: date = value.astype("datetime64[D]").item()
    return result


def _dates(values: list[date] | None) -> np.ndarray:
    return np.asarray(values or [], dtype="datetime64[D]")


def _floats(values: list[Any] | None) -> np.ndarray:
    return np.asarray(values or [], dtype=np.float64)


class PortfolioTimeSeries:
    """Builds the bodies of GET /api/v1/portfolio/exposures and /performance."""

    def __init__(self, reader: TimeSeriesReader, default_benchmark: str = "SPY") -> None:
        self.reader = reader
        self.default_benchmark = default_benchmark

    async def resolve(self, principal: Principal, portfolio_id: UUID | None) -> PortfolioRef:
        """The requested portfolio, or the caller's default; 404 when absent or someone else's."""
        return await resolve_portfolio(
            principal, portfolio_id, by_id=self.reader.portfolio_by_id, default_of=self.reader.default_portfolio
        )

    @staticmethod
    def resolve_end(ref: PortfolioRef, query: WindowQuery) -> date | None:
        """The window end: end_date, else the latest snapshot (never before an explicit start)."""
        if query.end is not None:
            return query.end
        if query.start is not None:
            return max(ref.last_date or query.start, query.start)
        return ref.last_date

    def _window(self, ref: PortfolioRef, query: WindowQuery, end: date) -> Window:
        if query.start is not None:
            return Window(query.start, end)
        return period_window(query.period, end, first_available=ref.first_date, last_on_or_before_end=None)

    async def _context(self, ref: PortfolioRef, start: date | None) -> tuple[dict[str, Any], date | None, date | None]:
        ctx = await self.reader.market_context(ref.last_date, start)
        meta = {"as_of": iso_date(ref.last_date), "data_source": "fixture" if ctx["source"] == "fixture" else "live"}
        return meta, ctx["spy_last"], ctx["first_trading"]

    def _freshness(self, ref: PortfolioRef, spy_last: date | None, partial_points: int) -> str:
        if ref.last_date is not None and spy_last is not None and ref.last_date < spy_last:
            return "stale"
        return "partial" if partial_points else "fresh"

    # -- #22 ----------------------------------------------------------------------------------

    async def exposures(
        self, ref: PortfolioRef, query: WindowQuery, interval: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Exposure points (both views of #21) of the window, one per trading day or bucket."""
        end = self.resolve_end(ref, query)
        window = self._window(ref, query, end) if end is not None else None
        meta, spy_last, first_trading = await self._context(ref, window.start if window else None)
        body: dict[str, Any] = {
            "portfolio_id": str(ref.id),
            "period": query.label,
            "interval": interval,
            "start_date": iso_date(window.start if window else query.start),
            "end_date": iso_date(end),
            "partial": True,
            "first_available_date": iso_date(ref.first_date),
            "data_status": "no_history",
            "points": [],
            "coverage": {"partial_points": 0},
        }
        if window is None:
            return body, meta
        rows = await self.reader.exposure_points(ref.id, window.start, window.end)
        dates = rows["dates"] if rows is not None and rows["dates"] else []
        # History covers the window when it starts on or before the window's first trading day.
        first_needed = first_trading if first_trading is not None and first_trading <= window.end else window.start
        body["partial"] = window.cut or ref.first_date is None or ref.first_date > max(first_needed, window.start)
        if not dates:
            return body, meta
        assert rows is not None
        keep = np.flatnonzero(bucket_last_mask(_dates(dates), interval)).tolist()
        body["points"] = [self._exposure_point(rows, i) for i in keep]
        partial_points = int(rows["partial_points"])
        body["coverage"] = {"partial_points": partial_points}
        body["data_status"] = self._freshness(ref, spy_last, partial_points)
        return body, meta

    @staticmethod
    def _exposure_point(rows: Any, i: int) -> dict[str, Any]:
        return {
            "date": rows["dates"][i].isoformat(),
            "equity": money(rows["equity"][i]),
            "market_value": {
                "long": money(rows["long_mv"][i]),
                "short": money(rows["short_mv"][i]),
                "gross": money(rows["gross_mv"][i]),
                "net": money(rows["net_mv"][i]),
            },
            "exposure": {
                "long": money(rows["long_exposure"][i]),
                "short": money(rows["short_exposure"][i]),
                "gross": money(rows["gross_exposure"][i]),
                "net": money(rows["net_exposure"][i]),
            },
            "notional": money(rows["notional"][i]),
            "gross_leverage": _stat(rows["gross_leverage"][i]),
            "net_leverage": _stat(rows["net_leverage"][i]),
        }

    # -- #23 ----------------------------------------------------------------------------------

    async def performance(
        self, ref: PortfolioRef, query: WindowQuery, benchmark: str | None, include_series: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """P&L, time-weighted return, period blocks, §8.5 statistics and benchmark comparison."""
        end = self.resolve_end(ref, query)
        body: dict[str, Any] = {
            "portfolio_id": str(ref.id),
            "period": query.label,
            "start_date": iso_date(query.start),
            "end_date": iso_date(end),
            "partial": True,
            "first_available_date": iso_date(ref.first_date),
            "observations": 0,
            "pnl": None,
            "return": None,
            "periods": {
                name: {"start_date": None, "pnl": None, "return": None, "partial": True} for name in SUMMARY_PERIODS
            },
            "stats": None,
            "benchmark": None,
            "series": [] if include_series else None,
            "data_status": "no_history",
            "coverage": {"partial_points": 0},
        }
        if end is None:
            meta, _, _ = await self._context(ref, None)
            if benchmark is not None:  # an unknown benchmark is still a 404 without portfolio history
                await self._require_benchmark(benchmark, date.min, date.min)
            return body, meta

        windows = {
            name: period_window(name, end, first_available=ref.first_date, last_on_or_before_end=None)
            for name in SUMMARY_PERIODS
            if name != "day"
        }
        main = self._window(ref, query, end) if query.period != "day" or query.start else None
        starts = [w.start for w in windows.values()] + ([main.start] if main else [end])
        rows = await self.reader.performance_rows(ref.id, min(starts), end)
        series = perf.SnapshotSeries.build(
            _dates(rows["dates"] if rows else None),
            _floats(rows["equity"] if rows else None),
            _floats(rows["daily_pnl"] if rows else None),
            _floats(rows["daily_return"] if rows else None),
        )
        partial_flags = np.asarray((rows["partial"] if rows else None) or [], dtype=bool)
        last_day = _day(series.dates[-1]) if series.dates.size else None
        windows["day"] = period_window("day", end, first_available=ref.first_date, last_on_or_before_end=last_day)
        if main is None:
            main = windows["day"]

        meta, spy_last, _ = await self._context(ref, main.start)
        whole = query.start is None and query.period == "inception" and not main.cut
        summary = perf.summarize_period(
            series, main.start, main.end, first_available=ref.first_date, whole_history=whole
        )
        body["start_date"] = iso_date(main.start)
        body["partial"] = summary.partial or main.cut
        body["observations"] = summary.observations
        body["pnl"] = _money_cents(summary.pnl)
        body["return"] = _stat(summary.return_)
        for name in SUMMARY_PERIODS:
            w = windows[name]
            s = perf.summarize_period(series, w.start, w.end, first_available=ref.first_date)
            body["periods"][name] = {
                "start_date": iso_date(w.start),
                "pnl": _money_cents(s.pnl),
                "return": _stat(s.return_),
                "partial": s.partial,
            }

        in_window = series.window(main.start, main.end)
        known = in_window & ~np.isnan(series.daily_return)
        r = series.daily_return[known]
        r_dates = series.dates[known]
        first_pos = int(np.flatnonzero(known)[0]) if r.size else None
        base_date = series.dates[first_pos - 1] if first_pos else np.datetime64(main.start - timedelta(days=1), "D")

        stats_block, flags = await self._stats(r, r_dates, base_date, end)
        body["stats"] = stats_block
        if benchmark is not None:
            body["benchmark"], bench_cum = await self._benchmark(
                benchmark, r, r_dates, base_date, end, series, in_window
            )
        else:
            bench_cum = None
        if include_series:
            body["series"] = self._series(series, in_window, bench_cum)

        partial_points = int(partial_flags[in_window].sum()) if partial_flags.size == in_window.size else 0
        body["coverage"] = {"partial_points": partial_points}
        if not in_window.any():
            body["data_status"] = "no_history"
        elif summary.observations < perf.MIN_OBSERVATIONS:
            body["data_status"] = "insufficient_history"
        else:
            body["data_status"] = self._freshness(ref, spy_last, partial_points)
        if flags and body["stats"] is not None:
            body["stats"]["flags"] = flags
        return body, meta

    async def _stats(
        self, r: np.ndarray, r_dates: np.ndarray, base_date: np.datetime64, end: date
    ) -> tuple[dict[str, Any] | None, list[str]]:
        flags: list[str] = []
        if r.size < perf.MIN_DRAWDOWN_OBSERVATIONS:
            return None, flags
        rates = await self.reader.risk_free(_day(r_dates[0]), end)
        rf = perf.daily_risk_free(_dates(rates["dates"]), _floats(rates["values"]), r_dates)
        if np.isnan(rf).all():
            rf = np.full(r.shape, perf.DEFAULT_RISK_FREE_RATE / perf.ANNUALIZATION)
            flags.append("risk_free_rate_default")
        s = perf.performance_stats(r, rf)

        def at(index: int | None) -> str | None:
            if index is None:
                return None
            return iso_date(_day(base_date if index == 0 else r_dates[index - 1]))

        mdd = s.max_drawdown
        return {
            "observations": s.observations,
            "annualized_return": _stat(s.annualized_return),
            "annualized_volatility": _stat(s.annualized_volatility),
            "sharpe_ratio": _stat(s.sharpe_ratio),
            "sortino_ratio": _stat(s.sortino_ratio),
            "max_drawdown": _stat(mdd.value) if mdd else None,
            "max_drawdown_peak_date": at(mdd.peak) if mdd else None,
            "max_drawdown_trough_date": at(mdd.trough) if mdd else None,
            "max_drawdown_recovery_date": at(mdd.recovery) if mdd else None,
            "best_day": None
            if s.best_index is None
            else {"date": iso_date(_day(r_dates[s.best_index])), "return": _stat(r[s.best_index])},
            "worst_day": None
            if s.worst_index is None
            else {"date": iso_date(_day(r_dates[s.worst_index])), "return": _stat(r[s.worst_index])},
            "positive_days_pct": _stat(s.positive_days_pct),
            "risk_free_rate": _stat(s.risk_free_rate),
        }, flags

    async def _require_benchmark(self, symbol: str, start: date, end: date) -> Any:
        data = await self.reader.benchmark(symbol, start, end)
        if not data["has_history"]:
            raise NotFound("SYMBOL", f"Benchmark {symbol} has no price history")
        return data

    async def _benchmark(
        self,
        symbol: str,
        r: np.ndarray,
        r_dates: np.ndarray,
        base_date: np.datetime64,
        end: date,
        series: perf.SnapshotSeries,
        in_window: np.ndarray,
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Benchmark return over the portfolio's effective window, realised beta and correlation."""
        data = await self._require_benchmark(symbol, _day(base_date), end)
        dates = _dates(data["dates"])
        prices = _floats(data["prices"])
        previous = _dates(data["previous"])  # None (date unknown to the calendar) becomes NaT
        base_price = perf.price_on_or_before(dates, prices, base_date)
        partial = not math.isfinite(base_price)
        if partial and prices.size:
            base_price = float(prices[0])
        end_price = perf.price_on_or_before(dates, prices, np.datetime64(end, "D"))
        total = end_price / base_price - 1.0 if prices.size and base_price > 0 else math.nan
        b_dates, b_rets = perf.benchmark_returns(dates, prices, previous)
        y, x = perf.align(r_dates, r, b_dates, b_rets)
        reg = perf.regress(x, y) if x.size >= perf.MIN_OBSERVATIONS else None
        # Benchmark cumulative return on each snapshot date of the window (close on that exact date).
        snap_dates = series.dates[in_window]
        idx = np.searchsorted(dates, snap_dates)
        idx_c = np.clip(idx, 0, max(dates.size - 1, 0))
        on_date = (idx < dates.size) & (dates[idx_c] == snap_dates) if dates.size else np.zeros(snap_dates.shape, bool)
        cum = np.where(on_date, prices[idx_c] / base_price - 1.0 if prices.size else np.nan, np.nan)
        block = {
            "symbol": data["symbol"],
            "return": _stat(total),
            "beta_realized": _stat(reg.beta) if reg else None,
            "correlation": _stat(reg.correlation) if reg else None,
            "alpha_daily": _stat(reg.alpha) if reg else None,
            "r_squared": _stat(reg.r_squared) if reg else None,
            "observations": int(x.size),
            "partial": partial,
        }
        return block, cum

    @staticmethod
    def _series(
        series: perf.SnapshotSeries, in_window: np.ndarray, bench_cum: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """Per-snapshot series of the window; cumulative return and drawdown restart at the window base."""
        rets = series.daily_return[in_window]
        growth = np.where(np.isnan(rets), 1.0, 1.0 + rets)
        wealth = np.cumprod(growth)
        cumulative = wealth - 1.0
        drawdown = wealth / np.maximum.accumulate(np.maximum(wealth, 1.0)) - 1.0
        dates = series.dates[in_window]
        equity = series.equity[in_window]
        pnl = series.daily_pnl[in_window]
        out = []
        for i in range(dates.size):
            out.append(
                {
                    "date": iso_date(_day(dates[i])),
                    "equity": _money_cents(float(equity[i])),
                    "daily_pnl": _money_cents(float(pnl[i])),
                    "daily_return": _stat(float(rets[i])),
                    "cumulative_return": _stat(float(cumulative[i])),
                    "drawdown": _stat(float(drawdown[i])),
                    "benchmark_cumulative_return": None if bench_cum is None else _stat(float(bench_cum[i])),
                }
            )
        return out
