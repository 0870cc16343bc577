"""Portfolio risk metrics of one date (calculations.md §8): VaR/ES, volatility, beta, Sharpe, Sortino,
max drawdown and the VaR backtest, from a shared market window and one portfolio's holdings.

Pure and deterministic: the as-of date is implicit in the inputs (the window ends at t0 and the
snapshot history stops before t0), nothing reads the clock. Money is float dollars here; the
repository rounds to cents for storage.

Realised statistics use snapshot daily returns dated before t0: the t0 snapshot is written after
the risk metrics (calculations.md §0.7 order: risk metrics, then the snapshot that carries them),
so including it would make a rerun of the same day differ from the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from stress.compute import performance as perf
from stress.compute.backtest import Backtest, var_backtest
from stress.compute.var import (
    CONFIDENCES,
    EWMA_LAMBDA,
    VAR_MIN_OBS,
    VAR_WINDOW,
    FilledPanel,
    TailRisk,
    VarResult,
    aggregate_underlyings,
    ewma_effective_days,
    fill_panel,
    var_metrics,
)

ENGINE_VERSION = "stress-risk-1.0.0"
ANNUALIZATION = perf.ANNUALIZATION
PERFORMANCE_WINDOW = 252

# Input problems that make the stored metrics `partial` (calculations.md §0.5: never silently complete).
PARTIAL_FLAGS = frozenset(
    {
        "positions_unpriced",
        "options_without_delta",
        "options_without_gamma",
        "factor_exposures_missing",
        "upstream_step_failed",
        "market_data_missing",
        "insufficient_history",
    }
)


@dataclass(frozen=True)
class MarketWindow:
    """The VaR window shared by every portfolio of one date: the last ≤ 252 SPY return dates ending
    at t0 (the master date index, §0.3), the market return and the filled underlying panel."""

    dates: np.ndarray
    base_date: np.datetime64 | None
    market: np.ndarray
    symbols: tuple[str, ...]
    panel: FilledPanel
    rf_dates: np.ndarray
    rf_values: np.ndarray

    @property
    def column(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}


@dataclass(frozen=True)
class SnapshotHistory:
    """Ascending snapshots dated before t0: date, its previous NYSE trading day, daily P&L and return
    and the stored 1-day historical VaR (dollars; NaN = NULL)."""

    dates: np.ndarray
    previous_trading: np.ndarray
    daily_pnl: np.ndarray
    daily_return: np.ndarray
    var95: np.ndarray
    var99: np.ndarray

    @classmethod
    def build(
        cls,
        dates: object,
        previous_trading: object,
        daily_pnl: object,
        daily_return: object,
        var95: object,
        var99: object,
    ) -> SnapshotHistory:
        """Coerce sequences (None → NaN / NaT) into typed arrays."""
        return cls(
            dates=np.asarray(dates if dates is not None else [], dtype="datetime64[D]"),
            previous_trading=np.asarray(
                previous_trading if previous_trading is not None else [], dtype="datetime64[D]"
            ),
            daily_pnl=np.asarray(daily_pnl if daily_pnl is not None else [], dtype=np.float64),
            daily_return=np.asarray(daily_return if daily_return is not None else [], dtype=np.float64),
            var95=np.asarray(var95 if var95 is not None else [], dtype=np.float64),
            var99=np.asarray(var99 if var99 is not None else [], dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> SnapshotHistory:
        return cls.build([], [], [], [], [], [])


@dataclass(frozen=True)
class PortfolioRiskInputs:
    """One portfolio's holdings on t0 (included positions only) and its context.

    `columns` index the market window's symbols (the position's underlying); `exposure` is the
    position's dollar exposure E_i; `gamma_dollar` is Γ_i q_i m_i S_u² (0 for stocks).
    """

    equity: float | None
    columns: np.ndarray
    exposure: np.ndarray
    gamma_dollar: np.ndarray
    positions_total: int
    positions_included: int
    beta_ex_ante: float | None
    rate_exposure: float | None
    history: SnapshotHistory
    input_flags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Performance:
    """Realised (or simulated) performance statistics (§8.5)."""

    series_type: str
    observations: int
    start_date: date | None
    end_date: date | None
    volatility: float | None
    beta: float | None
    alpha_daily: float | None
    r_squared: float | None
    beta_observations: int
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    peak_date: date | None
    trough_date: date | None
    recovery_date: date | None
    risk_free_default: bool


@dataclass(frozen=True)
class RiskMetrics:
    """Everything stored in stress.risk_metric for one portfolio and date."""

    equity: float | None
    window_start: date | None
    window_end: date | None
    var: VarResult
    ex_ante_volatility: float | None
    beta_ex_ante: float | None
    performance: Performance
    rate_exposure: float | None
    dv01: float | None
    proxied: list[dict[str, Any]]
    positions_total: int
    positions_included: int
    backtest: dict[str, Any]
    flags: list[str]

    @property
    def data_status(self) -> str:
        return "partial" if PARTIAL_FLAGS.intersection(self.flags) else "fresh"

    def historical(self, alpha: float) -> TailRisk | None:
        return self.var.historical.get(alpha)

    def parametric(self, alpha: float) -> TailRisk | None:
        return self.var.parametric.get(alpha)


def simple_returns(closes: np.ndarray) -> np.ndarray:
    """Close-to-close returns of consecutive days, NaN where either close is missing (§0.4)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = closes[1:] / closes[:-1] - 1.0
    returns[~np.isfinite(returns)] = np.nan
    return returns


def build_window(
    days: np.ndarray,
    closes: np.ndarray,
    symbols: tuple[str, ...],
    market_column: int,
    stored_beta: np.ndarray,
    rf_dates: np.ndarray,
    rf_values: np.ndarray,
    *,
    window: int = VAR_WINDOW,
) -> MarketWindow:
    """The VaR window from adjusted closes on consecutive NYSE trading days (D × S, NaN = no close).

    A return exists on day t only when both t and prev(t) have a close (§0.4: no forward fill); the
    window is the last `window` days on which the market (SPY) has a return, ending at t0 at the latest.
    """
    if days.size < 2:
        empty = np.zeros((0, len(symbols)))
        return MarketWindow(
            dates=np.zeros(0, dtype="datetime64[D]"),
            base_date=None,
            market=np.zeros(0),
            symbols=symbols,
            panel=fill_panel(empty, np.zeros(0), stored_beta),
            rf_dates=rf_dates,
            rf_values=rf_values,
        )
    returns = simple_returns(closes)
    market = returns[:, market_column]
    rows = np.flatnonzero(np.isfinite(market))[-window:]
    return MarketWindow(
        dates=days[1:][rows],
        base_date=days[rows[0]] if rows.size else None,
        market=market[rows],
        symbols=symbols,
        panel=fill_panel(returns[rows], market[rows], stored_beta),
        rf_dates=rf_dates,
        rf_values=rf_values,
    )


def as_date(value: np.datetime64 | None) -> date | None:
    """The calendar date of a datetime64 (None for None / NaT)."""
    if value is None or np.isnat(value):
        return None
    result: date = value.astype("datetime64[D]").item()
    return result


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def performance_from_series(
    r: np.ndarray,
    r_dates: np.ndarray,
    base_date: np.datetime64 | None,
    series_type: str,
    window: MarketWindow,
    *,
    min_observations: int = perf.MIN_OBSERVATIONS,
) -> Performance:
    rf = perf.daily_risk_free(window.rf_dates, window.rf_values, r_dates)
    rf_default = bool(r.size) and bool(np.isnan(rf).all())
    if rf_default:
        rf = np.full(r.shape, perf.DEFAULT_RISK_FREE_RATE / ANNUALIZATION)
    stats = perf.performance_stats(r, rf, min_observations=min_observations)
    y, x = perf.align(r_dates, r, window.dates, window.market)
    reg = perf.regress(x, y) if x.size >= min_observations else None

    def at(index: int | None) -> date | None:
        if index is None:
            return None
        return as_date(base_date) if index == 0 else as_date(r_dates[index - 1])

    mdd = stats.max_drawdown
    return Performance(
        series_type=series_type,
        observations=int(r.size),
        start_date=as_date(r_dates[0]) if r.size else None,
        end_date=as_date(r_dates[-1]) if r.size else None,
        volatility=stats.annualized_volatility,
        beta=_finite(reg.beta) if reg else None,
        alpha_daily=_finite(reg.alpha) if reg else None,
        r_squared=_finite(reg.r_squared) if reg else None,
        beta_observations=int(x.size),
        sharpe=stats.sharpe_ratio,
        sortino=stats.sortino_ratio,
        max_drawdown=mdd.value if mdd else None,
        peak_date=at(mdd.peak) if mdd else None,
        trough_date=at(mdd.trough) if mdd else None,
        recovery_date=at(mdd.recovery) if mdd else None,
        risk_free_default=rf_default,
    )


def realized_series(history: SnapshotHistory) -> tuple[np.ndarray, np.ndarray, np.datetime64 | None]:
    """The last ≤ 252 known snapshot daily returns, their dates and the date of the snapshot before
    the first of them (the wealth-index base)."""
    known = np.flatnonzero(np.isfinite(history.daily_return))[-PERFORMANCE_WINDOW:]
    if not known.size:
        return np.zeros(0), np.zeros(0, dtype="datetime64[D]"), None
    first = int(known[0])
    base = history.dates[first - 1] if first > 0 else None
    return history.daily_return[known], history.dates[known], base


def proxied_underlyings(window: MarketWindow, columns: np.ndarray) -> list[dict[str, Any]]:
    """The stored `proxied` entries of the underlyings in `columns` that have filled days (§8.1)."""
    proxied: list[dict[str, Any]] = []
    if columns.size:
        reasons = window.panel.reason[columns]
        counts = window.panel.proxied[columns]
        for i in np.flatnonzero(counts > 0):
            proxied.append(
                {
                    "symbol": window.symbols[int(columns[i])],
                    "reason": str(reasons[i]),
                    "days_proxied": int(counts[i]),
                    "beta": _finite(float(window.panel.beta[columns[i]])),
                }
            )
    return proxied


def backtest_block(history: SnapshotHistory) -> dict[str, Any]:
    """VaR backtest over the snapshot history: the VaR stored at prev(t) against the P&L of t, only
    where the two snapshots are consecutive trading days."""
    d = history.dates
    if d.size < 2:  # no day with a forecast: a fresh copy of the one empty block
        return {**_NO_BACKTEST, "levels": [dict(level) for level in _NO_BACKTEST["levels"]]}
    consecutive = history.previous_trading[1:] == d[:-1]
    f95 = np.where(consecutive, history.var95[:-1], np.nan)
    f99 = np.where(consecutive, history.var99[:-1], np.nan)
    bt = var_backtest(f95, f99, history.daily_pnl[1:])
    return _backtest_dict(bt, d[1:])


def _backtest_dict(bt: Backtest, dates: np.ndarray) -> dict[str, Any]:
    start = as_date(dates[bt.start_index]) if bt.start_index is not None else None
    end = as_date(dates[bt.end_index]) if bt.end_index is not None else None
    return {
        "method": "historical",
        "horizon_days": 1,
        "status": bt.status,
        "reason": None if bt.status == "ok" else "fewer than 60 days with a stored VaR and a realised P&L",
        "start_date": start.isoformat() if start else None,
        "end_date": end.isoformat() if end else None,
        "test": "kupiec_pof",
        "test_size": 0.05,
        "levels": [level.as_dict() for level in bt.levels],
    }


_NO_BACKTEST = _backtest_dict(var_backtest(np.zeros(0), np.zeros(0), np.zeros(0)), np.zeros(0, dtype="datetime64[D]"))


def portfolio_risk(window: MarketWindow, inputs: PortfolioRiskInputs) -> RiskMetrics:
    """Risk metrics of one portfolio on the window's last date."""
    flags: list[str] = list(inputs.input_flags)
    book = aggregate_underlyings(inputs.columns, inputs.exposure, inputs.gamma_dollar)
    var = var_metrics(window.panel.returns, book)
    n = var.observations
    if n < VAR_MIN_OBS:
        flags.append("insufficient_history")
    elif n < VAR_WINDOW:
        flags.append("limited_history")

    equity = inputs.equity
    equity_ok = equity is not None and equity > 0
    if not equity_ok:
        flags.append("equity_undefined")

    proxied = proxied_underlyings(window, book.columns)
    if proxied:
        flags.append("proxied_returns")

    ex_ante_vol = None
    if var.sigma_daily is not None and equity_ok:
        ex_ante_vol = var.sigma_daily * math.sqrt(ANNUALIZATION) / float(equity)  # type: ignore[arg-type]

    r, r_dates, base = realized_series(inputs.history)
    if r.size >= perf.MIN_OBSERVATIONS:
        performance = performance_from_series(r, r_dates, base, "realized", window)
    else:
        simulated = var.pnl / float(equity) if equity_ok and n else np.zeros(0)  # type: ignore[arg-type]
        dates = window.dates if simulated.size else np.zeros(0, dtype="datetime64[D]")
        performance = performance_from_series(simulated, dates, window.base_date, "simulated_history", window)
        flags.append("simulated_history")
    if performance.risk_free_default:
        flags.append("risk_free_rate_default")

    return assemble_metrics(
        window, inputs, var, ex_ante_vol, performance, proxied, backtest_block(inputs.history), flags
    )


def assemble_metrics(
    window: MarketWindow,
    inputs: PortfolioRiskInputs,
    var: VarResult,
    ex_ante_vol: float | None,
    performance: Performance,
    proxied: list[dict[str, Any]],
    backtest: dict[str, Any],
    flags: list[str],
) -> RiskMetrics:
    """The RiskMetrics of one portfolio from its computed parts (the per-portfolio and the batched
    paths both end here); DV01 is the rate exposure per basis point."""
    rate = inputs.rate_exposure
    return RiskMetrics(
        equity=inputs.equity,
        window_start=as_date(window.dates[0]) if window.dates.size else None,
        window_end=as_date(window.dates[-1]) if window.dates.size else None,
        var=var,
        ex_ante_volatility=ex_ante_vol,
        beta_ex_ante=inputs.beta_ex_ante,
        performance=performance,
        rate_exposure=rate,
        dv01=None if rate is None else rate / 10_000.0,
        proxied=proxied,
        positions_total=inputs.positions_total,
        positions_included=inputs.positions_included,
        backtest=backtest,
        flags=sorted(set(flags)),
    )


def ewma_block(var: VarResult) -> dict[str, Any] | None:
    """The optional EWMA variant as stored (floats in dollars), labelled with its effective window."""
    if var.ewma_sigma is None:
        return None
    return {
        "lambda": EWMA_LAMBDA,
        "effective_window_days": round(ewma_effective_days(), 2),
        "label": "EWMA λ = 0.94 (~32-day effective window)",
        "sigma_daily": var.ewma_sigma,
        "var": {str(a): var.ewma[a].var for a in CONFIDENCES},
        "es": {str(a): var.ewma[a].es for a in CONFIDENCES},
    }
