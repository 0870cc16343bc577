"""Model inputs (calculations.md §3.2): load market data for a set of contracts, build the compute
batch, and turn compute results into greeks.position_greek records.

Loading is I/O (one query per input kind, for every contract of the batch at once); the
marshalling helpers are plain functions so that the daily step and the ad hoc endpoint share them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.formatting import PRICE_QUANTUM, round_money, to_decimal
from greeks import compute, repository
from greeks.compute import OptionBatch, OptionResults
from greeks.repository import PriceHistory

log = logging.getLogger(__name__)

_ERROR_MESSAGES = {
    compute.REASON_UNDERLYING_MISSING: "no close of the underlying on the as-of date or within 5 trading days",
    compute.REASON_BAD_UNDERLYING: "underlying price must be > 0",
    compute.REASON_BAD_STRIKE: "strike price must be > 0",
    compute.REASON_BAD_INPUT: "option fields (type, strike, expiry) or model inputs are missing or not finite",
}


@dataclass(frozen=True)
class Contract:
    """One option contract to evaluate, with optional ad hoc overrides (None = read market data)."""

    symbol: str
    underlying: str
    option_type: str | None
    strike: Decimal | None
    expiration_date: date | None
    quantity: Decimal
    multiplier: int = 100
    position_id: UUID | None = None
    portfolio_id: UUID | None = None
    underlying_price: float | None = None
    implied_volatility: float | None = None
    risk_free_rate: float | None = None
    dividend_yield: float | None = None


@dataclass
class MarketInputs:
    """Market data for one as-of date, keyed by symbol."""

    as_of: date
    spot: dict[str, tuple[float, date]] = field(default_factory=dict)
    option_close: dict[str, float] = field(default_factory=dict)
    vendor_iv: dict[str, float] = field(default_factory=dict)
    historical_vol: dict[str, float] = field(default_factory=dict)
    dividend_yield: dict[str, float] = field(default_factory=dict)
    tenors: np.ndarray = field(default_factory=lambda: np.empty(0))
    yields: np.ndarray = field(default_factory=lambda: np.empty(0))


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _spots(history: PriceHistory, und: list[str], stale_floor: date) -> dict[str, tuple[float, date]]:
    """Spot per underlying: the close on as_of, else the latest close within the stale window."""
    floor = (stale_floor - history.start).days
    keep = np.flatnonzero(history.has_close & (history.day >= floor))
    if keep.size == 0:
        return {}
    sym, day = history.symbol[keep], history.day[keep]
    order = np.lexsort((day, sym))  # by symbol, then date: the last row of each symbol is its latest
    last = order[np.r_[sym[order][1:] != sym[order][:-1], True]]
    return {
        und[s]: (float(c), history.start + timedelta(days=int(d)))
        for s, c, d in zip(sym[last].tolist(), history.close[keep][last].tolist(), day[last].tolist(), strict=True)
    }


def _historical_vols(history: PriceHistory, und: list[str], slots: list[tuple[date, date]]) -> dict[str, float]:
    """63-return historical volatility: returns only where a day and its previous trading day both
    have an adjusted close (no forward fill)."""
    axis = sorted({d for d, _ in slots} | {p for _, p in slots})
    offsets = np.array([(d - history.start).days for d in axis], dtype=np.int64)
    col = np.searchsorted(offsets, history.day).clip(0, len(axis) - 1)
    on_axis = (offsets[col] == history.day) & history.has_adj_close
    matrix = np.full((len(und), len(axis)), np.nan)
    matrix[history.symbol[on_axis], col[on_axis]] = history.adj_close[on_axis]
    pos = {d: i for i, d in enumerate(axis)}
    cur = np.array([pos[d] for d, _ in slots], dtype=np.int64)
    prev = np.array([pos[p] for _, p in slots], dtype=np.int64)
    vol, _ = compute.historical_volatility(matrix, cur, prev)
    return {s: float(v) for s, v in zip(und, vol.tolist(), strict=True) if math.isfinite(v)}


async def load_market_inputs(
    session: AsyncSession, *, as_of: date, underlyings: set[str], option_symbols: set[str]
) -> MarketInputs:
    """Underlying closes (stale ≤ 5 trading days), option closes and vendor IVs on as_of, 63-return
    historical volatility, the risk-free curve and dividend yields, for all contracts at once."""
    market = MarketInputs(as_of=as_of)
    days = await repository.trading_days(session, as_of=as_of, count=compute.HV_WINDOW)
    # Oldest acceptable underlying close: 5 trading days back (7 calendar days without a calendar).
    stale_floor = days[min(compute.STALE_PRICE_MAX_DAYS, len(days) - 1)][0] if days else as_of - timedelta(days=7)
    slots: list[tuple[date, date]] = [(d, p) for d, p in days if p is not None]
    start = min([stale_floor, *(p for _, p in slots)])
    und = sorted(underlyings)
    history = await repository.price_history(session, symbols=und, start=start, end=as_of)
    market.spot = _spots(history, und, stale_floor)
    if slots and und:
        market.historical_vol = _historical_vols(history, und, slots)

    for row in await repository.prices(session, symbols=sorted(option_symbols), start=as_of, end=as_of):
        if row.close is not None and row.close > 0:
            market.option_close[row.symbol] = float(row.close)
        if row.implied_volatility is not None and math.isfinite(row.implied_volatility):
            market.vendor_iv[row.symbol] = float(row.implied_volatility)

    market.tenors, market.yields = compute.curve_nodes(
        await repository.curve_observations(session, as_of=as_of, max_age_days=compute.RATE_MAX_AGE_DAYS), as_of
    )
    for symbol, sec in (await repository.securities(session, symbols=und)).items():
        if sec["dividend_yield"] is not None and math.isfinite(float(sec["dividend_yield"])):
            market.dividend_yield[symbol] = float(sec["dividend_yield"])
    return market


def build_batch(contracts: list[Contract], market: MarketInputs) -> tuple[OptionBatch, list[date | None]]:
    """Column arrays for compute.evaluate, plus the date of the underlying close used per contract."""
    n = len(contracts)
    spot_info = [market.spot.get(c.underlying) for c in contracts]
    spot = np.array(
        [
            c.underlying_price if c.underlying_price is not None else (info[0] if info else math.nan)
            for c, info in zip(contracts, spot_info, strict=True)
        ],
        dtype=np.float64,
    )
    spot_date = [
        (market.as_of if c.underlying_price is not None else (info[1] if info else None))
        for c, info in zip(contracts, spot_info, strict=True)
    ]
    stale = np.array([d is not None and d < market.as_of for d in spot_date], dtype=bool)
    valid_type = np.array([c.option_type in ("C", "P") for c in contracts], dtype=bool)
    days = np.array(
        [(c.expiration_date - market.as_of).days if c.expiration_date else math.nan for c in contracts],
        dtype=np.float64,
    )
    days[~valid_type] = math.nan  # no call/put flag: reported as an input error
    T = np.where(np.isfinite(days), days, 0.0) / compute.DAYS_PER_YEAR
    curve_rate, rate_default = compute.risk_free_rates(T, market.tenors, market.yields)
    rate_override = np.array([_float(c.risk_free_rate) for c in contracts], dtype=np.float64)
    has_rate = np.isfinite(rate_override)
    rate = np.where(has_rate, rate_override, curve_rate)
    div_known = np.array(
        [c.dividend_yield is not None or c.underlying in market.dividend_yield for c in contracts], dtype=bool
    )
    dividend = np.array(
        [
            c.dividend_yield if c.dividend_yield is not None else market.dividend_yield.get(c.underlying, 0.0)
            for c in contracts
        ],
        dtype=np.float64,
    )
    flags = (
        np.where(stale, compute.FLAG_UNDERLYING_PRICE_STALE, 0)
        | np.where(~has_rate & rate_default, compute.FLAG_RATE_DEFAULT, 0)
        | np.where(~div_known, compute.FLAG_DIVIDEND_UNKNOWN, 0)
    )
    batch = OptionBatch.build(
        n,
        spot=spot,
        strike=[_float(c.strike) for c in contracts],
        days_to_expiry=days,
        is_call=[c.option_type == "C" for c in contracts],
        quantity=[float(c.quantity) for c in contracts],
        multiplier=[float(c.multiplier) for c in contracts],
        rate=rate,
        dividend_yield=dividend,
        option_price=[market.option_close.get(c.symbol, math.nan) for c in contracts],
        vendor_iv=[market.vendor_iv.get(c.symbol, math.nan) for c in contracts],
        historical_vol=[market.historical_vol.get(c.underlying, math.nan) for c in contracts],
        sigma_override=[_float(c.implied_volatility) for c in contracts],
        flags=flags,
    )
    return batch, spot_date


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _price_decimal(value: float) -> Decimal | None:
    d = to_decimal(value)
    return None if d is None else d.quantize(PRICE_QUANTUM)


def evaluate_contracts(
    contracts: list[Contract], market: MarketInputs, *, run_id: UUID | None = None, workers: int = 1
) -> list[dict[str, Any]]:
    """Evaluate contracts and return one record per contract (the columns of greeks.position_greek).

    Synchronous and CPU-bound: callers run it in a worker thread for large batches.
    """
    if not contracts:
        return []
    batch, spot_date = build_batch(contracts, market)
    res = compute.evaluate(batch, workers=workers)
    return to_records(contracts, market, batch, res, spot_date, run_id=run_id)


def to_records(
    contracts: list[Contract],
    market: MarketInputs,
    batch: OptionBatch,
    res: OptionResults,
    spot_date: list[date | None],
    *,
    run_id: UUID | None,
) -> list[dict[str, Any]]:
    """Compute results → storage-shaped records (money as Decimal cents, NaN as None)."""
    # Column lists converted once (tolist is C-level); the row loop below only assembles dicts.
    cols = {
        "delta": res.delta.tolist(),
        "gamma": res.gamma.tolist(),
        "theta": res.theta.tolist(),
        "vega": res.vega.tolist(),
        "rho": res.rho.tolist(),
        "dollar_delta": res.dollar_delta.tolist(),
        "dollar_gamma_1pct": res.dollar_gamma_1pct.tolist(),
        "model_price": res.per_share.price.tolist(),
        "delta_ps": res.per_share.delta.tolist(),
        "gamma_ps": res.per_share.gamma.tolist(),
        "theta_ps": res.per_share.theta.tolist(),
        "vega_ps": res.per_share.vega.tolist(),
        "rho_ps": res.per_share.rho.tolist(),
        "implied_volatility": res.sigma.tolist(),
        "time_to_expiry_years": res.time_to_expiry.tolist(),
    }
    spot = batch.spot.tolist()
    rate = batch.rate.tolist()
    dividend = batch.dividend_yield.tolist()
    option_price = batch.option_price.tolist()
    status = res.status.tolist()
    reason = res.reason.tolist()
    flags = res.flags.tolist()
    source = res.iv_source.tolist()
    records: list[dict[str, Any]] = []
    errors = 0
    for i, c in enumerate(contracts):
        st = compute.STATUS_NAMES[status[i]]
        has_inputs = st in ("ok", "expired")
        rec: dict[str, Any] = {
            "position_id": c.position_id,
            "calculation_date": market.as_of,
            "portfolio_id": c.portfolio_id,
            "symbol": c.symbol,
            "underlying_symbol": c.underlying,
            "option_type": c.option_type,
            "strike_price": c.strike,
            "expiration_date": c.expiration_date,
            "multiplier": c.multiplier,
            "quantity": c.quantity,
            "status": st,
            "reason": compute.REASON_NAMES[reason[i]],
            "error_message": _ERROR_MESSAGES.get(reason[i]) if st in ("error", "missing_inputs") else None,
            "flags": compute.flag_names(flags[i]),
            "engine_version": compute.ENGINE_VERSION,
            "run_id": run_id,
            "underlying_price": _price_decimal(spot[i]),
            "underlying_price_date": spot_date[i] if math.isfinite(spot[i]) else None,
            "option_price": _price_decimal(option_price[i]),
            "iv_source": compute.IV_SOURCE_NAMES[source[i]] if source[i] >= 0 else None,
            "risk_free_rate": _num(rate[i]) if has_inputs else None,
            "dividend_yield": _num(dividend[i]) if has_inputs else None,
        }
        for name, values in cols.items():
            rec[name] = _num(values[i])
        rec["dollar_delta"] = round_money(rec["dollar_delta"])
        rec["dollar_gamma_1pct"] = round_money(rec["dollar_gamma_1pct"])
        if st == "error":
            errors += 1
        records.append(rec)
    if errors:
        log.error("greeks: %d contract(s) with invalid inputs on %s", errors, market.as_of)
    return records
