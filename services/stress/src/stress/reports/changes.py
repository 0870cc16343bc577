"""What changed since the previous snapshot: each risk figure's change split into market moves and
position changes. Pure and vectorised over the union of both days' positions.

For a figure F = Σ_i f(q_i, u_i), with q the quantity (shares or contracts) and u the value per
unit (market value or dollar exposure per share/contract, from the stored valuation), the change from
the previous snapshot date p to the report date t telescopes exactly:

    ΔF = Σ_i [f(q_p, u_t) − f(q_p, u_p)]      market: yesterday's book repriced at today's values
       + Σ_i [f(q_t, u_t) − f(q_p, u_t)]      positions: today's trades valued at today's values

With f = q·u this is Δ = Σ q_p·Δu + Σ Δq·u_t; gross uses f = |q·u|. A position opened since p has
q_p = 0 (all positions); one closed since p has q_t = 0 and no value of t, so u_t = u_p (all positions,
no market part). Equity adds the change in recorded cash (other). The beta-adjusted exposure
Σ β·E splits three ways: Σ q_p·β_p·Δe (market) + Σ q_p·Δβ·e_t (betas re-estimated) + Σ Δq·β_t·e_t
(positions); positions without a beta on either date are left out and counted. Historical VaR is a
quantile of simulated P&L and not additive across positions, so only its total change is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from stress.reports.book import F64, B, floats

FORMULA = (
    "Δ = Σ q_prev·(u_today − u_prev) [market] + Σ (q_today − q_prev)·u_today [positions], u = value per "
    "share or contract; gross uses |q·u|; equity adds the change in cash [other]; beta-adjusted exposure "
    "splits Σ q_prev·β_prev·Δe [market] + Σ q_prev·Δβ·e_today [beta re-estimated] + Σ Δq·β_today·e_today "
    "[positions]"
)


@dataclass(frozen=True)
class Aligned:
    """Both days' positions aligned on position id (NaN where a day has no value)."""

    q_prev: F64
    q_now: F64
    mv_prev: F64
    mv_now: F64
    ex_prev: F64
    ex_now: F64
    beta_prev: F64
    beta_now: F64
    opened: int
    closed: int
    unpriced: int

    @classmethod
    def build(cls, previous: list[dict[str, Any]], current: list[dict[str, Any]]) -> Aligned:
        """Align the previous book (PREVIOUS_POSITIONS) and today's (POSITIONS) on position id."""
        prev = {r["position_id"]: r for r in previous}
        now = {r["position_id"]: r for r in current}
        ids = list(dict.fromkeys([*prev, *now]))

        def pick(rows: dict[Any, dict[str, Any]], name: str) -> F64:
            return floats([rows[i].get(name) if i in rows else None for i in ids])

        q_prev = np.nan_to_num(pick(prev, "quantity"))
        q_now = np.nan_to_num(pick(now, "quantity"))
        return cls(
            q_prev=q_prev,
            q_now=q_now,
            mv_prev=pick(prev, "market_value"),
            mv_now=pick(now, "market_value"),
            ex_prev=pick(prev, "dollar_exposure"),
            ex_now=pick(now, "dollar_exposure"),
            beta_prev=pick(prev, "market_beta"),
            beta_now=pick(now, "market_beta"),
            opened=sum(1 for i in now if i not in prev),
            closed=sum(1 for i in prev if i not in now),
            unpriced=int(sum(1 for r in current if r.get("market_value") is None)),
        )


def _per_unit(value: F64, quantity: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(quantity != 0, value / quantity, np.nan)


def _units(prev_value: F64, now_value: F64, a: Aligned) -> tuple[F64, F64, B]:
    """Per-unit values of both days (u_t = u_p for closed positions) and the mask of usable rows."""
    u_prev = _per_unit(prev_value, a.q_prev)
    u_now = _per_unit(now_value, a.q_now)
    u_now = np.where(a.q_now == 0, u_prev, u_now)
    u_prev = np.where(a.q_prev == 0, u_now, u_prev)
    usable = np.isfinite(u_prev) & np.isfinite(u_now)
    return np.where(usable, u_prev, 0.0), np.where(usable, u_now, 0.0), usable


@dataclass(frozen=True)
class Split:
    """A figure's change split into parts (dollars); `excluded` positions had no value on a needed day."""

    parts: dict[str, float]
    excluded: int


def split(prev_value: F64, now_value: F64, a: Aligned, *, gross: bool = False) -> Split:
    """Market / positions split of Σ q·u (or Σ |q·u| when `gross`)."""
    u_prev, u_now, usable = _units(prev_value, now_value, a)

    def f(q: F64, u: F64) -> F64:
        return np.abs(q * u) if gross else q * u

    market = f(a.q_prev, u_now) - f(a.q_prev, u_prev)
    positions = f(a.q_now, u_now) - f(a.q_prev, u_now)
    return Split({"market": float(market.sum()), "positions": float(positions.sum())}, int((~usable).sum()))


def split_beta_adjusted(a: Aligned) -> Split:
    """Market / beta re-estimation / positions split of Σ β·E."""
    e_prev, e_now, usable = _units(a.ex_prev, a.ex_now, a)
    b_prev = np.where(a.q_prev == 0, a.beta_now, a.beta_prev)
    b_now = np.where(a.q_now == 0, b_prev, a.beta_now)
    usable &= np.isfinite(b_prev) & np.isfinite(b_now)
    b_prev, b_now = np.where(usable, b_prev, 0.0), np.where(usable, b_now, 0.0)
    market = a.q_prev * b_prev * (e_now - e_prev)
    betas = a.q_prev * (b_now - b_prev) * e_now
    positions = (a.q_now - a.q_prev) * b_now * e_now
    return Split(
        {"market": float(market.sum()), "beta_update": float(betas.sum()), "positions": float(positions.sum())},
        int((~usable).sum()),
    )


def rounded_parts(change: Decimal, parts: dict[str, float], *, complete: bool) -> dict[str, Decimal]:
    """Parts rounded to cents. When every position was attributed (`complete`) the last part absorbs the
    rounding so the parts add up to `change` exactly; otherwise what is left is shown as `unattributed`."""
    names = list(parts)
    out = {n: Decimal(repr(parts[n])).quantize(Decimal("0.01")) for n in names}
    residual = change - sum(out.values(), Decimal(0))
    if complete:
        out[names[-1]] += residual
    else:
        out["unattributed"] = residual
    return out
