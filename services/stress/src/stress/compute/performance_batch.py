"""Performance statistics (calculations.md §8.5) of many return series that share their dates.

The simulated histories of a date all run over the VaR window, and realised histories mostly share
their snapshot dates, so a group of series is one (series × days) matrix: the risk-free rates, the
alignment with the market and the market's own moments are computed once per group, the volatility,
Sharpe, Sortino and drawdown once per matrix. Each row equals `performance_from_series` of that row
bit for bit (row reductions of a C-ordered matrix are numpy's 1-D sums; dot products stay per row);
rows that are not finite are left to `performance_from_series`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np

from stress.compute import performance as perf
from stress.compute.risk_metrics import MarketWindow, Performance, as_date

SQRT_ANN = perf.SQRT_ANN


def batchable_rows(returns: np.ndarray, *, min_observations: int = perf.MIN_OBSERVATIONS) -> np.ndarray:
    """Mask of the rows of a (series × days) matrix that `performance_rows` computes: long enough for
    every statistic, finite, with a finite wealth index (a product that overflows is left to the 1-D
    code). A running product that is no longer finite stays so, so its last value decides."""
    rows, days = returns.shape
    if days < max(min_observations, perf.MIN_DRAWDOWN_OBSERVATIONS):
        return np.zeros(rows, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        last = np.cumprod(1.0 + returns, axis=1)[:, -1]
    return np.isfinite(returns).all(axis=1) & np.isfinite(last)


def _opt(values: np.ndarray) -> list[float | None]:
    return [x if math.isfinite(x) else None for x in values.tolist()]


def _ratios(excess: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """(Sharpe, Sortino) of each row of excess returns, as `perf.sharpe_ratio` / `perf.sortino_ratio`."""
    mean = np.mean(excess, axis=1)
    sd = np.std(excess, axis=1, ddof=1)
    downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, mean / sd * SQRT_ANN, math.nan)
        sortino = np.where(downside > 0, mean / downside * SQRT_ANN, math.nan)
    return _opt(sharpe), _opt(sortino)


def _drawdowns(wealth: np.ndarray) -> list[perf.MaxDrawdown]:
    """`perf.max_drawdown` of each row of a finite wealth index (column 0 = the base, 1.0)."""
    rows = np.arange(wealth.shape[0])
    position = np.arange(wealth.shape[1])
    running = np.maximum.accumulate(wealth, axis=1)
    dd = wealth / running - 1.0
    trough = np.argmin(dd, axis=1)
    value = dd[rows, trough]
    peak_value = running[rows, trough][:, None]
    # The peak is the last date up to the trough at the running maximum; the recovery the first after it.
    peak = np.where((position <= trough[:, None]) & (wealth == peak_value), position, -1).max(axis=1)
    regained = (position > trough[:, None]) & (wealth >= peak_value)
    recovery = np.where(regained.any(axis=1), regained.argmax(axis=1), -1)
    out = []
    for v, p, t, rec in zip(value.tolist(), peak.tolist(), trough.tolist(), recovery.tolist(), strict=True):
        out.append(
            perf.MaxDrawdown(0.0, None, None, None)
            if v >= 0.0
            else perf.MaxDrawdown(v, p, t, rec if rec >= 0 else None)
        )
    return out


def _regressions(x: np.ndarray, y: np.ndarray) -> list[perf.Regression]:
    """`perf.regress(x, row)` of each row of `y` (rows aligned with x, n ≥ 2)."""
    n = int(x.size)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= 0:
        return [perf.Regression(math.nan, math.nan, math.nan, math.nan, n)] * y.shape[0]
    x_mean = float(x.mean())
    y_mean = y.mean(axis=1)
    dy = y - y_mean[:, None]
    out = []
    for row, mean in zip(dy, y_mean.tolist(), strict=True):
        syy = float(row @ row)
        sxy = float(dx @ row)
        beta = sxy / sxx
        corr = sxy / math.sqrt(sxx * syy) if syy > 0 else math.nan
        r_squared = corr * corr if math.isfinite(corr) else math.nan
        out.append(perf.Regression(beta, mean - beta * x_mean, r_squared, corr, n))
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def performance_rows(
    returns: np.ndarray,
    dates: np.ndarray,
    bases: Sequence[np.datetime64 | None],
    series_type: str,
    window: MarketWindow,
    *,
    min_observations: int = perf.MIN_OBSERVATIONS,
) -> list[Performance]:
    """`performance_from_series(returns[i], dates, bases[i], series_type, window)` of every row.

    Every row must be in `batchable_rows`; `bases[i]` is the wealth-index base date of row i.
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    rows, days = r.shape
    wealth = np.concatenate((np.ones((rows, 1)), np.cumprod(1.0 + r, axis=1)), axis=1)
    if not np.isfinite(wealth).all():
        raise ValueError("performance_rows needs batchable rows (finite, with a finite wealth index)")

    rf = perf.daily_risk_free(window.rf_dates, window.rf_values, dates)
    rf_default = bool(days) and bool(np.isnan(rf).all())
    if rf_default:
        rf = np.full(dates.shape, perf.DEFAULT_RISK_FREE_RATE / perf.ANNUALIZATION)
    volatility = _opt(np.std(r, axis=1, ddof=1) * SQRT_ANN)
    sharpe, sortino = _ratios(r - rf)
    drawdowns = _drawdowns(wealth)

    # Inner join with the market on date; the rows are finite, so only market NaNs drop pairs.
    _, ia, ib = np.intersect1d(dates, window.dates, assume_unique=True, return_indices=True)
    x = window.market[ib]
    keep = ~np.isnan(x)
    x = x[keep]
    regressions: list[perf.Regression | None] = [None] * rows
    if x.size >= min_observations:
        if x.size >= 2:
            regressions = list(_regressions(x, np.ascontiguousarray(r[:, ia[keep]])))
        else:
            regressions = [perf.Regression(math.nan, math.nan, math.nan, math.nan, int(x.size))] * rows

    day: list[date | None] = dates.astype("datetime64[D]").tolist()
    first, last = day[0], day[-1]

    def at(index: int | None, base: date | None) -> date | None:
        if index is None:
            return None
        return base if index == 0 else day[index - 1]

    out = []
    for i in range(rows):
        base_day = as_date(bases[i])
        reg = regressions[i]
        mdd = drawdowns[i]
        out.append(
            Performance(
                series_type=series_type,
                observations=days,
                start_date=first,
                end_date=last,
                volatility=volatility[i],
                beta=_finite(reg.beta) if reg else None,
                alpha_daily=_finite(reg.alpha) if reg else None,
                r_squared=_finite(reg.r_squared) if reg else None,
                beta_observations=int(x.size),
                sharpe=sharpe[i],
                sortino=sortino[i],
                max_drawdown=mdd.value,
                peak_date=at(mdd.peak, base_day),
                trough_date=at(mdd.trough, base_day),
                recovery_date=at(mdd.recovery, base_day),
                risk_free_default=rf_default,
            )
        )
    return out
