"""Storage of the stress service: its own `stress` tables and the published views it reads.

Writes run inside the caller's unit of work (`AsyncSession`); the time-series reads of the API use
the raw asyncpg pool (one indexed query per concern, columns aggregated into arrays so the maths
stays vectorised). Other services' data is read only through their `api_*` views
(docs/contracts.md). Money crosses into compute as float64 cents (exact, see compute.snapshot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from stress.compute.snapshot import ChainAnchor, ClosedPositions, HeldPositions, SnapshotAnalytics
from stress.models import portfolio_snapshot


def cents_to_decimal(cents: float | None) -> Decimal | None:
    """Exact Decimal dollars from float cents (NaN/None → None)."""
    if cents is None or not math.isfinite(cents):
        return None
    return Decimal(round(cents)).scaleb(-2)


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------------------------
# Snapshot inputs (inside the handler's transaction)
# ---------------------------------------------------------------------------------------------

# Positions held on a date (with valuation and Greeks) and positions closed in (prev, as_of], per
# portfolio of `:ids` (one row each, arrays in a common order); the per-portfolio readers pass [id].
HELD_SQL = sa.text(
    """
    WITH valued AS MATERIALIZED (
        SELECT v.position_id, v.portfolio_id, v.instrument_type, v.position_type, v.quantity::float8 AS quantity,
               (v.market_value * 100)::float8 AS market_value,
               (v.dollar_exposure * 100)::float8 AS dollar_exposure,
               (v.notional * 100)::float8 AS notional,
               (v.unrealized_pnl * 100)::float8 AS unrealized_pnl,
               (v.daily_pnl * 100)::float8 AS daily_pnl,
               coalesce(v.price_source = 'stale', false) AS stale,
               (g.dollar_gamma_1pct * 100)::float8 AS dollar_gamma_1pct,
               g.theta::float8 AS theta, g.vega::float8 AS vega, g.rho::float8 AS rho
        FROM ingest.api_position_valuation v
        LEFT JOIN greeks.api_position_greek g
               ON g.position_id = v.position_id AND g.calculation_date = v.valuation_date
        WHERE v.portfolio_id = ANY(CAST(:ids AS uuid[])) AND v.valuation_date = :as_of
    ),
    held AS (
        SELECT portfolio_id, instrument_type, position_type, quantity, market_value, dollar_exposure, notional,
               unrealized_pnl, daily_pnl, stale, dollar_gamma_1pct, theta, vega, rho
        FROM valued
        UNION ALL
        -- Held that day (docs/contracts.md rule) but never valued for it: unpriced, not silently absent.
        -- A position valued for the date is among `valued` (its portfolio's rows) in nearly every case:
        -- one hashed anti join on those few rows drops it, and only what survives (usually nothing)
        -- pays the primary-key probe of every valuation of the date (which also catches a valuation
        -- filed under another portfolio). The probe alone ran once per held position: ~20 % of the
        -- query. OFFSET 0 fences both: the cheap anti join runs first, and the probe stays a
        -- per-position probe (pulled up into an anti join, the planner sorted or hashed every
        -- valuation of the date, all portfolios, for each batch).
        SELECT p.portfolio_id, p.instrument_type, p.position_type, p.quantity::float8,
               NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL
        FROM (
            SELECT p.id, p.portfolio_id, p.instrument_type, p.position_type, p.quantity
            FROM ingest.api_position p
            WHERE p.portfolio_id = ANY(CAST(:ids AS uuid[])) AND p.entry_date <= :as_of
              AND (p.status = 'open' OR p.exit_date > :as_of)
              AND NOT EXISTS (SELECT 1 FROM valued WHERE valued.position_id = p.id)
            OFFSET 0
        ) p
        WHERE NOT EXISTS (SELECT 1 FROM ingest.api_position_valuation v
                          WHERE v.position_id = p.id AND v.valuation_date = :as_of OFFSET 0)
    )
    SELECT portfolio_id, array_agg(instrument_type = 'option') AS is_option, array_agg(position_type) AS position_type,
           array_agg(quantity) AS quantity, array_agg(market_value) AS market_value,
           array_agg(dollar_exposure) AS dollar_exposure, array_agg(notional) AS notional,
           array_agg(unrealized_pnl) AS unrealized_pnl, array_agg(daily_pnl) AS daily_pnl,
           array_agg(stale) AS stale, array_agg(dollar_gamma_1pct) AS dollar_gamma_1pct,
           array_agg(theta) AS theta, array_agg(vega) AS vega, array_agg(rho) AS rho
    FROM held
    GROUP BY portfolio_id
    """
)

CLOSED_SQL = sa.text(
    """
    SELECT p.portfolio_id,
           array_agg(p.quantity::float8) AS quantity, array_agg(p.multiplier::float8) AS multiplier,
           array_agg(p.entry_price::float8) AS entry_price, array_agg(p.exit_price::float8) AS exit_price,
           array_agg(pv.last_price::float8) AS prev_price, array_agg(p.entry_date > :prev) AS opened_after_prev,
           array_agg((p.realized_pnl * 100)::float8) AS realized_pnl,
           array_agg(EXISTS (SELECT 1 FROM ingest.api_position_valuation v
                             WHERE v.position_id = p.id AND v.valuation_date = :as_of)) AS valued_on_t0
    FROM ingest.api_position p
    LEFT JOIN LATERAL (
        SELECT v.last_price FROM ingest.api_position_valuation v
        WHERE v.position_id = p.id AND v.valuation_date < :as_of
        ORDER BY v.valuation_date DESC LIMIT 1
    ) pv ON true
    WHERE p.portfolio_id = ANY(CAST(:ids AS uuid[])) AND p.status = 'closed'
      AND p.exit_date > :prev AND p.exit_date <= :as_of
    GROUP BY p.portfolio_id
    """
)


async def lock_portfolio(session: AsyncSession, portfolio_id: UUID) -> None:
    """Serialise snapshot writes of one portfolio until commit (the return chain reads neighbours)."""
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"stress.snapshot:{portfolio_id}"}
    )


async def portfolio_cash(session: AsyncSession, portfolio_id: UUID) -> tuple[bool, float | None]:
    """(portfolio is live, cash balance in cents or None when no cash is recorded)."""
    row = (
        await session.execute(
            sa.text("SELECT (cash_balance * 100)::float8 AS cash FROM ingest.api_portfolio WHERE id = :pid"),
            {"pid": portfolio_id},
        )
    ).first()
    if row is None:
        return False, None
    return True, row.cash


@dataclass(frozen=True)
class TradingDay:
    """prev(t) from the NYSE calendar; `known` when the calendar covers the date's neighbourhood."""

    previous: date | None
    known: bool

    @property
    def is_trading_day(self) -> bool:
        return self.previous is not None or not self.known


async def trading_day(session: AsyncSession, as_of: date) -> TradingDay:
    """Look `as_of` up in marketdata.api_trading_day."""
    row = (
        await session.execute(
            sa.text(
                """
                SELECT (SELECT previous_trading_date FROM marketdata.api_trading_day WHERE trading_date = :d) AS prev,
                       EXISTS (SELECT 1 FROM marketdata.api_trading_day WHERE trading_date BETWEEN :lo AND :hi) AS known
                """
            ),
            {"d": as_of, "lo": as_of - timedelta(days=7), "hi": as_of + timedelta(days=7)},
        )
    ).one()
    return TradingDay(row.prev, bool(row.known))


def held_from_row(row: Any) -> HeldPositions:
    """HeldPositions of one HELD_SQL row (empty when the portfolio held nothing)."""
    if row is None or row.quantity is None:
        return HeldPositions.empty()
    names = ("quantity", "is_option", "position_type", "market_value", "dollar_exposure", "notional")
    more = ("unrealized_pnl", "daily_pnl", "stale", "dollar_gamma_1pct", "theta", "vega", "rho")
    return HeldPositions.build(**{n: getattr(row, n) for n in (*names, *more)})


def closed_from_row(row: Any) -> ClosedPositions:
    """ClosedPositions of one CLOSED_SQL row (empty when nothing closed)."""
    if row is None or row.quantity is None:
        return ClosedPositions.empty()
    names = ("quantity", "multiplier", "entry_price", "exit_price", "prev_price", "opened_after_prev")
    return ClosedPositions.build(**{n: getattr(row, n) for n in (*names, "realized_pnl", "valued_on_t0")})


async def load_held(session: AsyncSession, portfolio_id: UUID, as_of: date) -> HeldPositions:
    """Positions held on `as_of` with their valuation and Greeks of that date."""
    return held_from_row((await session.execute(HELD_SQL, {"ids": [portfolio_id], "as_of": as_of})).first())


async def load_closed(session: AsyncSession, portfolio_id: UUID, as_of: date, previous: date) -> ClosedPositions:
    """Positions closed in (previous, as_of], flagged when a valuation row of `as_of` already covers them."""
    params = {"ids": [portfolio_id], "as_of": as_of, "prev": previous}
    return closed_from_row((await session.execute(CLOSED_SQL, params)).first())


async def run_is_backfill(session: AsyncSession, run_id: UUID | None) -> bool:
    """True when the batch run was started as a history back-fill (`params.backfill = true`)."""
    if run_id is None:
        return False
    value = (
        await session.execute(
            sa.text("SELECT params->>'backfill' = 'true' FROM marketdata.api_batch_run WHERE id = :id"), {"id": run_id}
        )
    ).scalar()
    return bool(value)


async def active_portfolio_ids(session: AsyncSession) -> list[UUID]:
    """Every active live portfolio (scope of a run whose portfolio_ids is null)."""
    rows = await session.execute(sa.text("SELECT id FROM ingest.api_portfolio WHERE status = 'active' ORDER BY id"))
    return [r.id for r in rows]


_FACTOR_ANALYTICS_SQL = sa.text(
    """
    SELECT jsonb_object_agg(factor_code, exposure_dollar::text ORDER BY factor_code)
               FILTER (WHERE status = 'ok' AND exposure_dollar IS NOT NULL) AS exposures,
           max(beta) FILTER (WHERE factor_code = 'market' AND status = 'ok') AS market_beta,
           max(exposure_dollar) FILTER (WHERE factor_code = 'market' AND status = 'ok') AS market_exposure,
           max(coverage_pct) FILTER (WHERE factor_code = 'market') AS coverage
    FROM factors.api_portfolio_factor_exposure
    WHERE portfolio_id = :pid AND calculation_date = :d
    """
)

_STRESS_ANALYTICS_SQL = sa.text(
    """
    SELECT m.var_95_hist, m.var_99_hist, m.es_95_hist, m.es_99_hist, m.ex_ante_volatility, m.max_drawdown,
           m.beta_ex_ante, m.flags, m.calculation_date IS NOT NULL AS has_metrics,
           w.scenario_key AS worst_id, w.pnl AS worst_pnl
    FROM (SELECT 1) AS one
    LEFT JOIN stress.risk_metric m ON m.portfolio_id = :pid AND m.calculation_date = :d
    LEFT JOIN LATERAL (
        SELECT sc.scenario_key, coalesce(r.correlated_pnl, r.direct_pnl) AS pnl
        FROM stress.stress_result r
        JOIN stress.stress_scenario sc ON sc.id = r.scenario_id
        WHERE r.stress_run_id = coalesce(
                CAST(:run AS uuid),
                (SELECT id FROM stress.stress_run
                 WHERE portfolio_id = :pid AND calculation_date = :d
                 ORDER BY created_at DESC, id LIMIT 1))
        ORDER BY coalesce(r.correlated_pnl, r.direct_pnl), sc.scenario_key
        LIMIT 1
    ) w ON true
    """
)


async def snapshot_analytics(
    session: AsyncSession, portfolio_id: UUID, as_of: date, *, stress_run_id: UUID | None, factors_present: bool
) -> SnapshotAnalytics:
    """Factor exposures, risk metrics and the worst stress result of (portfolio, as_of) (calculations.md §9).

    The worst stress result is the lowest correlated P&L (direct where no correlated one exists) of the
    stress run announced by `stress.computed`, else of the latest run of the date.
    """
    params = {"pid": portfolio_id, "d": as_of}
    f = (await session.execute(_FACTOR_ANALYTICS_SQL, params)).one() if factors_present else None
    s = (await session.execute(_STRESS_ANALYTICS_SQL, {**params, "run": stress_run_id})).one()
    return analytics_from_rows(f, s, factors_present)


def analytics_from_rows(f: Any, s: Any, factors_present: bool) -> SnapshotAnalytics:
    """SnapshotAnalytics from a factor-exposure row (or None) and a stress/risk-metric row."""
    exposures = market_beta = market_exposure = coverage = None
    if factors_present and f is not None:
        exposures, market_beta, market_exposure, coverage = f.exposures, f.market_beta, f.market_exposure, f.coverage
    beta = market_beta if market_beta is not None else s.beta_ex_ante
    return SnapshotAnalytics(
        factors_available=factors_present and market_exposure is not None,
        market_beta_ex_ante=None if beta is None else float(beta),
        market_exposure=market_exposure,
        # JSON numbers: a 2-dp amount below 2**53 cents round-trips exactly through a float's repr.
        factor_exposures={k: float(Decimal(v)) for k, v in _json(exposures).items()} if exposures else None,
        beta_coverage=None if coverage is None else float(coverage),
        risk_metrics_available=bool(s.has_metrics),
        var_95_1d=s.var_95_hist,
        var_99_1d=s.var_99_hist,
        es_95_1d=s.es_95_hist,
        es_99_1d=s.es_99_hist,
        annualized_volatility=s.ex_ante_volatility,
        max_drawdown=s.max_drawdown,
        risk_flags=tuple(s.flags or ()),
        worst_stress_pnl=s.worst_pnl,
        worst_stress_id=s.worst_id,
    )


def _json(value: Any) -> dict[str, Any]:
    """A jsonb value as a dict (drivers without a jsonb codec return the text)."""
    if isinstance(value, str):
        loaded: dict[str, Any] = orjson.loads(value)
        return loaded
    return dict(value)


async def factor_views_present(session: AsyncSession) -> bool:
    """True when factors.api_portfolio_factor_exposure exists (the factors schema is deployed)."""
    value = (
        await session.execute(sa.text("SELECT to_regclass('factors.api_portfolio_factor_exposure') IS NOT NULL"))
    ).scalar()
    return bool(value)


@dataclass(frozen=True)
class LaterSnapshots:
    """Snapshots after the one being written (re-chained when an earlier day is (re)written)."""

    ids: list[UUID]
    equity: list[float]
    daily_pnl: list[float]


async def chain_context(
    session: AsyncSession, portfolio_id: UUID, as_of: date
) -> tuple[ChainAnchor | None, LaterSnapshots]:
    """The latest snapshot before `as_of` (anchor of the chain) and every snapshot after it."""
    params = {"pid": portfolio_id, "d": as_of}
    anchor_row = (
        await session.execute(
            sa.text(
                """
                SELECT (equity * 100)::float8 AS equity, (cumulative_pnl * 100)::float8 AS cumulative_pnl,
                       cumulative_return
                FROM stress.portfolio_snapshot
                WHERE portfolio_id = :pid AND snapshot_date < :d
                ORDER BY snapshot_date DESC LIMIT 1
                """
            ),
            params,
        )
    ).first()
    anchor = None
    if anchor_row is not None:
        anchor = ChainAnchor(
            equity=anchor_row.equity,
            cumulative_pnl=math.nan if anchor_row.cumulative_pnl is None else anchor_row.cumulative_pnl,
            cumulative_return=math.nan if anchor_row.cumulative_return is None else anchor_row.cumulative_return,
        )
    later = (
        await session.execute(
            sa.text(
                """
                SELECT id, (equity * 100)::float8 AS equity, (daily_pnl * 100)::float8 AS daily_pnl
                FROM stress.portfolio_snapshot
                WHERE portfolio_id = :pid AND snapshot_date > :d
                ORDER BY snapshot_date
                """
            ),
            params,
        )
    ).all()
    return anchor, LaterSnapshots(
        ids=[r.id for r in later],
        equity=[r.equity for r in later],
        daily_pnl=[math.nan if r.daily_pnl is None else r.daily_pnl for r in later],
    )


_UPSERT_EXCLUDED = {"id", "portfolio_id", "snapshot_date"}


async def upsert_snapshot(session: AsyncSession, values: dict[str, Any]) -> UUID:
    """Insert or replace the snapshot of (portfolio_id, snapshot_date); returns its id."""
    insert = pg.insert(portfolio_snapshot).values(**values)
    update: dict[str, Any] = {k: insert.excluded[k] for k in values if k not in _UPSERT_EXCLUDED}
    update["created_at"] = sa.func.now()
    stmt = insert.on_conflict_do_update(constraint="portfolio_snapshot_portfolio_date_uq", set_=update).returning(
        portfolio_snapshot.c.id
    )
    ident: UUID = (await session.execute(stmt)).scalar_one()
    return ident


async def rewrite_chain(
    session: AsyncSession,
    ids: list[UUID],
    daily_return: list[float],
    cumulative_pnl: list[float],
    cumulative_return: list[float],
) -> None:
    """Store re-chained daily/cumulative figures of later snapshots (cumulative P&L in cents)."""
    if not ids:
        return
    table = portfolio_snapshot
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values(
            daily_return=sa.bindparam("b_daily_return"),
            cumulative_pnl=sa.bindparam("b_cumulative_pnl"),
            cumulative_return=sa.bindparam("b_cumulative_return"),
        )
    )
    await session.execute(
        stmt,
        [
            {
                "b_id": ident,
                "b_daily_return": _none_if_nan(dr),
                "b_cumulative_pnl": cents_to_decimal(cp),
                "b_cumulative_return": _none_if_nan(cr),
            }
            for ident, dr, cp, cr in zip(ids, daily_return, cumulative_pnl, cumulative_return, strict=True)
        ],
    )


async def delete_portfolio_snapshots(session: AsyncSession, portfolio_id: UUID) -> int:
    """Purge every snapshot of a removed portfolio; returns the number of rows deleted."""
    result = await session.execute(
        sa.delete(portfolio_snapshot).where(portfolio_snapshot.c.portfolio_id == portfolio_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Time-series reads (API; raw asyncpg pool)
# ---------------------------------------------------------------------------------------------

_PORTFOLIO_COLUMNS = """
    SELECT p.id, p.user_id, p.status,
           (SELECT min(s.snapshot_date) FROM stress.portfolio_snapshot s WHERE s.portfolio_id = p.id) AS first_date,
           (SELECT max(s.snapshot_date) FROM stress.portfolio_snapshot s WHERE s.portfolio_id = p.id) AS last_date
    FROM ingest.api_portfolio p
"""


@dataclass(frozen=True)
class PortfolioRef:
    """A portfolio the caller may read, with the extent of its snapshot history."""

    id: UUID
    user_id: UUID
    status: str
    first_date: date | None
    last_date: date | None


class TimeSeriesReader:
    """Reads for the exposure and performance time series."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def portfolio_by_id(self, portfolio_id: UUID) -> PortfolioRef | None:
        """The live portfolio `portfolio_id`."""
        row = await self.db.fetchrow(_PORTFOLIO_COLUMNS + " WHERE p.id = $1", portfolio_id)
        return None if row is None else PortfolioRef(**dict(row))

    async def default_portfolio(self, user_id: UUID) -> PortfolioRef | None:
        """The user's default portfolio (else the first created); onboarding ones only by explicit id."""
        row = await self.db.fetchrow(
            _PORTFOLIO_COLUMNS + " WHERE p.user_id = $1 AND p.status <> 'onboarding'"
            " ORDER BY p.is_default DESC, p.created_at, p.id LIMIT 1",
            user_id,
        )
        return None if row is None else PortfolioRef(**dict(row))

    async def exposure_points(self, portfolio_id: UUID, start: date, end: date) -> asyncpg.Record | None:
        """Ascending snapshot columns in [start, end] (money as Decimal; one indexed range scan)."""
        return await self.db.fetchrow(
            """
            SELECT array_agg(snapshot_date ORDER BY snapshot_date) AS dates,
                   array_agg(equity ORDER BY snapshot_date) AS equity,
                   array_agg(long_mv ORDER BY snapshot_date) AS long_mv,
                   array_agg(short_mv ORDER BY snapshot_date) AS short_mv,
                   array_agg(gross_mv ORDER BY snapshot_date) AS gross_mv,
                   array_agg(net_mv ORDER BY snapshot_date) AS net_mv,
                   array_agg(long_exposure ORDER BY snapshot_date) AS long_exposure,
                   array_agg(short_exposure ORDER BY snapshot_date) AS short_exposure,
                   array_agg(gross_exposure ORDER BY snapshot_date) AS gross_exposure,
                   array_agg(net_exposure ORDER BY snapshot_date) AS net_exposure,
                   array_agg(notional ORDER BY snapshot_date) AS notional,
                   array_agg(gross_leverage ORDER BY snapshot_date) AS gross_leverage,
                   array_agg(net_leverage ORDER BY snapshot_date) AS net_leverage,
                   count(*) FILTER (WHERE inputs_status = 'partial') AS partial_points
            FROM stress.portfolio_snapshot
            WHERE portfolio_id = $1 AND snapshot_date BETWEEN $2 AND $3
            """,
            portfolio_id,
            start,
            end,
        )

    async def performance_rows(self, portfolio_id: UUID, start: date, end: date) -> asyncpg.Record | None:
        """Ascending snapshots in [start, end] plus the one just before `start` (the base of the first move)."""
        return await self.db.fetchrow(
            """
            SELECT array_agg(snapshot_date ORDER BY snapshot_date) AS dates,
                   array_agg((equity * 100)::float8 ORDER BY snapshot_date) AS equity,
                   array_agg((daily_pnl * 100)::float8 ORDER BY snapshot_date) AS daily_pnl,
                   array_agg(daily_return ORDER BY snapshot_date) AS daily_return,
                   array_agg(inputs_status = 'partial' ORDER BY snapshot_date) AS partial
            FROM stress.portfolio_snapshot
            WHERE portfolio_id = $1 AND snapshot_date <= $3
              AND snapshot_date >= coalesce(
                    (SELECT max(snapshot_date) FROM stress.portfolio_snapshot
                     WHERE portfolio_id = $1 AND snapshot_date < $2), $2)
            """,
            portfolio_id,
            start,
            end,
        )

    async def market_context(self, as_of: date | None, window_start: date | None) -> asyncpg.Record:
        """Provenance (SPY close source on as_of), SPY's latest date (freshness) and the first trading day ≥ start."""
        row = await self.db.fetchrow(
            """
            SELECT (SELECT source FROM marketdata.api_daily_price
                    WHERE symbol = 'SPY' AND price_date <= coalesce($1::date, 'infinity'::date)
                    ORDER BY price_date DESC LIMIT 1) AS source,
                   (SELECT max(price_date) FROM marketdata.api_daily_price WHERE symbol = 'SPY') AS spy_last,
                   (SELECT min(trading_date) FROM marketdata.api_trading_day
                    WHERE trading_date >= $2::date) AS first_trading
            """,
            as_of,
            window_start,
        )
        assert row is not None  # a SELECT without FROM always yields one row
        return row

    async def risk_free(self, start: date, end: date) -> asyncpg.Record:
        """DGS3MO values (fractions) on [last value ≤ start, end]."""
        row = await self.db.fetchrow(
            """
            SELECT array_agg(observation_date ORDER BY observation_date) AS dates,
                   array_agg(value ORDER BY observation_date) AS values
            FROM marketdata.api_rate
            WHERE series_id = 'DGS3MO' AND observation_date <= $2
              AND observation_date >= coalesce(
                    (SELECT max(observation_date) FROM marketdata.api_rate
                     WHERE series_id = 'DGS3MO' AND observation_date <= $1), $1)
            """,
            start,
            end,
        )
        assert row is not None
        return row

    async def benchmark(self, symbol: str, start: date, end: date) -> asyncpg.Record:
        """The benchmark's canonical symbol, whether it has any price, and its adjusted closes on
        [last close ≤ start, end] with each date's previous NYSE trading date."""
        row = await self.db.fetchrow(
            """
            WITH sym AS (
                SELECT coalesce((SELECT a.symbol FROM marketdata.api_symbol_alias a WHERE a.alias = $1), $1) AS symbol
            )
            SELECT sym.symbol,
                   EXISTS (SELECT 1 FROM marketdata.api_daily_price p WHERE p.symbol = sym.symbol) AS has_history,
                   b.dates, b.prices, b.previous
            FROM sym
            LEFT JOIN LATERAL (
                SELECT array_agg(p.price_date ORDER BY p.price_date) AS dates,
                       array_agg(coalesce(p.adj_close, p.close)::float8 ORDER BY p.price_date) AS prices,
                       array_agg(d.previous_trading_date ORDER BY p.price_date) AS previous
                FROM marketdata.api_daily_price p
                LEFT JOIN marketdata.api_trading_day d ON d.trading_date = p.price_date
                WHERE p.symbol = sym.symbol AND p.price_date <= $3
                  AND p.price_date >= coalesce(
                        (SELECT max(q.price_date) FROM marketdata.api_daily_price q
                         WHERE q.symbol = sym.symbol AND q.price_date <= $2), $2)
            ) b ON true
            """,
            symbol,
            start,
            end,
        )
        assert row is not None
        return row
