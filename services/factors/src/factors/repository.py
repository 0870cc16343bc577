"""I/O of the factor model: reads through the published views of ingest, marketdata and stress
(docs/contracts.md) and reads/writes the factors.* model tables.

Functions are keyword-only and take the caller's session, so a handler's reads and writes share one
transaction. Hot reads (price history of thousands of symbols) aggregate per symbol in SQL and go
through the asyncpg connection under the session; bulk writes COPY into a temporary table and
upsert from it on the natural key (a re-run replaces rows, never duplicates them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common import pg_binary as pgb
from common.db import session_driver_connection
from factors.models import (
    factor_definition,
    factor_matrix,
    factor_matrix_cell,
    portfolio_factor_exposure,
    position_factor_exposure,
    underlying_regression,
)
from factors.models_correlations import correlation_calculation
from factors.pg_numeric import float8_numeric_cents, numeric_cents, rounded_float_cents
from factors.price_series import PACKED_CLOSES, PACKED_OFFSETS, scatter_series

MARKET_SYMBOL = "SPY"
RATE_SERIES = "DGS10"


@dataclass(frozen=True)
class PortfolioRef:
    """A live portfolio as seen through ingest.api_portfolio."""

    id: UUID
    user_id: UUID
    status: str


@dataclass(frozen=True)
class FactorDef:
    """One registry row (factors.factor_definition)."""

    id: UUID
    code: str
    name: str
    proxy: str | None
    proxy_type: str | None
    display_order: int
    calculation_method: str
    is_active: bool


async def _rows(session: AsyncSession, sql: str, **params: Any) -> Sequence[sa.RowMapping]:
    return (await session.execute(sa.text(sql), params)).mappings().all()


# The asyncpg connection under a session, inside its transaction (common.db).
raw_connection = session_driver_connection


# ---------------------------------------------------------------- registry


async def factor_definitions(session: AsyncSession) -> list[FactorDef]:
    """The nine registry rows in display order."""
    rows = (
        (await session.execute(sa.select(factor_definition).order_by(factor_definition.c.display_order)))
        .mappings()
        .all()
    )
    return [
        FactorDef(
            r["id"],
            r["code"],
            r["name"],
            r["proxy"],
            r["proxy_type"],
            r["display_order"],
            r["calculation_method"],
            r["is_active"],
        )
        for r in rows
    ]


# ---------------------------------------------------------------- ingest views


async def active_portfolio_ids(session: AsyncSession) -> list[UUID]:
    """Every active portfolio (the scope of a run without an explicit list)."""
    rows = await _rows(session, "SELECT id FROM ingest.api_portfolio WHERE status = 'active' ORDER BY id")
    return [r["id"] for r in rows]


async def portfolio(session: AsyncSession, *, portfolio_id: UUID) -> PortfolioRef | None:
    """One live portfolio by id."""
    rows = await _rows(session, "SELECT id, user_id, status FROM ingest.api_portfolio WHERE id = :id", id=portfolio_id)
    return PortfolioRef(rows[0]["id"], rows[0]["user_id"], rows[0]["status"]) if rows else None


async def default_portfolio(session: AsyncSession, *, user_id: UUID) -> PortfolioRef | None:
    """The caller's default portfolio (else the first created); portfolios in onboarding are skipped."""
    rows = await _rows(
        session,
        """
        SELECT id, user_id, status FROM ingest.api_portfolio
        WHERE user_id = :uid AND status <> 'onboarding'
        ORDER BY is_default DESC, created_at ASC, id ASC
        LIMIT 1
        """,
        uid=user_id,
    )
    return PortfolioRef(rows[0]["id"], rows[0]["user_id"], rows[0]["status"]) if rows else None


async def held_underlyings(session: AsyncSession) -> list[str]:
    """Every underlying of open positions in active portfolios (options by their underlying)."""
    rows = await _rows(
        session,
        """
        SELECT DISTINCT p.underlying_symbol AS symbol
        FROM ingest.api_open_position p
        JOIN ingest.api_portfolio pf ON pf.id = p.portfolio_id
        WHERE pf.status = 'active'
        """,
    )
    return sorted(r["symbol"] for r in rows if r["symbol"])


@dataclass(frozen=True)
class Valuations:
    """Positions valued at `as_of` for a set of portfolios (column arrays) and their cash balances."""

    position_id: list[UUID]
    portfolio_id: list[UUID]
    symbol: list[str]
    underlying: list[str]
    instrument_type: list[str]
    position_type: list[str]
    expiration: list[date | None]
    market_value: list[Any]  # Decimal | None
    exposure: list[Any]  # Decimal | None (dollar_exposure)
    cash: dict[UUID, Any]  # portfolio → Decimal cash balance (live portfolios only)


async def valuations(session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date) -> Valuations:
    """ingest.api_position_valuation rows of `portfolio_ids` on `as_of`, with each position's expiry."""
    conn = await raw_connection(session)
    rows = await conn.fetch(
        """
        SELECT v.position_id, v.portfolio_id, v.symbol, v.underlying_symbol, v.instrument_type, v.position_type,
               p.expiration_date, v.market_value, v.dollar_exposure
        FROM ingest.api_position_valuation v
        JOIN ingest.api_position p ON p.id = v.position_id
        WHERE v.portfolio_id = ANY($1::uuid[]) AND v.valuation_date = $2
        ORDER BY v.portfolio_id, v.symbol, v.position_id
        """,
        list(portfolio_ids),
        as_of,
    )
    cash_rows = await conn.fetch(
        "SELECT id, cash_balance FROM ingest.api_portfolio WHERE id = ANY($1::uuid[])", list(portfolio_ids)
    )
    return Valuations(
        position_id=[r[0] for r in rows],
        portfolio_id=[r[1] for r in rows],
        symbol=[r[2] for r in rows],
        underlying=[r[3] or r[2] for r in rows],
        instrument_type=[r[4] for r in rows],
        position_type=[r[5] for r in rows],
        expiration=[r[6] for r in rows],
        market_value=[r[7] for r in rows],
        exposure=[r[8] for r in rows],
        cash={r[0]: r[1] for r in cash_rows},
    )


async def open_position_counts(session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date) -> dict[UUID, int]:
    """Positions held at `as_of` per portfolio (entry_date <= D AND (open OR exit_date > D))."""
    rows = await _rows(
        session,
        """
        SELECT portfolio_id, count(*) AS n FROM ingest.api_position
        WHERE portfolio_id = ANY(:pids) AND entry_date <= :d AND (status = 'open' OR exit_date > :d)
        GROUP BY portfolio_id
        """,
        pids=list(portfolio_ids),
        d=as_of,
    )
    return {r["portfolio_id"]: int(r["n"]) for r in rows}


async def position_types(session: AsyncSession, *, position_ids: Sequence[UUID]) -> dict[UUID, str]:
    """position_type of positions (ingest.api_position)."""
    if not position_ids:
        return {}
    rows = await _rows(
        session, "SELECT id, position_type FROM ingest.api_position WHERE id = ANY(:ids)", ids=list(position_ids)
    )
    return {r["id"]: r["position_type"] for r in rows}


# ---------------------------------------------------------------- marketdata views


async def trading_window(session: AsyncSession, *, as_of: date, returns: int) -> list[date]:
    """The last `returns + 1` NYSE trading days <= as_of, ascending (`returns` returns end at the last).

    Falls back to SPY's price dates (the master date index) when the calendar view is empty.
    """
    rows = await _rows(
        session,
        "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date <= :d "
        "ORDER BY trading_date DESC LIMIT :n",
        d=as_of,
        n=returns + 1,
    )
    if not rows:
        rows = await _rows(
            session,
            "SELECT price_date AS trading_date FROM marketdata.api_daily_price WHERE symbol = :s AND price_date <= :d "
            "ORDER BY price_date DESC LIMIT :n",
            s=MARKET_SYMBOL,
            d=as_of,
            n=returns + 1,
        )
    return sorted(r["trading_date"] for r in rows)


async def close_matrix(session: AsyncSession, *, symbols: Sequence[str], days: Sequence[date]) -> np.ndarray:
    """Adjusted closes (the close when no adjusted close is stored) as a (len(days), len(symbols))
    float matrix aligned with `days`; NaN where a symbol has no close on a day (never filled)."""
    out = np.full((len(days), len(symbols)), np.nan)
    if not symbols or not days:
        return out
    conn = await raw_connection(session)
    rows = await conn.fetch(
        f"""
        SELECT symbol,
               {PACKED_OFFSETS.format(lo="$2::date")} AS offsets,
               {PACKED_CLOSES.format(close="COALESCE(adj_close, close)::float8")} AS closes
        FROM marketdata.api_daily_price
        WHERE symbol = ANY($1::text[]) AND price_date BETWEEN $2 AND $3
        GROUP BY symbol
        """,
        list(symbols),
        days[0],
        days[-1],
    )
    return scatter_series(rows, days=days, symbols=symbols)


async def rate_levels(session: AsyncSession, *, days: Sequence[date], series: str = RATE_SERIES) -> np.ndarray:
    """Rate observations (fractions) aligned with `days`; NaN when the series has none (FRED holidays)."""
    out = np.full(len(days), np.nan)
    if not days:
        return out
    rows = await _rows(
        session,
        "SELECT observation_date, value FROM marketdata.api_rate "
        "WHERE series_id = :s AND observation_date BETWEEN :a AND :b",
        s=series,
        a=days[0],
        b=days[-1],
    )
    index = {d: i for i, d in enumerate(days)}
    for r in rows:
        i = index.get(r["observation_date"])
        if i is not None and r["value"] is not None:
            out[i] = float(r["value"])
    return out


async def latest_market_date(session: AsyncSession, *, on_or_before: date | None = None) -> date | None:
    """The newest SPY close (the master date index): the default as-of of market-wide reads."""
    if on_or_before is None:
        rows = await _rows(
            session, "SELECT max(price_date) AS d FROM marketdata.api_daily_price WHERE symbol = :s", s=MARKET_SYMBOL
        )
    else:
        rows = await _rows(
            session,
            "SELECT max(price_date) AS d FROM marketdata.api_daily_price WHERE symbol = :s AND price_date <= :d",
            s=MARKET_SYMBOL,
            d=on_or_before,
        )
    return rows[0]["d"] if rows else None


async def data_source(session: AsyncSession, *, as_of: date) -> str:
    """`fixture` when SPY's close on as_of came from the fixture, else `live` (docs/contracts.md)."""
    rows = await _rows(
        session,
        "SELECT source FROM marketdata.api_daily_price WHERE symbol = :s AND price_date = :d",
        s=MARKET_SYMBOL,
        d=as_of,
    )
    return "fixture" if rows and rows[0]["source"] == "fixture" else "live"


async def run_includes_correlations(session: AsyncSession, *, run_id: UUID | None) -> bool:
    """Whether the batch run asked for position correlations (run-all `include_correlations`, api.md #9).

    Runs without the parameter (single steps, cascades, events outside a run) include them.
    """
    if run_id is None:
        return True
    rows = await _rows(session, "SELECT params FROM marketdata.api_batch_run WHERE id = :id", id=run_id)
    if not rows or not isinstance(rows[0]["params"], dict):
        return True
    return rows[0]["params"].get("include_correlations") is not False


# ---------------------------------------------------------------- stress views


async def snapshot_pnl(session: AsyncSession, *, portfolio_id: UUID, start: date, end: date) -> dict[date, Any]:
    """Daily P&L of the portfolio's stored snapshots in [start, end] (stress.api_snapshot)."""
    rows = await _rows(
        session,
        "SELECT snapshot_date, daily_pnl FROM stress.api_snapshot "
        "WHERE portfolio_id = :p AND snapshot_date BETWEEN :a AND :b",
        p=portfolio_id,
        a=start,
        b=end,
    )
    return {r["snapshot_date"]: r["daily_pnl"] for r in rows if r["daily_pnl"] is not None}


# ---------------------------------------------------------------- bulk writes


async def _copy_upsert(
    session: AsyncSession, table: sa.Table, records: list[tuple[Any, ...]], columns: Sequence[str], keys: Sequence[str]
) -> None:
    """COPY `records` into a temporary copy of `table`, then upsert them on `keys`."""
    if not records:
        return
    conn = await raw_connection(session)
    tmp = f"_fac_load_{uuid.uuid4().hex[:12]}"
    target = f"{table.schema}.{table.name}"
    cols = ", ".join(columns)
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
    await conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
    await conn.copy_records_to_table(tmp, records=records, columns=list(columns))
    conflict = f"DO UPDATE SET {update}, created_at = now()" if update else "DO NOTHING"
    await conn.execute(
        f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {tmp} ON CONFLICT ({', '.join(keys)}) {conflict}"
    )
    await conn.execute(f"DROP TABLE {tmp}")


MATRIX_COLUMNS = (
    "id",
    "calculation_date",
    "basis",
    "lookback_days",
    "window_start_date",
    "window_end_date",
    "observations",
    "factor_codes",
    "market_loadings",
    "volatilities",
    "diagnostics",
    "flags",
    "engine_version",
    "run_id",
)


async def upsert_matrix(
    session: AsyncSession, *, row: dict[str, Any], cells: Iterable[tuple[str, str, float, float]]
) -> UUID:
    """Store one matrix for (calculation_date, lookback_days, basis), keeping its id on a re-run, and
    replace its cells."""
    values = {k: v for k, v in row.items() if k != "id"}
    insert = sa.dialects.postgresql.insert(factor_matrix).values(id=row.get("id") or uuid.uuid4(), **values)
    upsert = insert.on_conflict_do_update(
        constraint="factor_matrix_date_lookback_basis_uq",
        set_={k: insert.excluded[k] for k in values if k not in ("calculation_date", "lookback_days", "basis")}
        | {"created_at": sa.func.now()},
    ).returning(factor_matrix.c.id)
    matrix_id: UUID = (await session.execute(upsert)).scalar_one()
    await session.execute(sa.delete(factor_matrix_cell).where(factor_matrix_cell.c.matrix_id == matrix_id))
    records = [(matrix_id, f1, f2, corr, cov) for f1, f2, corr, cov in cells]
    conn = await raw_connection(session)
    await conn.copy_records_to_table(
        "factor_matrix_cell",
        schema_name="factors",
        records=records,
        columns=["matrix_id", "factor_1", "factor_2", "correlation", "covariance"],
    )
    return matrix_id


REGRESSION_COLUMNS = (
    "symbol",
    "calculation_date",
    "matrix_id",
    "window_start_date",
    "window_end_date",
    "observations",
    "quality_flag",
    "beta_source",
    "alpha_daily",
    "alpha_p_value",
    "residual_volatility",
    "r_squared_joint",
    "condition_number",
    "flags",
    "engine_version",
    "run_id",
)
BETA_COLUMNS = (
    "symbol",
    "calculation_date",
    "factor_id",
    "beta",
    "std_error",
    "t_stat",
    "p_value",
    "r_squared",
    "adj_r_squared",
    "vif",
)


async def upsert_regressions(
    session: AsyncSession, *, regressions: list[tuple[Any, ...]], betas: list[tuple[Any, ...]]
) -> None:
    """Upsert underlying_regression rows (REGRESSION_COLUMNS) and their betas (BETA_COLUMNS)."""
    await _copy_upsert(session, underlying_regression, regressions, REGRESSION_COLUMNS, ("symbol", "calculation_date"))
    if betas:
        conn = await raw_connection(session)
        tmp = f"_fac_beta_{uuid.uuid4().hex[:12]}"
        cols = ", ".join(BETA_COLUMNS)
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in BETA_COLUMNS[3:])
        await conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE factors.underlying_factor_beta) ON COMMIT DROP")
        await conn.copy_records_to_table(tmp, records=betas, columns=list(BETA_COLUMNS))
        await conn.execute(
            f"INSERT INTO factors.underlying_factor_beta ({cols}) SELECT {cols} FROM {tmp} "
            f"ON CONFLICT (symbol, calculation_date, factor_id) DO UPDATE SET {update}"
        )
        await conn.execute(f"DROP TABLE {tmp}")


async def insert_new_regressions(
    session: AsyncSession, *, regressions: list[tuple[Any, ...]], betas: list[tuple[Any, ...]]
) -> None:
    """COPY underlying_regression rows (REGRESSION_COLUMNS) and their betas (BETA_COLUMNS) straight into
    their tables. Only for keys not stored yet — the model build under `lock_market_model` regresses
    exactly the symbols `regressed_symbols` did not find, and a beta cannot outlive its regression
    (ON DELETE CASCADE) — so no upsert through a temporary table is needed: each row is written once
    (a key stored meanwhile would raise a unique violation, never be overwritten)."""
    conn = await raw_connection(session)
    if regressions:
        await conn.copy_records_to_table(
            "underlying_regression", schema_name="factors", records=regressions, columns=list(REGRESSION_COLUMNS)
        )
    if betas:
        await conn.copy_records_to_table(
            "underlying_factor_beta", schema_name="factors", records=betas, columns=list(BETA_COLUMNS)
        )


PORTFOLIO_COLUMNS = (
    "portfolio_id",
    "calculation_date",
    "factor_id",
    "exposure_dollar",
    "beta",
    "beta_gross",
    "equity",
    "gross_exposure",
    "contributing_positions",
    "largest_contributor",
    "coverage_pct",
    "positions_full",
    "positions_limited",
    "positions_default",
    "status",
    "reason",
    "flags",
    "excluded",
    "engine_version",
    "run_id",
)


@dataclass(frozen=True)
class PortfolioExposureColumns:
    """portfolio_factor_exposure rows of one date (PORTFOLIO_COLUMNS), portfolio-major: row
    p * F + f = portfolio p, factor f (F = len(factor_id)). (P, F) arrays hold one value per row,
    (P,) arrays and lists of P one per portfolio (shared by its F rows). Amounts in USD; NaN and ±inf
    are stored as NULL, amounts as Python's round(v, 2) (`pg_numeric.rounded_float_cents`)."""

    portfolio_id: list[UUID]  # P
    factor_id: list[UUID]  # F
    exposure_dollar: np.ndarray  # (P, F)
    beta: np.ndarray  # (P, F)
    beta_gross: np.ndarray  # (P, F)
    equity: np.ndarray  # (P,)
    gross_exposure: np.ndarray  # (P,)
    contributing_positions: np.ndarray  # (P, F) int
    largest_contributor: list[str | None]  # P * F
    coverage_pct: np.ndarray  # (P,)
    positions_full: np.ndarray  # (P,) int
    positions_limited: np.ndarray  # (P,) int
    positions_default: np.ndarray  # (P,) int
    status: list[str]  # P * F
    reason: list[str | None]  # P * F
    flags: list[list[str]]  # P
    excluded: list[str]  # P, JSON text
    engine_version: str
    run_id: UUID | None = None


def _finite_float8(values: np.ndarray) -> pgb.Fields:
    """float8 fields with NULL for every non-finite value (NaN and ±inf)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return pgb.float8(np.where(np.isfinite(v), v, np.nan))


def _money(values: np.ndarray) -> pgb.Fields:
    return numeric_cents(*rounded_float_cents(np.asarray(values, dtype=np.float64).ravel()))


def portfolios_copy_stream(c: PortfolioExposureColumns, *, as_of: date) -> bytes:
    """The binary COPY of the portfolio_factor_exposure rows of `c` on `as_of` (PORTFOLIO_COLUMNS);
    per-portfolio values are repeated on each of the portfolio's F rows."""
    p, f = len(c.portfolio_id), len(c.factor_id)
    n = p * f

    def each_row(values: np.ndarray) -> np.ndarray:  # (P,) → (P * F,)
        return np.repeat(np.asarray(values), f)

    row_flags = [row for row in c.flags for _ in range(f)]
    flags = pgb.array(pgb.text([x for row in row_flags for x in row]), [len(row) for row in row_flags], pgb.OID_TEXT)
    # jsonb's binary form: a version byte (1), then the JSON text.
    excluded = [f"\x01{e}" for e in c.excluded]
    return pgb.copy_stream(
        pgb.uuids([pid for pid in c.portfolio_id for _ in range(f)]),
        pgb.int4(np.full(n, (as_of - _POSTGRES_EPOCH).days)),
        pgb.uuids(c.factor_id * p),
        _money(c.exposure_dollar),
        _finite_float8(c.beta),
        _finite_float8(c.beta_gross),
        _money(each_row(c.equity)),
        _money(each_row(c.gross_exposure)),
        pgb.int4(np.asarray(c.contributing_positions).ravel()),
        pgb.text(c.largest_contributor),
        _finite_float8(each_row(c.coverage_pct)),
        pgb.int4(each_row(c.positions_full)),
        pgb.int4(each_row(c.positions_limited)),
        pgb.int4(each_row(c.positions_default)),
        pgb.text(c.status),
        pgb.text(c.reason),
        flags,
        pgb.text([e for e in excluded for _ in range(f)]),
        pgb.text([c.engine_version] * n),
        pgb.uuids([c.run_id] * n),
    )


# One row per position (migration factors_0004). asyncpg would encode the nested float arrays element
# by element, so the rows travel as one binary COPY (common.pg_binary, built column-wise) straight into
# the table, each written once. The exposure is sent as the numeric(20, 2) the server's float8 →
# numeric cast would store (`pg_numeric.float8_numeric_cents`). NaN exposures, betas and dollar
# exposures arrive as NULL values / NULL array elements.
POSITION_COLUMNS = (
    "position_id",
    "calculation_date",
    "portfolio_id",
    "symbol",
    "underlying_symbol",
    "exposure",
    "beta_source",
    "quality_flag",
    "factor_ids",
    "betas",
    "exposure_dollars",
    "run_id",
)
_POSTGRES_EPOCH = date(2000, 1, 1)  # binary date = int4 days since this day


def positions_copy_stream(p: PositionExposureColumns, *, as_of: date) -> bytes:
    """The binary COPY of the position_factor_exposure rows (POSITION_COLUMNS) of `p` on `as_of`: row
    i's betas and dollar exposures are its k consecutive elements of the position-major flat columns
    (k = number of factors); every row shares the date, the factor ids and the run id."""
    n, k = len(p.position_id), len(p.factor_id)
    counts = np.full(n, k, dtype=np.int64)
    factor_ids = pgb.array(pgb.uuids(p.factor_id), [k], pgb.OID_UUID)
    cents, nulls = float8_numeric_cents(np.asarray(p.exposure, dtype=np.float64))
    return pgb.copy_stream(
        pgb.uuids(p.position_id),
        pgb.int4(np.full(n, (as_of - _POSTGRES_EPOCH).days)),
        pgb.uuids(p.portfolio_id),
        pgb.text(p.symbol),
        pgb.text(p.underlying_symbol),
        numeric_cents(cents, nulls),
        pgb.text(p.beta_source),
        pgb.text(p.quality_flag),
        pgb.constant(pgb.concat(*factor_ids).data.tobytes(), n),
        pgb.array(pgb.float8(p.beta), counts, pgb.OID_FLOAT8),
        pgb.array(pgb.float8(p.exposure_dollar), counts, pgb.OID_FLOAT8),
        pgb.uuids([p.run_id] * n),
    )


@dataclass(frozen=True)
class PositionExposureColumns:
    """position_factor_exposure rows of one date: one row per position. Per-position columns hold one
    value per position; `beta` and `exposure_dollar` one per (position, factor), position-major
    (position i, factor j = element i * len(factor_id) + j)."""

    factor_id: list[UUID]
    position_id: list[UUID]
    portfolio_id: list[UUID]
    symbol: list[str]
    underlying_symbol: list[str]
    exposure: list[float]
    beta_source: list[str]
    quality_flag: list[str]
    beta: list[float]
    exposure_dollar: list[float]
    run_id: UUID | None = None


async def replace_exposures(
    session: AsyncSession,
    *,
    portfolio_ids: Sequence[UUID],
    as_of: date,
    positions: PositionExposureColumns,
    portfolios: PortfolioExposureColumns | None,
) -> None:
    """Store the position and portfolio exposures of `portfolio_ids` for `as_of`,
    replacing every row those portfolios had on that date (a re-run replaces the day, positions no
    longer held lose their rows). Delete + plain insert: cheaper than an upsert of every row, and the
    final rows are the same (created_at = the transaction's now() either way). `portfolios` None:
    no portfolio rows are written (only deleted)."""
    conn = await raw_connection(session)
    ids = list(portfolio_ids)
    await conn.execute(
        "DELETE FROM factors.position_factor_exposure WHERE portfolio_id = ANY($1::uuid[]) AND calculation_date = $2",
        ids,
        as_of,
    )
    await conn.execute(
        "DELETE FROM factors.portfolio_factor_exposure WHERE portfolio_id = ANY($1::uuid[]) AND calculation_date = $2",
        ids,
        as_of,
    )
    if positions.position_id:
        stream = positions_copy_stream(positions, as_of=as_of)
        await pgb.copy_binary(
            conn, "position_factor_exposure", schema="factors", columns=POSITION_COLUMNS, stream=stream
        )
    if portfolios is not None and portfolios.portfolio_id:
        await pgb.copy_binary(
            conn,
            "portfolio_factor_exposure",
            schema="factors",
            columns=PORTFOLIO_COLUMNS,
            stream=portfolios_copy_stream(portfolios, as_of=as_of),
        )


async def delete_portfolio(session: AsyncSession, *, portfolio_id: UUID) -> int:
    """Remove every factors row of a portfolio (portfolio.updated removed), correlations included."""
    removed = 0
    for table in (position_factor_exposure, portfolio_factor_exposure, correlation_calculation):
        result = await session.execute(sa.delete(table).where(table.c.portfolio_id == portfolio_id))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


# ---------------------------------------------------------------- stored model reads


async def lock_market_model(session: AsyncSession, *, as_of: date) -> None:
    """Transaction-scoped advisory lock serialising the build of the market model of `as_of`."""
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(:k1, :k2)"), {"k1": 0x46414354, "k2": as_of.toordinal()}
    )


async def matrix(session: AsyncSession, *, as_of: date, lookback_days: int, basis: str) -> dict[str, Any] | None:
    """A stored matrix row of (as_of, lookback_days, basis)."""
    row = (
        (
            await session.execute(
                sa.select(factor_matrix).where(
                    factor_matrix.c.calculation_date == as_of,
                    factor_matrix.c.lookback_days == lookback_days,
                    factor_matrix.c.basis == basis,
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def matrix_by_id(session: AsyncSession, *, matrix_id: UUID) -> dict[str, Any] | None:
    """A stored matrix row by id."""
    row = (await session.execute(sa.select(factor_matrix).where(factor_matrix.c.id == matrix_id))).mappings().first()
    return dict(row) if row else None


async def latest_matrix_date(
    session: AsyncSession, *, lookback_days: int, on_or_before: date | None = None
) -> date | None:
    """Newest calculation_date with a stored matrix of this lookback."""
    query = sa.select(sa.func.max(factor_matrix.c.calculation_date)).where(
        factor_matrix.c.lookback_days == lookback_days
    )
    if on_or_before is not None:
        query = query.where(factor_matrix.c.calculation_date <= on_or_before)
    value: date | None = (await session.execute(query)).scalar()
    return value


async def matrix_cells(session: AsyncSession, *, matrix_id: UUID) -> list[sa.RowMapping]:
    """Every cell of a matrix."""
    return list(
        (await session.execute(sa.select(factor_matrix_cell).where(factor_matrix_cell.c.matrix_id == matrix_id)))
        .mappings()
        .all()
    )


async def regressed_symbols(session: AsyncSession, *, as_of: date, symbols: Sequence[str]) -> set[str]:
    """Which of `symbols` have an underlying_regression row for `as_of`."""
    if not symbols:
        return set()
    rows = await _rows(
        session,
        "SELECT symbol FROM factors.underlying_regression WHERE calculation_date = :d AND symbol = ANY(:s)",
        d=as_of,
        s=list(symbols),
    )
    return {r["symbol"] for r in rows}


@dataclass(frozen=True)
class StoredBetas:
    """Betas of underlyings for one date as arrays: rows follow `symbols`, columns `codes`."""

    symbols: list[str]
    codes: list[str]
    beta: np.ndarray  # (U, F) NaN when NULL
    beta_source: list[str]
    quality: list[str]
    observations: list[int]
    flags: list[list[str]]


async def underlying_betas(
    session: AsyncSession, *, as_of: date, symbols: Sequence[str], codes: Sequence[str]
) -> StoredBetas:
    """Stored betas of `symbols` on `as_of` (symbols without a regression row are left out)."""
    conn = await raw_connection(session)
    # One row per regressed symbol with its betas already in `codes` order (NULL where none), so
    # the client builds the (U, F) matrix in one numpy call instead of a loop over U × F rows.
    regs = await conn.fetch(
        """
        SELECT r.symbol, r.beta_source, r.quality_flag, r.observations, r.flags,
               ARRAY(
                   SELECT b.beta FROM unnest($3::text[]) WITH ORDINALITY AS c(code, j)
                   LEFT JOIN factors.factor_definition d ON d.code = c.code
                   LEFT JOIN factors.underlying_factor_beta b
                     ON b.symbol = r.symbol AND b.calculation_date = r.calculation_date AND b.factor_id = d.id
                   ORDER BY c.j
               ) AS betas
        FROM factors.underlying_regression r WHERE r.calculation_date = $1 AND r.symbol = ANY($2::text[])
        ORDER BY r.symbol
        """,
        as_of,
        list(symbols),
        list(codes),
    )
    present = [r[0] for r in regs]
    beta = np.array([r[5] for r in regs], dtype=np.float64).reshape(len(present), len(codes))
    return StoredBetas(
        symbols=present,
        codes=list(codes),
        beta=beta,
        beta_source=[r[1] for r in regs],
        quality=[r[2] for r in regs],
        observations=[int(r[3]) for r in regs],
        flags=[list(r[4] or []) for r in regs],
    )


async def latest_exposure_date(
    session: AsyncSession, *, portfolio_id: UUID, on_or_before: date | None = None
) -> date | None:
    """Newest calculation_date of a portfolio's stored factor exposures."""
    query = sa.select(sa.func.max(portfolio_factor_exposure.c.calculation_date)).where(
        portfolio_factor_exposure.c.portfolio_id == portfolio_id
    )
    if on_or_before is not None:
        query = query.where(portfolio_factor_exposure.c.calculation_date <= on_or_before)
    value: date | None = (await session.execute(query)).scalar()
    return value


async def portfolio_exposure_rows(session: AsyncSession, *, portfolio_id: UUID, as_of: date) -> list[sa.RowMapping]:
    """The portfolio's stored rows of one date, joined with the registry, in display order."""
    return list(
        await _rows(
            session,
            """
            SELECT d.code, d.name, d.proxy, d.display_order, e.*
            FROM factors.portfolio_factor_exposure e
            JOIN factors.factor_definition d ON d.id = e.factor_id
            WHERE e.portfolio_id = :p AND e.calculation_date = :d
            ORDER BY d.display_order
            """,
            p=portfolio_id,
            d=as_of,
        )
    )


async def market_exposure_history(
    session: AsyncSession, *, portfolio_id: UUID, start: date, end: date
) -> dict[date, dict[str, float]]:
    """Stored portfolio exposure_dollar per date and factor code in [start, end] (for attribution)."""
    rows = await _rows(
        session,
        """
        SELECT e.calculation_date, d.code, e.exposure_dollar
        FROM factors.portfolio_factor_exposure e
        JOIN factors.factor_definition d ON d.id = e.factor_id
        WHERE e.portfolio_id = :p AND e.calculation_date BETWEEN :a AND :b AND e.status = 'ok'
        """,
        p=portfolio_id,
        a=start,
        b=end,
    )
    out: dict[date, dict[str, float]] = {}
    for r in rows:
        if r["exposure_dollar"] is not None:
            out.setdefault(r["calculation_date"], {})[r["code"]] = float(r["exposure_dollar"])
    return out


async def market_loadings_history(session: AsyncSession, *, start: date, end: date) -> dict[date, dict[str, float]]:
    """b_k of the stored 252-day model matrices per date in [start, end]."""
    rows = await _rows(
        session,
        "SELECT calculation_date, market_loadings FROM factors.factor_matrix "
        "WHERE basis = 'model' AND lookback_days = 252 AND calculation_date BETWEEN :a AND :b",
        a=start,
        b=end,
    )
    return {r["calculation_date"]: dict(r["market_loadings"] or {}) for r in rows}
