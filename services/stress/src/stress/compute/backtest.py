"""VaR backtest: exceptions of realised daily losses against the previous day's 1-day VaR, with
Kupiec's proportion-of-failures (POF) likelihood-ratio test.

For a level α the VaR forecast made at the close of prev(t) is compared with the realised P&L of
day t (snapshot `daily_pnl`): an exception is `−daily_pnl_t > VaR_α,prev(t)`. With x exceptions in
T days and p = 1 − α,

    LR_POF = −2 ln[(1 − p)^(T−x) p^x] + 2 ln[(1 − x/T)^(T−x) (x/T)^x]   ~ χ²(1) under H0,

and the model is rejected at 5 % when the χ²(1) p-value is below 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy
from scipy.stats import chi2

BACKTEST_WINDOW = 252
BACKTEST_MIN_OBS = 60
TEST_SIZE = 0.05


def kupiec_pof(exceptions: int, observations: int, alpha: float) -> tuple[float, float]:
    """(LR_POF, χ²(1) p-value) for `exceptions` in `observations` days at VaR confidence `alpha`."""
    t, x = float(observations), float(exceptions)
    p = 1.0 - alpha
    rate = x / t
    null = xlogy(t - x, 1.0 - p) + xlogy(x, p)
    alternative = xlogy(t - x, 1.0 - rate) + xlogy(x, rate)
    lr = max(-2.0 * (null - alternative), 0.0)
    return float(lr), float(chi2.sf(lr, 1))


@dataclass(frozen=True)
class BacktestLevel:
    """Backtest of one confidence level; statistics are None below the minimum history."""

    confidence: float
    observations: int
    exceptions: int | None
    exception_rate: float | None
    expected_exceptions: float | None
    kupiec_lr: float | None
    p_value: float | None
    result: str | None
    reason: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "confidence": self.confidence,
            "observations": self.observations,
            "exceptions": self.exceptions,
            "exception_rate": self.exception_rate,
            "expected_exceptions": self.expected_exceptions,
            "kupiec_lr": self.kupiec_lr,
            "p_value": self.p_value,
            "result": self.result,
            "reason": self.reason,
        }


def backtest_level(
    var_forecast: np.ndarray,
    pnl: np.ndarray,
    alpha: float,
    *,
    window: int = BACKTEST_WINDOW,
    min_obs: int = BACKTEST_MIN_OBS,
) -> tuple[BacktestLevel, np.ndarray]:
    """Exceptions over the last `window` days that have both a forecast and a P&L.

    Returns the level and the boolean mask (over the inputs) of the days used.
    """
    var = np.asarray(var_forecast, dtype=np.float64)
    realised = np.asarray(pnl, dtype=np.float64)
    usable = np.isfinite(var) & np.isfinite(realised)
    idx = np.flatnonzero(usable)[-window:]
    used = np.zeros(var.shape, dtype=bool)
    used[idx] = True
    t = int(idx.size)
    if t < min_obs:
        level = BacktestLevel(alpha, t, None, None, None, None, None, None, "insufficient_history")
        return level, used
    x = int((-realised[idx] > var[idx]).sum())
    lr, p_value = kupiec_pof(x, t, alpha)
    level = BacktestLevel(
        confidence=alpha,
        observations=t,
        exceptions=x,
        exception_rate=x / t,
        expected_exceptions=t * (1.0 - alpha),
        kupiec_lr=lr,
        p_value=p_value,
        result="reject" if p_value < TEST_SIZE else "accept",
        reason=None,
    )
    return level, used


@dataclass(frozen=True)
class Backtest:
    """The backtest block stored with the risk metrics (historical 1-day VaR, 95 and 99 %)."""

    levels: list[BacktestLevel]
    start_index: int | None
    end_index: int | None

    @property
    def status(self) -> str:
        return "ok" if any(level.result is not None for level in self.levels) else "insufficient_history"


def var_backtest(
    var95: np.ndarray,
    var99: np.ndarray,
    pnl: np.ndarray,
    *,
    window: int = BACKTEST_WINDOW,
    min_obs: int = BACKTEST_MIN_OBS,
) -> Backtest:
    """Both levels over aligned arrays (element t: the forecast of prev(t) and the P&L of t)."""
    levels: list[BacktestLevel] = []
    used_any = np.zeros(np.asarray(pnl).shape, dtype=bool)
    for alpha, forecast in ((0.95, var95), (0.99, var99)):
        level, used = backtest_level(forecast, pnl, alpha, window=window, min_obs=min_obs)
        levels.append(level)
        used_any |= used
    idx = np.flatnonzero(used_any)
    return Backtest(levels, int(idx[0]) if idx.size else None, int(idx[-1]) if idx.size else None)
