"""Storage of the scenario part of the stress service and the published views it reads.

Reads of other services go only through their `api_*` views (docs/contracts.md): positions and
exposures from `ingest.api_position_valuation`, option inputs from `greeks.api_position_greek`,
betas from `factors.api_underlying_beta`, the model covariance from `factors.api_factor_covariance`.
Every read takes lists of portfolios so the daily step loads many books in one round trip; columns
come back aggregated into arrays so compute stays vectorised. Writes run in the caller's session
and are upserts on natural keys (a re-run of a date replaces its rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from stress import bulk_upsert
from stress.compute.scenarios import MODEL_FACTORS
from stress.models_scenarios import market_risk_result, stress_result, stress_result_set, stress_run, stress_scenario

COVARIANCE_LOOKBACK = 252


# ---------------------------------------------------------------------------------------------
# Factor model (factors.api_factor_matrix / api_factor_covariance / api_underlying_beta)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelMatrix:
    """A stored model-basis factor covariance, aligned to MODEL_FACTORS (NaN where a factor is absent)."""

    id: UUID
    calculation_date: date
    basis: str
    window_start_date: date
    window_end_date: date
    observations: int
    factor_codes: tuple[str, ...]
    flags: tuple[str, ...]
    covariance: np.ndarray  # (8, 8) daily

    def window(self) -> dict[str, Any]:
        return {
            "start_date": self.window_start_date.isoformat(),
            "end_date": self.window_end_date.isoformat(),
            "observations": self.observations,
        }


_MATRIX_SQL = """
    SELECT m.id, m.calculation_date, m.basis, m.window_start_date, m.window_end_date, m.observations,
           m.factor_codes, m.flags, cells.f1, cells.f2, cells.cov
    FROM factors.api_factor_matrix m
    LEFT JOIN LATERAL (
        SELECT array_agg(c.factor_1 ORDER BY c.factor_1, c.factor_2) AS f1,
               array_agg(c.factor_2 ORDER BY c.factor_1, c.factor_2) AS f2,
               array_agg(c.covariance ORDER BY c.factor_1, c.factor_2) AS cov
        FROM factors.api_factor_covariance c WHERE c.matrix_id = m.id
    ) cells ON true
"""


def _matrix(row: Any) -> ModelMatrix:
    index = {code: j for j, code in enumerate(MODEL_FACTORS)}
    cov = np.full((len(MODEL_FACTORS), len(MODEL_FACTORS)), np.nan)
    for a, b, value in zip(row.f1 or [], row.f2 or [], row.cov or [], strict=True):
        if a in index and b in index and value is not None:
            cov[index[a], index[b]] = float(value)
    return ModelMatrix(
        id=row.id,
        calculation_date=row.calculation_date,
        basis=row.basis,
        window_start_date=row.window_start_date,
        window_end_date=row.window_end_date,
        observations=int(row.observations),
        factor_codes=tuple(row.factor_codes or ()),
        flags=tuple(row.flags or ()),
        covariance=cov,
    )


async def latest_model_matrix(session: AsyncSession, on_or_before: date) -> ModelMatrix | None:
    """The model-basis 252-return matrix of the latest date ≤ `on_or_before`."""
    row = (
        await session.execute(
            sa.text(
                _MATRIX_SQL + " WHERE m.basis = 'model' AND m.lookback_days = :lb AND m.calculation_date <= :d"
                " ORDER BY m.calculation_date DESC LIMIT 1"
            ),
            {"lb": COVARIANCE_LOOKBACK, "d": on_or_before},
        )
    ).first()
    return None if row is None else _matrix(row)


async def matrix_by_id(session: AsyncSession, matrix_id: UUID) -> ModelMatrix | None:
    """A stored matrix by id (any basis; the caller checks it is a model matrix)."""
    row = (await session.execute(sa.text(_MATRIX_SQL + " WHERE m.id = :id"), {"id": matrix_id})).first()
    return None if row is None else _matrix(row)


@dataclass(frozen=True)
class BetaRows:
    """Betas of the requested underlyings on one date, as parallel lists (one entry per factor row)."""

    symbol: list[str]
    factor_code: list[str]
    beta: list[float | None]
    beta_source: list[str]


async def underlying_betas(session: AsyncSession, symbols: Sequence[str], on: date) -> BetaRows:
    """factors.api_underlying_beta rows of `symbols` calculated on `on`."""
    if not symbols:
        return BetaRows([], [], [], [])
    row = (
        await session.execute(
            sa.text(
                """
                SELECT array_agg(symbol::text) AS symbol, array_agg(factor_code) AS factor_code,
                       array_agg(beta) AS beta, array_agg(beta_source) AS beta_source
                FROM factors.api_underlying_beta
                WHERE calculation_date = :d AND symbol = ANY(CAST(:syms AS text[]))
                """
            ),
            {"d": on, "syms": list(symbols)},
        )
    ).one()
    if row.symbol is None:
        return BetaRows([], [], [], [])
    return BetaRows(list(row.symbol), list(row.factor_code), list(row.beta), list(row.beta_source))


async def exposure_dates(
    session: AsyncSession, portfolio_ids: Sequence[UUID], on_or_before: date | None
) -> dict[UUID, date]:
    """Latest factors.api_portfolio_factor_exposure date ≤ `on_or_before` (any date when None) per portfolio."""
    rows = (
        await session.execute(
            sa.text(
                """
                SELECT p.id AS portfolio_id,
                       (SELECT max(e.calculation_date) FROM factors.api_portfolio_factor_exposure e
                        WHERE e.portfolio_id = p.id
                          AND (CAST(:d AS date) IS NULL OR e.calculation_date <= CAST(:d AS date))) AS d
                FROM unnest(CAST(:pids AS uuid[])) AS p(id)
                """
            ),
            {"pids": list(portfolio_ids), "d": on_or_before},
        )
    ).all()
    return {r.portfolio_id: r.d for r in rows if r.d is not None}


# ---------------------------------------------------------------------------------------------
# Books (ingest.api_portfolio, ingest.api_position_valuation, greeks.api_position_greek)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioRow:
    """A live portfolio: owner, status and recorded cash (USD)."""

    id: UUID
    user_id: UUID
    status: str
    cash_balance: float


async def portfolios(session: AsyncSession, portfolio_ids: Sequence[UUID]) -> dict[UUID, PortfolioRow]:
    """Live portfolios among `portfolio_ids`."""
    rows = (
        await session.execute(
            sa.text(
                "SELECT id, user_id, status, cash_balance::float8 AS cash FROM ingest.api_portfolio"
                " WHERE id = ANY(CAST(:pids AS uuid[]))"
            ),
            {"pids": list(portfolio_ids)},
        )
    ).all()
    return {r.id: PortfolioRow(r.id, r.user_id, r.status, float(r.cash or 0.0)) for r in rows}


async def default_portfolio(session: AsyncSession, user_id: UUID) -> PortfolioRow | None:
    """The user's default portfolio (else the first created); onboarding ones only by explicit id."""
    row = (
        await session.execute(
            sa.text(
                "SELECT id, user_id, status, cash_balance::float8 AS cash FROM ingest.api_portfolio"
                " WHERE user_id = :u AND status <> 'onboarding'"
                " ORDER BY is_default DESC, created_at, id LIMIT 1"
            ),
            {"u": user_id},
        )
    ).first()
    return None if row is None else PortfolioRow(row.id, row.user_id, row.status, float(row.cash or 0.0))


POSITION_COLUMNS = (
    "portfolio_id",
    "position_id",
    "symbol",
    "underlying_symbol",
    "is_option",
    "quantity",
    "multiplier",
    "market_value",
    "dollar_exposure",
    "greek_status",
    "spot",
    "strike",
    "time_to_expiry",
    "rate",
    "dividend_yield",
    "sigma",
    "is_call",
    "gamma",
    "underlying_price",
)

# The one read of a batch's valued positions for market risk, stress tests and risk metrics: besides
# the scenario inputs it carries what the risk metrics take (`risk_repository.holdings_by_portfolio`):
# the position gamma and `underlying_price`, the Greeks' underlying price else the valuation's (`spot`
# is the Greeks' alone: Black-Scholes revaluation needs the price its inputs were computed from).
#
# One sort, not seventeen: on PostgreSQL 15 every `array_agg(… ORDER BY …)` sorts its input again,
# which made this read ~2× slower. The rows are ranked once by (portfolio, position) and aggregated
# unordered; `position_rows` puts the columns in rank order (they arrive in it in practice, but SQL
# does not promise an aggregate's input order, so the rank is what the order rests on).
_POSITIONS_SQL = sa.text(
    """
    SELECT array_agg(x.rank) AS rank,
           array_agg(x.portfolio_id) AS portfolio_id, array_agg(x.position_id) AS position_id,
           array_agg(x.symbol) AS symbol, array_agg(x.underlying_symbol) AS underlying_symbol,
           array_agg(x.is_option) AS is_option, array_agg(x.quantity) AS quantity,
           array_agg(x.multiplier) AS multiplier, array_agg(x.market_value) AS market_value,
           array_agg(x.dollar_exposure) AS dollar_exposure, array_agg(x.greek_status) AS greek_status,
           array_agg(x.spot) AS spot, array_agg(x.strike) AS strike, array_agg(x.time_to_expiry) AS time_to_expiry,
           array_agg(x.rate) AS rate, array_agg(x.dividend_yield) AS dividend_yield,
           array_agg(x.sigma) AS sigma, array_agg(x.is_call) AS is_call,
           array_agg(x.gamma) AS gamma, array_agg(x.underlying_price) AS underlying_price
    FROM (
        SELECT row_number() OVER (ORDER BY v.portfolio_id, v.position_id) AS rank,
               v.portfolio_id, v.position_id, v.symbol::text AS symbol,
               v.underlying_symbol::text AS underlying_symbol, v.instrument_type = 'option' AS is_option,
               v.quantity::float8 AS quantity, v.multiplier::float8 AS multiplier,
               v.market_value::float8 AS market_value, v.dollar_exposure::float8 AS dollar_exposure,
               g.status AS greek_status, g.underlying_price::float8 AS spot, g.strike_price::float8 AS strike,
               g.time_to_expiry_years AS time_to_expiry, g.risk_free_rate AS rate,
               g.dividend_yield AS dividend_yield, g.implied_volatility AS sigma, g.option_type = 'C' AS is_call,
               g.gamma AS gamma, coalesce(g.underlying_price, v.underlying_price)::float8 AS underlying_price
        FROM ingest.api_position_valuation v
        LEFT JOIN greeks.api_position_greek g
               ON g.position_id = v.position_id AND g.calculation_date = v.valuation_date
        WHERE v.portfolio_id = ANY(CAST(:pids AS uuid[])) AND v.valuation_date = :d
    ) x
    """
)


def in_rank_order(columns: dict[str, list[Any]], rank: Sequence[int]) -> dict[str, list[Any]]:
    """`columns` (parallel lists) reordered so that `rank` ascends; unchanged when it already does."""
    ranks = np.asarray(rank, dtype=np.int64)
    if ranks.size < 2 or bool(np.all(ranks[1:] > ranks[:-1])):
        return columns
    order = np.argsort(ranks, kind="stable").tolist()
    return {name: [values[i] for i in order] for name, values in columns.items()}


async def position_rows(session: AsyncSession, portfolio_ids: Sequence[UUID], on: date) -> dict[str, list[Any]]:
    """Valued positions of `portfolio_ids` on `on` with their option inputs, as column lists
    (ordered by portfolio, then position)."""
    row = (await session.execute(_POSITIONS_SQL, {"pids": list(portfolio_ids), "d": on})).one()
    if row.position_id is None:
        return {name: [] for name in POSITION_COLUMNS}
    return in_rank_order({name: list(getattr(row, name)) for name in POSITION_COLUMNS}, row.rank)


async def batch_position_rows(session: AsyncSession, portfolio_ids: Sequence[UUID], on: date) -> dict[str, list[Any]]:
    """`position_rows`, memoised for the unit of work (`session.info`): the market-risk, stress-test
    and risk-metric parts of one batch read the very same positions, and none of them writes any.
    Callers must not modify the columns returned."""
    key = ("stress.position_rows", on, tuple(portfolio_ids))
    if key not in session.info:
        session.info[key] = await position_rows(session, portfolio_ids, on)
    columns: dict[str, list[Any]] = session.info[key]
    return columns


async def data_source(session: AsyncSession, as_of: date) -> str:
    """`fixture` when SPY's close on `as_of` came from the fixture provider, else `live`."""
    source = (
        await session.execute(
            sa.text("SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' AND price_date = :d"),
            {"d": as_of},
        )
    ).scalar()
    return "fixture" if source == "fixture" else "live"


# ---------------------------------------------------------------------------------------------
# Scenario catalogue (stress.stress_scenario)
# ---------------------------------------------------------------------------------------------


async def scenarios(
    session: AsyncSession,
    *,
    keys: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    active_only: bool = False,
) -> list[dict[str, Any]]:
    """Catalogue rows, in display order."""
    table = stress_scenario
    stmt = sa.select(table)
    if keys is not None:
        stmt = stmt.where(table.c.scenario_key.in_(list(keys)))
    if categories:
        stmt = stmt.where(table.c.category.in_(list(categories)))
    if active_only:
        stmt = stmt.where(table.c.is_active)
    stmt = stmt.order_by(table.c.display_order.nulls_last(), table.c.scenario_key)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


async def upsert_market_risk(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert or replace market_risk_result rows keyed (portfolio_id, calculation_date, scenario_key)."""
    if not rows:
        return
    await bulk_upsert.upsert_rows(
        session, market_risk_result, rows, ("portfolio_id", "calculation_date", "scenario_key")
    )


async def upsert_batch_runs(session: AsyncSession, runs: list[dict[str, Any]]) -> dict[UUID, UUID]:
    """Insert or replace the batch run of each (portfolio, date); returns portfolio_id → stress_run_id.

    The run keeps its id across re-runs of the date (its results are replaced by the caller).
    """
    if not runs:
        return {}
    written = await bulk_upsert.upsert_rows(
        session,
        stress_run,
        runs,
        ("portfolio_id", "calculation_date"),
        index_where="trigger = 'batch'",
        keep=("id", "trigger"),
        returning=("portfolio_id", "id"),
    )
    return {r.portfolio_id: r.id for r in written}


async def insert_run(session: AsyncSession, run: dict[str, Any]) -> UUID:
    """Insert an API (on-demand) run; its id is the job's."""
    ident: UUID = (await session.execute(pg.insert(stress_run).values(run).returning(stress_run.c.id))).scalar_one()
    return ident


async def replace_result_sets(session: AsyncSession, sets: list[dict[str, Any]]) -> None:
    """Make each set the whole result of its run (`stress_result_set`, one row per run): the upsert
    replaces the run's arrays, so results of scenarios no longer run go with the old row."""
    if sets:
        await bulk_upsert.upsert_rows(session, stress_result_set, sets, ("stress_run_id",))


async def delete_portfolio(session: AsyncSession, portfolio_id: UUID) -> int:
    """Purge a removed portfolio's stress runs (results cascade) and market-risk rows."""
    runs = await session.execute(sa.delete(stress_run).where(stress_run.c.portfolio_id == portfolio_id))
    market = await session.execute(
        sa.delete(market_risk_result).where(market_risk_result.c.portfolio_id == portfolio_id)
    )
    return int(runs.rowcount or 0) + int(market.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Stored results (#40)
# ---------------------------------------------------------------------------------------------


async def stress_run_row(
    session: AsyncSession, portfolio_id: UUID, stress_run_id: UUID | None
) -> dict[str, Any] | None:
    """The portfolio's run `stress_run_id`, or its latest (by calculation date, then creation)."""
    table = stress_run
    stmt = sa.select(table).where(table.c.portfolio_id == portfolio_id)
    if stress_run_id is not None:
        stmt = stmt.where(table.c.id == stress_run_id)
    stmt = stmt.order_by(table.c.calculation_date.desc(), table.c.created_at.desc()).limit(1)
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else dict(row)


async def stress_results(session: AsyncSession, stress_run_id: UUID) -> list[dict[str, Any]]:
    """The results of one run joined with their scenario's identity."""
    r, s = stress_result, stress_scenario
    stmt = (
        sa.select(
            r,
            s.c.scenario_key,
            s.c.name,
            s.c.category,
            s.c.severity,
            s.c.shocks,
            s.c.option_iv_shift,
            s.c.display_order,
        )
        .join(s, s.c.id == r.c.scenario_id)
        .where(r.c.stress_run_id == stress_run_id)
        .order_by(s.c.display_order.nulls_last(), s.c.scenario_key)
    )
    return [dict(row) for row in (await session.execute(stmt)).mappings()]
