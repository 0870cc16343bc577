"""Realised performance statistics (calculations.md §8.5) and period summaries (api.md #23).

Inputs are daily simple returns `r_p,t = daily_pnl_t / V_prev` from snapshots (time-weighted, so
deposits, withdrawals and uploads are not performance) and daily risk-free rates
`rf_t = DGS3MO_t / 252` (DGS3MO stored as a fraction). Annualisation is always 252.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

ANNUALIZATION = 252
MIN_OBSERVATIONS = 60
MIN_DRAWDOWN_OBSERVATIONS = 2
# calculations.md §0.6 DEFAULT_RISK_FREE_RATE: used (and flagged) only when no DGS3MO value is stored.
DEFAULT_RISK_FREE_RATE = 0.04
SQRT_ANN = math.sqrt(ANNUALIZATION)


def _opt(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def total_return(r: np.ndarray) -> float:
    """Compounded return Π(1 + r) − 1 (NaN for an empty series)."""
    return float(np.prod(1.0 + r) - 1.0) if r.size else math.nan


def annualized_return(r: np.ndarray) -> float:
    """Geometric annualisation (1 + R)^(252/n) − 1 of the compounded return over n daily returns."""
    if not r.size:
        return math.nan
    growth = 1.0 + total_return(r)
    return growth ** (ANNUALIZATION / r.size) - 1.0 if growth > 0 else math.nan


def annualized_volatility(r: np.ndarray) -> float:
    """std(r, ddof=1) · √252."""
    return float(np.std(r, ddof=1) * SQRT_ANN) if r.size >= 2 else math.nan


def sharpe_ratio(r: np.ndarray, rf: np.ndarray) -> float:
    """mean(r − rf) / std(r − rf, ddof=1) · √252 (NaN when the excess returns do not vary)."""
    if r.size < 2:
        return math.nan
    excess = r - rf
    sd = float(np.std(excess, ddof=1))
    return float(np.mean(excess)) / sd * SQRT_ANN if sd > 0 else math.nan


def sortino_ratio(r: np.ndarray, rf: np.ndarray) -> float:
    """mean(r − rf) / sqrt(mean(min(r − rf, 0)²)) · √252 (NaN without a negative excess return)."""
    if not r.size:
        return math.nan
    excess = r - rf
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    return float(np.mean(excess)) / downside * SQRT_ANN if downside > 0 else math.nan


def wealth_index(r: np.ndarray) -> np.ndarray:
    """W with W[0] = 1 (before the first return) and W[i] = Π_{s≤i} (1 + r_s)."""
    return np.concatenate(([1.0], np.cumprod(1.0 + r)))


def drawdowns(r: np.ndarray) -> np.ndarray:
    """DD_t = W_t / max_{s≤t} W_s − 1 for each return date (the running max includes W_0 = 1)."""
    w = wealth_index(r)
    return (w / np.maximum.accumulate(w) - 1.0)[1:]


@dataclass(frozen=True)
class MaxDrawdown:
    """Max drawdown (≤ 0) and positions in the wealth index: 0 = the base before the first return,
    i = after the i-th return. `peak`/`trough` are None when there was no drawdown; `recovery` is
    None when the index has not regained the peak."""

    value: float
    peak: int | None
    trough: int | None
    recovery: int | None


def max_drawdown(r: np.ndarray) -> MaxDrawdown | None:
    """MDD = min_t DD_t with its peak, trough and recovery; None with fewer than 2 returns."""
    if r.size < MIN_DRAWDOWN_OBSERVATIONS:
        return None
    w = wealth_index(r)
    running = np.maximum.accumulate(w)
    dd = w / running - 1.0
    trough = int(np.argmin(dd))
    value = float(dd[trough])
    if value >= 0.0:
        return MaxDrawdown(0.0, None, None, None)
    peak_value = running[trough]
    peak = int(np.flatnonzero(w[: trough + 1] == peak_value)[-1])
    regained = np.flatnonzero(w[trough + 1 :] >= peak_value)
    recovery = trough + 1 + int(regained[0]) if regained.size else None
    return MaxDrawdown(value, peak, trough, recovery)


@dataclass(frozen=True)
class Regression:
    """OLS of portfolio returns y on benchmark returns x with intercept (calculations.md §8.5)."""

    beta: float
    alpha: float
    r_squared: float
    correlation: float
    observations: int


def regress(x: np.ndarray, y: np.ndarray) -> Regression:
    """Slope, intercept (daily alpha), R² and correlation; NaN when x does not vary or n < 2."""
    n = int(min(x.size, y.size))
    if n < 2:
        return Regression(math.nan, math.nan, math.nan, math.nan, n)
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    sxy = float(dx @ dy)
    if sxx <= 0:
        return Regression(math.nan, math.nan, math.nan, math.nan, n)
    beta = sxy / sxx
    alpha = float(y.mean()) - beta * float(x.mean())
    corr = sxy / math.sqrt(sxx * syy) if syy > 0 else math.nan
    return Regression(beta, alpha, corr * corr if math.isfinite(corr) else math.nan, corr, n)


def daily_risk_free(rate_dates: np.ndarray, rate_values: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """rf_t = DGS3MO / 252 on each of `dates` using the last value on or before t (missing days).

    Dates before the first stored value take that first value; without any value the result is
    NaN (the caller substitutes DEFAULT_RISK_FREE_RATE and flags it).
    """
    if rate_values.size == 0:
        return np.full(dates.shape, np.nan)
    idx = np.searchsorted(rate_dates, dates, side="right") - 1
    return rate_values[np.clip(idx, 0, None)] / ANNUALIZATION


@dataclass(frozen=True)
class PerformanceStats:
    """Statistics of calculations.md §8.5 over one window; None where too few observations."""

    observations: int
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: MaxDrawdown | None
    best_index: int | None
    worst_index: int | None
    positive_days_pct: float | None
    risk_free_rate: float | None


def performance_stats(r: np.ndarray, rf: np.ndarray, *, min_observations: int = MIN_OBSERVATIONS) -> PerformanceStats:
    """Window statistics: everything needs `min_observations` returns except max drawdown (2).

    `risk_free_rate` is the mean annual 3-month bill rate (fraction) over the return dates, i.e. the
    average rate the Sharpe and Sortino excess returns were measured against.
    """
    n = int(r.size)
    mdd = max_drawdown(r)
    if n < min_observations:
        return PerformanceStats(n, None, None, None, None, mdd, None, None, None, None)
    return PerformanceStats(
        observations=n,
        annualized_return=_opt(annualized_return(r)),
        annualized_volatility=_opt(annualized_volatility(r)),
        sharpe_ratio=_opt(sharpe_ratio(r, rf)),
        sortino_ratio=_opt(sortino_ratio(r, rf)),
        max_drawdown=mdd,
        best_index=int(np.argmax(r)),
        worst_index=int(np.argmin(r)),
        positive_days_pct=float(np.mean(r > 0)),
        risk_free_rate=_opt(float(np.mean(rf)) * ANNUALIZATION),
    )


@dataclass(frozen=True)
class SnapshotSeries:
    """Ascending snapshots of one portfolio: dates (datetime64[D]), equity and daily P&L in cents,
    daily returns (NaN = NULL)."""

    dates: np.ndarray
    equity: np.ndarray
    daily_pnl: np.ndarray
    daily_return: np.ndarray

    @classmethod
    def build(cls, dates: object, equity: object, daily_pnl: object, daily_return: object) -> SnapshotSeries:
        """Coerce sequences (None → NaN) into typed arrays."""
        return cls(
            dates=np.asarray(dates, dtype="datetime64[D]"),
            equity=np.asarray(equity, dtype=np.float64),
            daily_pnl=np.asarray(daily_pnl, dtype=np.float64),
            daily_return=np.asarray(daily_return, dtype=np.float64),
        )

    def window(self, start: date, end: date) -> np.ndarray:
        """Mask of the snapshots dated in [start, end]."""
        return (self.dates >= np.datetime64(start, "D")) & (self.dates <= np.datetime64(end, "D"))


@dataclass(frozen=True)
class PeriodSummary:
    """P&L (cents) and time-weighted return over a window; `partial` when history does not cover it."""

    pnl: float | None
    return_: float | None
    partial: bool
    observations: int


def summarize_period(
    series: SnapshotSeries, start: date, end: date, *, first_available: date | None, whole_history: bool = False
) -> PeriodSummary:
    """Σ daily P&L and Π(1 + daily_return) − 1 over the snapshots in [start, end].

    The window is covered when a snapshot exists before `start` (so its first move is known) or when
    it is the whole history (`inception`). A missing return inside the window, other than on the
    first snapshot of the history (which has none by construction), also makes the summary partial.
    """
    mask = series.window(start, end)
    if not mask.any():
        return PeriodSummary(None, None, True, 0)
    returns = series.daily_return[mask]
    known = ~np.isnan(returns)
    if first_available is not None:
        structural = series.dates[mask] == np.datetime64(first_available, "D")
    else:
        structural = np.zeros(known.shape, dtype=bool)
    gaps = bool((~known & ~structural).any())
    covered = whole_history or (first_available is not None and first_available < start)
    valid = returns[known]
    ret = total_return(valid) if valid.size else None
    pnl = float(np.nansum(series.daily_pnl[mask]))
    return PeriodSummary(pnl, ret, (not covered) or gaps, int(valid.size))


def benchmark_returns(dates: np.ndarray, prices: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Daily benchmark returns A_t / A_prev(t) − 1 (calculations.md §0.4).

    `previous[i]` is the NYSE trading day before `dates[i]` (NaT when the calendar does not know
    it, in which case consecutive closes are used). A return spanning a gap in the closes is
    discarded, never booked to one day. Returns (dates, returns) of the valid returns.
    """
    if dates.size < 2:
        return dates[:0], prices[:0]
    prev_dates = dates[:-1]
    expected = previous[1:]
    contiguous = np.isnat(expected) | (prev_dates == expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = prices[1:] / prices[:-1] - 1.0
    valid = contiguous & np.isfinite(rets)
    return dates[1:][valid], rets[valid]


def align(
    dates_a: np.ndarray, values_a: np.ndarray, dates_b: np.ndarray, values_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inner join of two dated series on date, dropping pairs where either value is NaN."""
    _, ia, ib = np.intersect1d(dates_a, dates_b, assume_unique=True, return_indices=True)
    a, b = values_a[ia], values_b[ib]
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def price_on_or_before(dates: np.ndarray, prices: np.ndarray, day: np.datetime64) -> float:
    """The last price dated on or before `day` (NaN when there is none)."""
    idx = int(np.searchsorted(dates, day, side="right")) - 1
    return float(prices[idx]) if idx >= 0 else math.nan
