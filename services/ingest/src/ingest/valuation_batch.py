"""The `aggregations` step for many portfolios at once: one read, one vectorised valuation, one write.

Every input is per position or per symbol, and `compute.value_positions` is elementwise, so valuing
the concatenated positions of a batch is valuing each portfolio: the per-portfolio fallback that
isolates a failing portfolio (`service.value_portfolio`) is a batch of one. Money crosses the
database boundary as scaled integers (NUMERIC(18,4) × 10^4, NUMERIC(20,2) × 100, exact both ways)
so no per-row Decimal is built in Python.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch_records
from common.run_cache import RunCache
from ingest import catalog, compute
from ingest.compute import NA, Calendar, ValuationInput, ValuationResult
from ingest.repository import trading_days_before
from ingest.run_closes import RunCloses

# Greeks of options only: the condition inside the LATERAL is a one-time filter, so a stock row
# never probes the index. The previous day's model price only stands in for a missing previous
# close (compute.value_positions ignores it where there is one).
_GREEKS_T = (
    "LEFT JOIN LATERAL (SELECT g.status, g.delta, g.delta_ps, g.model_price FROM greeks.api_position_greek g "
    "WHERE pos.is_option AND g.position_id = pos.id AND g.calculation_date = :t LIMIT 1) gt ON true"
)
_GREEKS_P = (
    "LEFT JOIN LATERAL (SELECT g.model_price FROM greeks.api_position_greek g "
    "WHERE pos.is_option AND g.position_id = pos.id AND g.calculation_date = :p LIMIT 1) gp "
    "ON true"
)
_NO_GREEKS = (
    "LEFT JOIN (SELECT NULL::text AS status, NULL::float8 AS delta, NULL::float8 AS delta_ps, "
    "NULL::float8 AS model_price WHERE false) {a} ON false"
)

# The batch's positions and their Greeks; closes come from `run_closes` (read once per run).
_POSITIONS = """
SELECT pos.id, pos.portfolio_id, pos.symbol, pos.underlying_symbol, pos.is_option, pos.is_call, pos.quantity,
       pos.quantity_f, pos.multiplier, pos.strike, pos.expiration_date, pos.entry_price, pos.entry_date,
       pos.cost_basis, gt.status AS status_t, gt.delta_ps IS NOT NULL AS has_delta_ps, gt.delta_ps, gt.delta,
       gt.model_price AS model_t, gp.model_price AS model_p
FROM (
  SELECT id, portfolio_id, symbol, underlying_symbol, instrument_type = 'option' AS is_option,
         coalesce(option_type = 'C', false) AS is_call, CAST(quantity * 10000 AS int8) AS quantity,
         CAST(quantity AS float8) AS quantity_f, CAST(multiplier AS int8) AS multiplier,
         coalesce(CAST(strike_price * 10000 AS int8), 0) AS strike,
         coalesce(CAST(expiration_date - DATE '1970-01-01' AS int8), :na) AS expiration_date,
         CAST(entry_price * 10000 AS int8) AS entry_price, entry_date - DATE '1970-01-01' AS entry_date,
         coalesce(CAST(cost_basis * 100 AS int8), :na) AS cost_basis
  FROM ingest.position
  WHERE portfolio_id = ANY(CAST(:pids AS uuid[])) AND entry_date <= :t AND (status = 'open' OR exit_date > :t)
) pos
{greeks_t}
{greeks_p}
ORDER BY pos.portfolio_id, pos.id
"""


def _positions_sql(present: frozenset[str]) -> str:
    """The batch read, built from the optional Greeks view if it exists (absent, it reads as no rows)."""
    greeks = catalog.POSITION_GREEK in present
    return _POSITIONS.format(
        greeks_t=_GREEKS_T if greeks else _NO_GREEKS.format(a="gt"),
        greeks_p=_GREEKS_P if greeks else _NO_GREEKS.format(a="gp"),
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


def _run_closes(cache: RunCache[RunCloses] | None, as_of: date, run_id: UUID | None, cal: Calendar) -> RunCloses:
    """The closes already read by this run (same date and calendar), else a new empty set kept for it."""
    cached = cache.get(as_of, run_id) if cache is not None else None
    if cached is not None and cached.calendar == cal:
        return cached
    fresh = RunCloses(as_of, cal)
    if cache is not None:
        cache.put(as_of, run_id, fresh)
    return fresh


@dataclass(frozen=True)
class _Closes:
    """Per position: close on T and on the previous trading day (× 10^4, NA when none) with their dates
    (days since 1970-01-01), and the underlying's close on T for options (NA for stocks)."""

    close_t: npt.NDArray[np.int64]
    close_t_date: npt.NDArray[np.int64]
    close_p: npt.NDArray[np.int64]
    close_p_date: npt.NDArray[np.int64]
    underlying_t: npt.NDArray[np.int64]


async def _closes_of(
    session: AsyncSession,
    known: RunCloses,
    symbols: Sequence[str],
    underlyings: Sequence[str],
    is_option: npt.NDArray[np.bool_],
    present: frozenset[str],
) -> _Closes:
    """Closes on T of held symbols and of options' underlyings, previous closes of held symbols only
    (an underlying's previous close is never used); only those not read yet by the run are read."""
    option_underlyings = np.asarray(underlyings, dtype=object)[is_option].tolist()
    await known.read_missing(session, [*symbols, *option_underlyings], symbols, prices=catalog.DAILY_PRICE in present)
    close_t, close_t_date = known.lookup_today(symbols)
    close_p, close_p_date = known.lookup_previous(symbols)
    underlying_t = np.where(is_option, known.lookup_today(underlyings)[0], NA)
    return _Closes(close_t, close_t_date, close_p, close_p_date, underlying_t)


async def load_many(
    session: AsyncSession,
    portfolio_ids: list[UUID],
    as_of: date,
    stale_days: int,
    present: frozenset[str],
    *,
    run_id: UUID | None = None,
    closes: RunCache[RunCloses] | None = None,
) -> LoadedBatch:
    """Positions held at `as_of` of every portfolio in `portfolio_ids`, with prices and Greeks.

    Closes already read by the same run (`closes`, keyed by `run_id`) are not read again."""
    cal = compute.trading_calendar(await trading_days_before(session, as_of, present), as_of, stale_days)
    params = {"pids": portfolio_ids, "t": as_of, "p": cal.prev_date, "na": NA}
    # JIT compilation costs ~40 ms, more than the query itself; bloated tables (many dead tuples
    # between autovacuum runs) inflate the row estimates past jit_above_cost, so keep it off here.
    await session.execute(sa.text("SET LOCAL jit = off"))
    # ~1,300 rows per batch of 64 books: asyncpg Records, transposed in C (SQLAlchemy's Row objects
    # were 40 % of the step's Python time). No row: every column is empty.
    rows = await fetch_records(session, _positions_sql(present), params)
    cols: dict[str, Any] = defaultdict(tuple)
    if rows:
        cols.update(zip(rows[0].keys(), zip(*rows, strict=True), strict=True))

    def ints(name: str) -> npt.NDArray[np.int64]:
        return np.array(cols[name], dtype=np.int64)

    def days(name: str) -> Any:
        # Dates arrive as days since 1970-01-01 (NULL → NA = int64 min, which is NaT): building
        # datetime64 from date objects costs ~1 µs each, from integers nothing.
        return np.array(cols[name], dtype=np.int64).view("datetime64[D]")

    def floats(name: str) -> npt.NDArray[np.float64]:
        return np.array(cols[name], dtype=np.float64)  # NULL → NaN

    is_option = np.array(cols["is_option"], dtype=bool)
    known = _run_closes(closes, as_of, run_id, cal)
    prices = await _closes_of(session, known, cols["symbol"], cols["underlying_symbol"], is_option, present)
    # The previous model price only stands in for a missing previous close: NaN elsewhere.
    model_p = np.where(prices.close_p == NA, floats("model_p"), np.nan)

    multiplier = ints("multiplier")
    inputs = ValuationInput(
        as_of=as_of,
        prev_date=cal.prev_date,
        quantity=ints("quantity"),
        multiplier=multiplier,
        is_option=is_option,
        is_call=np.array(cols["is_call"], dtype=bool),
        strike=ints("strike"),
        expiry=days("expiration_date"),
        entry_price=ints("entry_price"),
        entry_date=days("entry_date"),
        cost_basis=ints("cost_basis"),
        close_t=prices.close_t,
        close_t_date=prices.close_t_date.view("datetime64[D]"),
        close_p=prices.close_p,
        close_p_date=prices.close_p_date.view("datetime64[D]"),
        model_t=floats("model_t"),
        model_p=model_p,
        underlying_t=prices.underlying_t,
        delta_ps=_per_share_delta(cols, floats("quantity_f"), multiplier),
    )
    return LoadedBatch(list(cols["id"]), list(cols["portfolio_id"]), inputs)


# One statement per batch: the scaled integers are converted once (`u`), then
#  - position_valuation rows are inserted, or updated only where a value differs (a re-run of a
#    date that changed nothing writes no row: `run_id` and `created_at` keep naming the run that
#    produced the stored numbers);
#  - the current columns of ingest.position follow the newest valuation only (a back-fill for an
#    older date never overwrites them), again only where a value differs; none of these columns is
#    indexed, so the update can be HOT;
#  - the portfolios' valuation date and time are stamped (also on a re-run: "valued at").
# NOT EXISTS first skips identical rows with a read-only key probe: ON CONFLICT would lock (write)
# each conflicting row before looking at the WHERE. The WHERE of DO UPDATE still guards the race.
_SAVE_MANY = """
WITH u AS MATERIALIZED (
  SELECT u.position_id, (CAST(:pids AS uuid[]))[u.portfolio] AS portfolio_id,
         NULLIF(u.last_price, :na) * 0.0001 AS last_price, NULLIF(u.underlying_price, :na) * 0.0001 AS underlying_price,
         DATE '1970-01-01' + CAST(NULLIF(u.price_date, :na) AS int4) AS price_date, u.price_source,
         NULLIF(u.market_value, :na) * 0.01 AS market_value, NULLIF(u.dollar_exposure, :na) * 0.01 AS dollar_exposure,
         NULLIF(u.notional, :na) * 0.01 AS notional, NULLIF(u.unrealized_pnl, :na) * 0.01 AS unrealized_pnl,
         NULLIF(u.daily_pnl, :na) * 0.01 AS daily_pnl, u.quantity * 0.0001 AS quantity,
         NULLIF(u.delta, 'NaN'::float8) AS delta, string_to_array(u.flags, ',') AS flags
  FROM unnest(CAST(:ids AS uuid[]), CAST(:portfolio AS int4[]), CAST(:last_price AS int8[]),
              CAST(:underlying_price AS int8[]), CAST(:price_date AS int8[]), CAST(:price_source AS text[]),
              CAST(:market_value AS int8[]), CAST(:dollar_exposure AS int8[]), CAST(:notional AS int8[]),
              CAST(:unrealized_pnl AS int8[]), CAST(:daily_pnl AS int8[]), CAST(:quantity AS int8[]),
              CAST(:delta AS float8[]), CAST(:flags AS text[]))
    AS u(position_id, portfolio, last_price, underlying_price, price_date, price_source, market_value,
         dollar_exposure, notional, unrealized_pnl, daily_pnl, quantity, delta, flags)
),
saved AS (
  INSERT INTO ingest.position_valuation AS v (position_id, valuation_date, portfolio_id, last_price,
      underlying_price, price_date, price_source, market_value, dollar_exposure, notional, unrealized_pnl,
      daily_pnl, quantity, delta, flags, run_id)
  SELECT u.position_id, CAST(:t AS date), u.portfolio_id, u.last_price, u.underlying_price, u.price_date,
         u.price_source, u.market_value, u.dollar_exposure, u.notional, u.unrealized_pnl, u.daily_pnl,
         u.quantity, u.delta, u.flags, CAST(:run_id AS uuid)
  FROM u
  WHERE NOT EXISTS (
    SELECT 1 FROM ingest.position_valuation o
    WHERE o.position_id = u.position_id AND o.valuation_date = CAST(:t AS date)
      AND o.portfolio_id = ANY(CAST(:pids AS uuid[]))
      AND (o.portfolio_id, o.last_price, o.underlying_price, o.price_date, o.price_source, o.market_value,
           o.dollar_exposure, o.notional, o.unrealized_pnl, o.daily_pnl, o.quantity, o.delta, o.flags)
          IS NOT DISTINCT FROM
          (u.portfolio_id, u.last_price, u.underlying_price, u.price_date, u.price_source, u.market_value,
           u.dollar_exposure, u.notional, u.unrealized_pnl, u.daily_pnl, u.quantity, u.delta, u.flags))
  ON CONFLICT (position_id, valuation_date) DO UPDATE SET
      portfolio_id = EXCLUDED.portfolio_id, last_price = EXCLUDED.last_price,
      underlying_price = EXCLUDED.underlying_price, price_date = EXCLUDED.price_date,
      price_source = EXCLUDED.price_source, market_value = EXCLUDED.market_value,
      dollar_exposure = EXCLUDED.dollar_exposure, notional = EXCLUDED.notional,
      unrealized_pnl = EXCLUDED.unrealized_pnl, daily_pnl = EXCLUDED.daily_pnl, quantity = EXCLUDED.quantity,
      delta = EXCLUDED.delta, flags = EXCLUDED.flags, run_id = EXCLUDED.run_id, created_at = now()
  WHERE (v.portfolio_id, v.last_price, v.underlying_price, v.price_date, v.price_source, v.market_value,
         v.dollar_exposure, v.notional, v.unrealized_pnl, v.daily_pnl, v.quantity, v.delta, v.flags)
        IS DISTINCT FROM
        (EXCLUDED.portfolio_id, EXCLUDED.last_price, EXCLUDED.underlying_price, EXCLUDED.price_date,
         EXCLUDED.price_source, EXCLUDED.market_value, EXCLUDED.dollar_exposure, EXCLUDED.notional,
         EXCLUDED.unrealized_pnl, EXCLUDED.daily_pnl, EXCLUDED.quantity, EXCLUDED.delta, EXCLUDED.flags)
),
current AS (
  UPDATE ingest.position p SET
      last_price = u.last_price, price_date = u.price_date, price_source = u.price_source,
      underlying_price = u.underlying_price, market_value = u.market_value, dollar_exposure = u.dollar_exposure,
      notional = u.notional, unrealized_pnl = u.unrealized_pnl, daily_pnl = u.daily_pnl,
      valuation_date = CAST(:t AS date), valued_at = now()
  FROM u
  WHERE p.id = u.position_id AND p.portfolio_id = ANY(CAST(:pids AS uuid[])) AND p.status = 'open'
    AND (p.valuation_date IS NULL OR p.valuation_date <= :t) AND (p.price_date IS NULL OR p.price_date <= :t)
    AND (p.last_price, p.price_date, p.price_source, p.underlying_price, p.market_value, p.dollar_exposure,
         p.notional, p.unrealized_pnl, p.daily_pnl, p.valuation_date)
        IS DISTINCT FROM
        (u.last_price, u.price_date, u.price_source, u.underlying_price, u.market_value, u.dollar_exposure,
         u.notional, u.unrealized_pnl, u.daily_pnl, CAST(:t AS date))
)
"""

# The portfolios' stamp: the last part of _SAVE_MANY, or alone for a batch without positions.
_UPDATE_PORTFOLIOS = """
UPDATE ingest.portfolio SET valuation_date = :t, valued_at = now()
WHERE id = ANY(CAST(:pids AS uuid[])) AND (valuation_date IS NULL OR valuation_date <= :t)
"""
_SAVE_MANY += _UPDATE_PORTFOLIOS

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
    """Store the batch in one statement: changed `position_valuation` rows, current columns, portfolio stamps."""
    if loaded.ids:
        delta = result.delta
        params = {
            "t": as_of,
            "na": NA,
            "run_id": run_id,
            "ids": loaded.ids,
            # Per row: the 1-based index of its portfolio in `pids` and days since 1970-01-01 (NaT →
            # NA): integers are encoded far faster than UUID and date objects.
            "portfolio": (_segments(portfolio_ids, loaded) + 1).tolist(),
            "last_price": result.last_price.tolist(),
            "underlying_price": result.underlying_price.tolist(),
            "price_date": result.price_date.astype("datetime64[D]").view(np.int64).tolist(),
            "price_source": list(_SOURCE_LABELS[result.price_source.astype(np.int64)]),
            "market_value": result.market_value.tolist(),
            "dollar_exposure": result.dollar_exposure.tolist(),
            "notional": result.notional.tolist(),
            "unrealized_pnl": result.unrealized_pnl.tolist(),
            "daily_pnl": result.daily_pnl.tolist(),
            "quantity": loaded.inputs.quantity.tolist(),
            "delta": np.where(np.isfinite(delta), delta, np.nan).tolist(),  # ±inf stored as NULL too
            "flags": _flag_labels(result.flags),
            "pids": portfolio_ids,
        }
        await session.execute(sa.text(_SAVE_MANY), params)
    else:
        await session.execute(sa.text(_UPDATE_PORTFOLIOS), {"t": as_of, "pids": portfolio_ids})


@dataclass(frozen=True)
class PortfolioCounts:
    """Per-portfolio counts of one batch (aligned with the `portfolio_ids` passed in)."""

    positions: npt.NDArray[np.int64]
    unpriced: npt.NDArray[np.int64]
    stale: npt.NDArray[np.int64]
    without_delta: npt.NDArray[np.int64]
    prev_missing: npt.NDArray[np.int64]


def _segments(portfolio_ids: list[UUID], loaded: LoadedBatch) -> npt.NDArray[np.int64]:
    """Per position, the index of its portfolio in `portfolio_ids`."""
    index = {pid: i for i, pid in enumerate(portfolio_ids)}
    # Rows arrive grouped by portfolio: map each run's portfolio once, then repeat it over the run.
    pids = np.array(loaded.portfolio_ids, dtype=object)
    if not pids.size:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
    lengths = np.diff(np.r_[starts, pids.size])
    return np.repeat(np.array([index[p] for p in pids[starts]], dtype=np.int64), lengths)


def count_by_portfolio(portfolio_ids: list[UUID], loaded: LoadedBatch, result: ValuationResult) -> PortfolioCounts:
    """Positions and flagged positions per portfolio (segment ids + bincount, no per-row loop)."""
    n = len(portfolio_ids)
    seg = _segments(portfolio_ids, loaded)

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
    closes: RunCache[RunCloses] | None = None,
) -> PortfolioCounts:
    """Value and store every portfolio of `portfolio_ids` (all live) in one pass (closes shared per run)."""
    loaded = await load_many(session, portfolio_ids, as_of, stale_days, present, run_id=run_id, closes=closes)
    result = await asyncio.to_thread(compute.value_positions, loaded.inputs)
    await save_many(session, portfolio_ids=portfolio_ids, as_of=as_of, run_id=run_id, loaded=loaded, result=result)
    return count_by_portfolio(portfolio_ids, loaded, result)
