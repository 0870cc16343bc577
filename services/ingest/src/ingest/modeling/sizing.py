"""Hedge sizing for trade suggestions (api.md §6 row 14). Pure numpy, closed forms.

Exposure hedges (one instrument P with price S_P):
    neutralise a factor f:   H = −t · X_f / β_{P,f}     X_f = Σ_i E_i·β_{u(i),f} (calculations.md §4.8)
                             (market beta with SPY: β_{SPY,market} = 1, so H = −t · X_market)
    reduce dollar delta:     H = −t · D                 D = net dollar delta (of the book or one underlying),
                             hedged with a stock of delta 1 per dollar
    shares:                  q = round(H / S_P)         nearest whole share; q < 0 sells or shorts
    after the hedge:         X_f' = X_f + q·S_P·β_{P,f} ≈ (1 − t)·X_f, so beta b_f' = X_f' / V (V unchanged:
                             a trade at market swaps cash for market value)

Stress hedge (scenarios s; a_s = the book's correlated P&L, r_{j,s} = P&L per dollar of instrument j):
    P&L_s(H) = a_s + H·r_{j,s} (a stock's scenario P&L is linear in its exposure, §6.3)
    goal: min_s P&L_s(H) ≥ T with T = (1 − t)·L and L = min_s a_s < 0 (the worst loss cut by t)
    scenario s bounds H:  r > 0 → H ≥ (T − a_s)/r ;  r < 0 → H ≤ (T − a_s)/r ;  r = 0 → needs a_s ≥ T
    the smallest |H| inside [lo, hi] is taken; when the interval is empty the hedge is the H maximising
    min_s P&L_s(H) (reached where two scenario lines cross) and the reduction achieved is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

TINY_BETA = 1e-6


def hedge_exposure(exposure: float, proxy_beta: float, target: float) -> float:
    """H = −t · X / β (NaN when the proxy has no usable beta)."""
    if not np.isfinite(proxy_beta) or abs(proxy_beta) < TINY_BETA or not np.isfinite(exposure):
        return float("nan")
    return -target * exposure / proxy_beta


def whole_units(notional: float, price: float) -> int:
    """q = round(H / S): the nearest whole share (0 when the hedge is below half a share)."""
    if not (np.isfinite(notional) and np.isfinite(price) and price > 0):
        return 0
    return int(np.rint(notional / price))


@dataclass(frozen=True)
class StressHedges:
    """Per instrument j: hedge exposure H_j, the worst P&L after it, and whether the target is met."""

    exposure: np.ndarray  # (J,) H in dollars (signed)
    worst_after: np.ndarray  # (J,) min_s a_s + H·r_{j,s}
    target_met: np.ndarray  # (J,) bool


def _worst(a: np.ndarray, r: np.ndarray, h: np.ndarray) -> np.ndarray:
    """min_s a_s + h·r_s for each candidate h (vectorised over candidates)."""
    return np.min(a[None, :] + h[:, None] * r[None, :], axis=1)


def _maximin(a: np.ndarray, r: np.ndarray) -> float:
    """The H maximising min_s (a_s + H·r_s): the best of 0 and every crossing of two scenario lines."""
    i, j = np.triu_indices(a.size, k=1)
    slope = r[j] - r[i]
    crossing = np.divide(a[i] - a[j], slope, out=np.full(slope.shape, np.nan), where=slope != 0)
    candidates = np.concatenate([[0.0], crossing[np.isfinite(crossing)]])
    values = _worst(a, r, candidates)
    best = values.max()
    # Among equally good hedges the smallest one.
    near = candidates[values >= best - 1e-9 * max(1.0, abs(best))]
    return float(near[np.argmin(np.abs(near))])


def _one_instrument(a: np.ndarray, r: np.ndarray, floor: float) -> float:
    need = floor - a
    up, down, flat = r > 0, r < 0, r == 0
    if (need[flat] > 0).any():
        return _maximin(a, r)
    lo = float(np.max(need[up] / r[up])) if up.any() else -np.inf
    hi = float(np.min(need[down] / r[down])) if down.any() else np.inf
    if lo > hi:
        return _maximin(a, r)
    return float(np.clip(0.0, lo, hi))


def stress_hedges(pnl: np.ndarray, per_dollar: np.ndarray, target: float) -> StressHedges:
    """Smallest hedge per instrument (columns of `per_dollar`, (S, J)) that lifts the worst scenario
    P&L of `pnl` (S,) to (1 − target)·worst; scenarios with a NaN anywhere are ignored."""
    a = np.asarray(pnl, dtype=np.float64)
    r = np.asarray(per_dollar, dtype=np.float64).reshape(a.size, -1)
    ok = np.isfinite(a) & np.isfinite(r).all(axis=1)
    a, r = a[ok], r[ok]
    n = r.shape[1]
    if a.size == 0:
        nan = np.full(n, np.nan)
        return StressHedges(nan, nan, np.zeros(n, dtype=bool))
    floor = (1.0 - target) * min(float(a.min()), 0.0)
    h = np.array([_one_instrument(a, r[:, j], floor) for j in range(n)])
    worst = np.array([_worst(a, r[:, j], h[j : j + 1])[0] for j in range(n)])
    return StressHedges(h, worst, worst >= floor - 0.005)


def split_order(held: Decimal, change: int) -> list[tuple[str, Decimal]]:
    """The trades that move a net position `held` by `change` shares without crossing a side rule:
    selling more than a long → sell it all, then short the rest (and the mirror for covers)."""
    out: list[tuple[str, Decimal]] = []
    if change == 0:
        return out
    step = Decimal(change)
    if step < 0:
        sell = min(max(held, Decimal(0)), -step)
        if sell > 0:
            out.append(("sell", sell))
        if -step - sell > 0:
            out.append(("short", -step - sell))
    else:
        cover = min(max(-held, Decimal(0)), step)
        if cover > 0:
            out.append(("cover", cover))
        if step - cover > 0:
            out.append(("buy", step - cover))
    return out
