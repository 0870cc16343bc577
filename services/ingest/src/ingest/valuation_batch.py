"""The `aggregations` step for many portfolios at once: one read, one vectorised valuation, one write.

Every input is per position or per symbol, and `compute.value_positions` is elementwise, so valuing
the concatenated positions of a batch is valuing each portfolio: the per-portfolio fallback that
isolates a failing portfolio (`service.value_portfolio`) is a batch of one. Money crosses the
database boundary as scaled integers (NUMERIC(18,4) × 10^4, NUMERIC(20,2) × 100, exact both ways)
so no per-row Decimal is built in Python.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ingest import catalog, compute
from ingest.compute import NA, ValuationInput, ValuationResult
from ingest.repository import trading_days_before

# Closes: the latest row per symbol inside the stale window. LATERAL … LIMIT 1
# makes it one primary-key probe per symbol, whatever the (often stale) row estimates say.
_CLOSES = """
{name} AS (
  SELECT s.symbol, c.price_date, c.close FROM syms s
  CROSS JOIN LATERAL (
    SELECT d.price_date, d.close FROM marketdata.api_daily_price d
    WHERE d.symbol = s.symbol AND d.price_date <= {upto} AND d.price_date >= {since}
    ORDER BY d.price_date DESC LIMIT 1
  ) c
)"""

_NO_CLOSES = "{name} AS (SELECT NULL::text AS symbol, NULL::date AS price_date, NULL::numeric AS close WHERE false)"

# Greeks of options only (stocks never look them up); LATERAL: a key probe each.
_GREEKS_JOIN = (
    "LEFT JOIN LATERAL (SELECT g.status, g.delta, g.delta_ps, g.model_price FROM greeks.api_position_greek g "
    "WHERE g.position_id = pos.id AND g.calculation_date = {day} LIMIT 1) {a} ON pos.is_option"
)
_NO_GREEKS = (
    "LEFT JOIN (SELECT NULL::text AS status, NULL::float8 AS delta, NULL::float8 AS delta_ps, "
    "NULL::float8 AS model_price WHERE false) {a} ON false"
)

_POSITIONS = """
WITH pos AS (
  SELECT id, portfolio_id, symbol, underlying_symbol, instrument_type = 'option' AS is_option,
         coalesce(option_type = 'C', false) AS is_call, CAST(quantity * 10000 AS int8) AS quantity,
         CAST(quantity AS float8) AS quantity_f, CAST(multiplier AS int8) AS multiplier,
         coalesce(CAST(strike_price * 10000 AS int8), 0) AS strike, expiration_date,
         CAST(entry_price * 10000 AS int8) AS entry_price, entry_date,
         coalesce(CAST(cost_basis * 100 AS int8), :na) AS cost_basis
  FROM ingest.position
  WHERE portfolio_id = ANY(CAST(:pids AS uuid[])) AND entry_date <= :t AND (status = 'open' OR exit_date > :t)
),
syms AS (SELECT symbol FROM pos UNION SELECT underlying_symbol FROM pos),
{close_t},
{close_p}
SELECT pos.id, pos.portfolio_id, pos.symbol, pos.is_option, pos.is_call, pos.quantity, pos.quantity_f,
       pos.multiplier, pos.strike, pos.expiration_date, pos.entry_price, pos.entry_date, pos.cost_basis,
       coalesce(CAST(ct.close * 10000 AS int8), :na) AS close_t, ct.price_date AS close_t_date,
       coalesce(CAST(cp.close * 10000 AS int8), :na) AS close_p, cp.price_date AS close_p_date,
       CASE WHEN pos.is_option THEN coalesce(CAST(ut.close * 10000 AS int8), :na) ELSE :na END AS underlying_t,
       gt.status AS status_t, gt.delta_ps IS NOT NULL AS has_delta_ps, gt.delta_ps, gt.delta,
       gt.model_price AS model_t, gp.model_price AS model_p
FROM pos
LEFT JOIN close_t ct ON ct.symbol = pos.symbol
LEFT JOIN close_p cp ON cp.symbol = pos.symbol
LEFT JOIN close_t ut ON ut.symbol = pos.underlying_symbol
{greeks_t}
{greeks_p}
ORDER BY pos.portfolio_id, pos.id
"""


def _positions_sql(present: frozenset[str]) -> str:
    """The one read, built from the optional views that exist (absent ones read as no rows)."""
    prices = catalog.DAILY_PRICE in present
    greeks = catalog.POSITION_GREEK in present
    return _POSITIONS.format(
        close_t=(_CLOSES if prices else _NO_CLOSES).format(name="close_t", upto=":t", since=":wt"),
        close_p=(_CLOSES if prices else _NO_CLOSES).format(name="close_p", upto=":p", since=":wp"),
        greeks_t=(_GREEKS_JOIN if greeks else _NO_GREEKS).format(a="gt", day=":t"),
        greeks_p=(_GREEKS_JOIN if greeks else _NO_GREEKS).format(a="gp", day=":p"),
    )


@dataclass(frozen=True)
class LoadedBatch:
    """Positions of several portfolios held at `as_of` (grouped by portfolio) and their inputs."""

    ids: list[UUID]
    portfolio_ids: list[UUID]  # per position
    inputs: ValuationInput


def _per_share_delta(
    cols: dict[str, Any], quantity_f: npt.NDArray[np.float64], multiplier: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Per-share delta of each position: 0 when expired, NaN without a usable delta (delta_ps, else delta / (q·m))."""
    status = np.array(cols["status_t"], dtype=object)
    delta_ps = np.array(cols["delta_ps"], dtype=np.float64)
    delta = np.array(cols["delta"], dtype=np.float64)
    has_ps = np.array(cols["has_delta_ps"], dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = np.where(
            np.isfinite(delta) & (quantity_f != 0), delta / (quantity_f * multiplier.astype(np.float64)), np.nan
        )
    out = np.where(has_ps, delta_ps, derived)
    out[status == "expired"] = 0.0
    out[(status == None) | (status == "missing_inputs") | (status == "error")] = np.nan  # noqa: E711
    return out


async def load_many(
    session: AsyncSession, portfolio_ids: list[UUID], as_of: date, stale_days: int, present: frozenset[str]
) -> LoadedBatch:
    """Positions held at `as_of` of every portfolio in `portfolio_ids`, with prices and Greeks."""
    cal = compute.trading_calendar(await trading_days_before(session, as_of, present), as_of, stale_days)
    params = {
        "pids": portfolio_ids,
        "t": as_of,
        "p": cal.prev_date,
        "wt": cal.window_t,
        "wp": cal.window_p,
        "na": NA,
    }
    # JIT compilation costs ~40 ms, more than the query itself; bloated tables (many dead tuples
    # between autovacuum runs) inflate the row estimates past jit_above_cost, so keep it off here.
    await session.execute(sa.text("SET LOCAL jit = off"))
    result = await session.execute(sa.text(_positions_sql(present)), params)
    keys = list(result.keys())
    rows = result.all()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
    cols: dict[str, Any] = dict(zip(keys, columns, strict=True))

    def ints(name: str) -> npt.NDArray[np.int64]:
        return np.array(cols[name], dtype=np.int64)

    def days(name: str) -> Any:
        return np.array(cols[name], dtype="datetime64[D]")

    def floats(name: str) -> npt.NDArray[np.float64]:
        return np.array(cols[name], dtype=np.float64)  # NULL → NaN

    multiplier = ints("multiplier")
    inputs = ValuationInput(
        as_of=as_of,
        prev_date=cal.prev_date,
        quantity=ints("quantity"),
        multiplier=multiplier,
        is_option=np.array(cols["is_option"], dtype=bool),
        is_call=np.array(cols["is_call"], dtype=bool),
        strike=ints("strike"),
        expiry=days("expiration_date"),
        entry_price=ints("entry_price"),
        entry_date=days("entry_date"),
        cost_basis=ints("cost_basis"),
        close_t=ints("close_t"),
        close_t_date=days("close_t_date"),
        close_p=ints("close_p"),
        close_p_date=days("close_p_date"),
        model_t=floats("model_t"),
        model_p=floats("model_p"),
        underlying_t=ints("underlying_t"),
        delta_ps=_per_share_delta(cols, floats("quantity_f"), multiplier),
    )
    return LoadedBatch(list(cols["id"]), list(cols["portfolio_id"]), inputs)


_UPSERT_MANY = """
INSERT INTO ingest.position_valuation AS v (position_id, valuation_date, portfolio_id, last_price, underlying_price,
    price_date, price_source, market_value, dollar_exposure, notional, unrealized_pnl, daily_pnl, quantity, delta,
    flags, run_id)
SELECT u.position_id, CAST(:t AS date), u.portfolio_id, NULLIF(u.last_price, :na) * 0.0001,
       NULLIF(u.underlying_price, :na) * 0.0001, u.price_date, u.price_source,
       NULLIF(u.market_value, :na) * 0.01, NULLIF(u.dollar_exposure, :na) * 0.01, NULLIF(u.notional, :na) * 0.01,
       NULLIF(u.unrealized_pnl, :na) * 0.01, NULLIF(u.daily_pnl, :na) * 0.01, u.quantity * 0.0001,
       NULLIF(u.delta, 'NaN'::float8), string_to_array(u.flags, ','), CAST(:run_id AS uuid)
FROM unnest(CAST(:ids AS uuid[]), CAST(:pids AS uuid[]), CAST(:last_price AS int8[]),
            CAST(:underlying_price AS int8[]), CAST(:price_date AS date[]), CAST(:price_source AS text[]),
            CAST(:market_value AS int8[]), CAST(:dollar_exposure AS int8[]), CAST(:notional AS int8[]),
            CAST(:unrealized_pnl AS int8[]), CAST(:daily_pnl AS int8[]), CAST(:quantity AS int8[]),
            CAST(:delta AS float8[]), CAST(:flags AS text[]))
  AS u(position_id, portfolio_id, last_price, underlying_price, price_date, price_source, market_value,
       dollar_exposure, notional, unrealized_pnl, daily_pnl, quantity, delta, flags)
ON CONFLICT (position_id, valuation_date) DO UPDATE SET
    portfolio_id = EXCLUDED.portfolio_id, last_price = EXCLUDED.last_price,
    underlying_price = EXCLUDED.underlying_price, price_date = EXCLUDED.price_date,
    price_source = EXCLUDED.price_source, market_value = EXCLUDED.market_value,
    dollar_exposure = EXCLUDED.dollar_exposure, notional = EXCLUDED.notional,
    unrealized_pnl = EXCLUDED.unrealized_pnl, daily_pnl = EXCLUDED.daily_pnl, quantity = EXCLUDED.quantity,
    delta = EXCLUDED.delta, flags = EXCLUDED.flags, run_id = EXCLUDED.run_id, created_at = now()
"""

# Current columns follow the newest valuation only: a back-fill for an older date never overwrites them.
_UPDATE_CURRENT_MANY = """
UPDATE ingest.position p SET
    last_price = v.last_price, price_date = v.price_date, price_source = v.price_source,
    underlying_price = v.underlying_price, market_value = v.market_value, dollar_exposure = v.dollar_exposure,
    notional = v.notional, unrealized_pnl = v.unrealized_pnl, daily_pnl = v.daily_pnl,
    valuation_date = v.valuation_date, valued_at = now()
FROM ingest.position_valuation v
WHERE v.position_id = p.id AND v.valuation_date = :t AND p.portfolio_id = ANY(CAST(:pids AS uuid[]))
  AND p.status = 'open' AND (p.valuation_date IS NULL OR p.valuation_date <= :t)
  AND (p.price_date IS NULL OR p.price_date <= :t)
"""

_UPDATE_PORTFOLIOS = """
UPDATE ingest.portfolio SET valuation_date = :t, valued_at = now()
WHERE id = ANY(CAST(:pids AS uuid[])) AND (valuation_date IS NULL OR valuation_date <= :t)
"""

_SOURCE_LABELS = np.array([compute.SOURCE_NAMES.get(code) for code in range(4)], dtype=object)


def _flag_labels(flags: npt.NDArray[np.int32]) -> list[str]:
    """Comma-joined flag names per position (each distinct bit set formatted once)."""
    distinct, inverse = np.unique(flags, return_inverse=True)
    labels = np.array([",".join(compute.flag_names(int(f))) for f in distinct], dtype=object)
    return list(labels[inverse.reshape(-1)])


async def save_many(
    session: AsyncSession,
    *,
    portfolio_ids: list[UUID],
    as_of: date,
    run_id: UUID | None,
    loaded: LoadedBatch,
    result: ValuationResult,
) -> None:
    """Upsert every `position_valuation` row of the batch and refresh the current columns."""
    if loaded.ids:
        delta = result.delta
        params = {
            "t": as_of,
            "na": NA,
            "run_id": run_id,
            "ids": loaded.ids,
            "pids": loaded.portfolio_ids,
            "last_price": result.last_price.tolist(),
            "underlying_price": result.underlying_price.tolist(),
            "price_date": result.price_date.astype("datetime64[D]").tolist(),
            "price_source": list(_SOURCE_LABELS[result.price_source.astype(np.int64)]),
            "market_value": result.market_value.tolist(),
            "dollar_exposure": result.dollar_exposure.tolist(),
            "notional": result.notional.tolist(),
            "unrealized_pnl": result.unrealized_pnl.tolist(),
            "daily_pnl": result.daily_pnl.tolist(),
            "quantity": loaded.inputs.quantity.tolist(),
            "delta": np.where(np.isfinite(delta), delta, np.nan).tolist(),  # ±inf stored as NULL too
            "flags": _flag_labels(result.flags),
        }
        await session.execute(sa.text(_UPSERT_MANY), params)
        await session.execute(sa.text(_UPDATE_CURRENT_MANY), {"t": as_of, "pids": portfolio_ids})
    await session.execute(sa.text(_UPDATE_PORTFOLIOS), {"t": as_of, "pids": portfolio_ids})


@dataclass(frozen=True)
class PortfolioCounts:
    """Per-portfolio counts of one batch (aligned with the `portfolio_ids` passed in)."""

    positions: npt.NDArray[np.int64]
    unpriced: npt.NDArray[np.int64]
    stale: npt.NDArray[np.int64]
    without_delta: npt.NDArray[np.int64]
    prev_missing: npt.NDArray[np.int64]


def count_by_portfolio(portfolio_ids: list[UUID], loaded: LoadedBatch, result: ValuationResult) -> PortfolioCounts:
    """Positions and flagged positions per portfolio (segment ids + bincount, no per-row loop)."""
    index = {pid: i for i, pid in enumerate(portfolio_ids)}
    n = len(portfolio_ids)
    # Rows arrive grouped by portfolio: map each run's portfolio once, then repeat it over the run.
    pids = np.array(loaded.portfolio_ids, dtype=object)
    if pids.size:
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        lengths = np.diff(np.r_[starts, pids.size])
        seg = np.repeat(np.array([index[p] for p in pids[starts]], dtype=np.int64), lengths)
    else:
        seg = np.zeros(0, dtype=np.int64)

    def count(mask: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.int64]:
        weights = None if mask is None else mask.astype(np.int64)
        return np.bincount(seg, weights=weights, minlength=n).astype(np.int64)

    flags = result.flags
    return PortfolioCounts(
        positions=count(),
        unpriced=count((flags & compute.FLAG_UNPRICED) != 0),
        stale=count((flags & compute.FLAG_PRICE_STALE) != 0),
        without_delta=count((flags & compute.FLAG_NO_DELTA) != 0),
        prev_missing=count((flags & compute.FLAG_PREV_PRICE_MISSING) != 0),
    )


async def value_many(
    session: AsyncSession,
    *,
    portfolio_ids: list[UUID],
    as_of: date,
    run_id: UUID | None,
    present: frozenset[str],
    stale_days: int,
) -> PortfolioCounts:
    """Value and store every portfolio of `portfolio_ids` (all live) in one pass."""
    loaded = await load_many(session, portfolio_ids, as_of, stale_days, present)
    result = await asyncio.to_thread(compute.value_positions, loaded.inputs)
    await save_many(session, portfolio_ids=portfolio_ids, as_of=as_of, run_id=run_id, loaded=loaded, result=result)
    return count_by_portfolio(portfolio_ids, loaded, result)
