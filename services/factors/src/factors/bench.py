"""Throughput of the daily factor compute (issue 3 goal: ≥ 200k symbols/s for the regressions).

`run()` builds a deterministic synthetic market — `days` closes of SPY, the six style ETFs and the
10-year yield (with FRED holidays), and `symbols` underlyings with planted betas (5 % listed inside
the window, 2 % with missing closes, a few with too little history) — and times the compute of the
daily factors step without I/O:

* `model`: proxy closes → simple returns → `build_factor_model` (orthogonalisation, both matrices);
* `returns`: the underlyings' closes → simple returns;
* `regression`: `regress_underlyings` alone (every beta, standard error, t, p, R², the joint fit,
  VIF, condition number and flags) — the number the ≥ 200k symbols/s goal applies to.

    uv run python -m factors.bench [symbols] [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from factors import compute

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SyntheticCloses:
    """Adjusted closes of one window: `days` rows, oldest first."""

    dates: list[date]
    market: F64  # (days,) SPY
    styles: dict[str, F64]  # style code → (days,) proxy closes
    dgs10: F64  # (days,) 10-year yield as a fraction, NaN on FRED holidays
    underlyings: F64  # (days, symbols)


def synthetic_closes(symbols: int, *, days: int = 253, seed: int = 7) -> SyntheticCloses:
    """A reproducible market of `days` closes and `symbols` underlyings with planted betas."""
    rng = np.random.default_rng(seed)
    t = days - 1
    market = 0.0004 + 0.0105 * rng.standard_normal(t)
    styles = {code: 0.9 * market + 0.005 * rng.standard_normal(t) for code in compute.STYLE_CODES}
    dy = 0.0006 * rng.standard_normal(t) - 0.01 * market
    dgs10 = 0.042 + np.concatenate([[0.0], np.cumsum(dy)])
    dgs10[rng.choice(days, max(1, days // 60), replace=False)] = np.nan
    factors = np.column_stack([market, *styles.values(), dy])
    betas = np.column_stack([rng.normal(1.1, 0.3, symbols), rng.normal(0.0, 0.4, (symbols, factors.shape[1] - 1))])
    returns = factors @ betas.T + 0.015 * rng.standard_normal((t, symbols))
    closes = _closes(returns, rng.uniform(5.0, 500.0, symbols))
    late = np.flatnonzero(rng.random(symbols) < 0.05)
    for j in late:
        closes[: rng.integers(1, days - 20), j] = np.nan
    gappy = rng.random(symbols) < 0.02
    closes[(rng.random(closes.shape) < 0.01) & gappy] = np.nan
    start = date(2025, 1, 2)
    return SyntheticCloses(
        dates=[start + timedelta(days=i) for i in range(days)],
        market=_closes(market, 480.0),
        styles={code: _closes(r, 100.0) for code, r in styles.items()},
        dgs10=dgs10,
        underlyings=closes,
    )


def _closes(returns: F64, start: float | F64) -> F64:
    growth = np.cumprod(1.0 + returns, axis=0)
    out: F64 = start * np.concatenate([np.ones((1, *returns.shape[1:])), growth])
    return out


def build_model(data: SyntheticCloses) -> compute.FactorModel:
    """closes → returns → the factor model of the window (what the daily step does once per date)."""
    others = {code: compute.simple_returns(c) for code, c in data.styles.items()}
    others[compute.RATE] = compute.yield_changes(data.dgs10)
    return compute.build_factor_model(data.dates[1:], compute.simple_returns(data.market), others)


def _timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    timings: list[float] = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - started)
    return timings, result


def run(symbols: int = 2000, days: int = 253, repeats: int = 7) -> dict[str, Any]:
    """Median seconds of the model build, of the returns and of `regress_underlyings` over `repeats`.

    Returns {"symbols", "days", "returns", "factors", "repeats", "model_median_seconds",
    "returns_median_seconds", "regression_median_seconds", "regression_best_seconds",
    "symbols_per_second" (regress_underlyings, by its median), "total_median_seconds" (model +
    returns + regressions, per repeat), "total_symbols_per_second", "regressed" (symbols with
    regression betas), "all_finite" (their betas are finite)}.
    """
    data = synthetic_closes(symbols, days=days)
    model = build_model(data)
    compute.regress_underlyings(model, compute.simple_returns(data.underlyings))  # warm the p-value table
    model_times, model = _timed(lambda: build_model(data), repeats)
    returns_times, returns = _timed(lambda: compute.simple_returns(data.underlyings), repeats)
    regression_times, batch = _timed(lambda: compute.regress_underlyings(model, returns), repeats)
    regression_s = statistics.median(regression_times)
    totals = [sum(t) for t in zip(model_times, returns_times, regression_times, strict=True)]
    total_s = statistics.median(totals)
    regressed = batch.beta_source == "regression"
    return {
        "symbols": symbols,
        "days": days,
        "returns": days - 1,
        "factors": len(model.codes),
        "repeats": repeats,
        "model_median_seconds": statistics.median(model_times),
        "returns_median_seconds": statistics.median(returns_times),
        "regression_median_seconds": regression_s,
        "regression_best_seconds": min(regression_times),
        "symbols_per_second": symbols / regression_s,
        "total_median_seconds": total_s,
        "total_symbols_per_second": symbols / total_s,
        "regressed": int(regressed.sum()),
        "all_finite": bool(np.isfinite(batch.beta[regressed]).all()),
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    symbols_arg = args[0] if args else 2000
    repeats_arg = args[1] if len(args) > 1 else 7
    sys.stdout.write(f"{run(symbols_arg, repeats=repeats_arg)}\n")
