"""Factor performance attribution of #45 `include=attribution` (calculations.md §4.9, informational).

For each trading day t in the window, with the portfolio's stored exposures X of the previous
trading day and that day's market loadings b_k:
  market_contribution_t = X_M,prev · r_SPY,t                 (exact)
  style_contribution_k,t = X_k,prev · (r_k,t − b_k · r_SPY,t)  (stand-alone, overlapping: never summed)
  residual_after_market_t = portfolio daily P&L_t − market_contribution_t
Returns are simple returns of adjusted closes (the rate factor: the 10-year yield change in
fractions); contributions are USD. Days without stored exposures on the previous day or without an
SPY return are left out (`days` counts the days used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.formatting import money
from factors import compute
from factors import repository as repo


def contributions(
    returns: np.ndarray,
    exposures: np.ndarray,
    loadings: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(used days mask (T,), contribution per factor (F,)) for column 0 = market.

    `returns` (T, F) raw factor returns (market first), `exposures` (T, F) X of the previous day,
    `loadings` (T, F) b_k of the previous day (column 0 ignored); NaN = missing."""
    market = returns[:, 0]
    used = np.isfinite(market) & np.isfinite(exposures[:, 0])
    model = returns - np.nan_to_num(loadings) * market[:, None]
    model[:, 0] = market
    # A missing style return or exposure contributes nothing on that day; the market part is exact.
    terms = np.where(used[:, None], np.nan_to_num(exposures * model), 0.0)
    return used, terms.sum(axis=0)


async def attribution_block(session: AsyncSession, *, portfolio_id: UUID, end: date, days: int) -> dict[str, Any]:
    """The #45 attribution block over the last `days` trading days ending at `end`."""
    defs = [d for d in await repo.factor_definitions(session) if d.is_active and d.calculation_method == "regression"]
    codes = [compute.MARKET, *[d.code for d in defs if d.code != compute.MARKET]]
    by_code = {d.code: d for d in defs}
    window = await repo.trading_window(session, as_of=end, returns=days)
    if len(window) < 2:
        return _block(window[0] if window else end, end, 0, None, {c: 0.0 for c in codes})
    returns = await _returns(session, window, [by_code[c] for c in codes])
    exposure_hist = await repo.market_exposure_history(
        session, portfolio_id=portfolio_id, start=window[0], end=window[-2]
    )
    loading_hist = await repo.market_loadings_history(session, start=window[0], end=window[-2])
    prev = window[:-1]
    exposures = _grid(prev, codes, exposure_hist)
    loadings = _grid(prev, codes, loading_hist)
    used, totals = contributions(returns, exposures, loadings)
    used_days = [d for d, u in zip(window[1:], used, strict=True) if u]
    pnl = (
        await repo.snapshot_pnl(session, portfolio_id=portfolio_id, start=window[1], end=window[-1])
        if await _snapshots_published(session)
        else {}
    )
    portfolio_pnl = sum((Decimal(pnl[d]) for d in used_days), Decimal(0)) if all(d in pnl for d in used_days) else None
    return _block(window[1], window[-1], len(used_days), portfolio_pnl, dict(zip(codes, totals.tolist(), strict=True)))


async def _returns(session: AsyncSession, window: Sequence[date], defs: Sequence[repo.FactorDef]) -> np.ndarray:
    etf = [j for j, d in enumerate(defs) if d.proxy_type == "etf"]
    closes = await repo.close_matrix(session, symbols=[defs[j].proxy or "" for j in etf], days=window)
    out = np.full((len(window) - 1, len(defs)), np.nan)
    out[:, etf] = compute.simple_returns(closes)
    for j, d in enumerate(defs):
        if d.proxy_type == "rate_series" and d.proxy:
            out[:, j] = compute.yield_changes(await repo.rate_levels(session, days=window, series=d.proxy))
    return out


async def _snapshots_published(session: AsyncSession) -> bool:
    """stress.api_snapshot exists (the stress schema is deployed); without it P&L is unknown (null)."""
    found = await session.execute(sa.text("SELECT to_regclass('stress.api_snapshot') IS NOT NULL"))
    return bool(found.scalar())


def _grid(days: Sequence[date], codes: Sequence[str], values: Mapping[date, Mapping[str, float]]) -> np.ndarray:
    out = np.full((len(days), len(codes)), np.nan)
    for i, d in enumerate(days):
        row = values.get(d, {})
        out[i] = [row.get(c, np.nan) for c in codes]
    return out


def _block(start: date, end: date, days: int, pnl: Decimal | None, totals: Mapping[str, float]) -> dict[str, Any]:
    market = totals.get(compute.MARKET, 0.0)
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "days": days,
        "portfolio_pnl": money(pnl),
        "market_contribution": money(market),
        "residual_after_market": money(pnl - Decimal(str(market))) if pnl is not None else None,
        "style_contributions": [
            {"code": c, "contribution": money(v)} for c, v in totals.items() if c != compute.MARKET
        ],
        "non_additive": True,
    }
