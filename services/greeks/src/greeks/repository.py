"""Reads through the published views of ingest and marketdata (docs/contracts.md) and writes to greeks.*.

Functions are keyword-only and take the caller's session, so a handler's reads and writes share
one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch_records, session_driver_connection
from greeks.compute import CURVE_TENORS
from greeks.models import position_greek


@dataclass(frozen=True)
class PortfolioRef:
    """A portfolio as seen through ingest.api_portfolio."""

    id: UUID
    user_id: UUID
    status: str


@dataclass(frozen=True)
class OptionPosition:
    """An option position held at the calculation date (ingest.api_position)."""

    id: UUID
    portfolio_id: UUID
    symbol: str
    underlying_symbol: str
    option_type: str | None
    strike_price: Decimal | None
    expiration_date: date | None
    quantity: Decimal
    multiplier: int | None


@dataclass(frozen=True)
class PriceRow:
    """One row of marketdata.api_daily_price."""

    symbol: str
    price_date: date
    close: Decimal | None
    adj_close: Decimal | None
    implied_volatility: float | None
    source: str | None


async def _rows(session: AsyncSession, sql: str, **params: Any) -> Sequence[sa.RowMapping]:
    return (await session.execute(sa.text(sql), params)).mappings().all()


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


async def option_positions_held(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date
) -> list[OptionPosition]:
    """Option positions held at `as_of`: entry_date <= D AND (status = 'open' OR exit_date > D)."""
    if not portfolio_ids:
        return []
    # asyncpg Records (a run holds ~6,000 options): SQLAlchemy Row mappings cost more than the read.
    rows = await fetch_records(
        session,
        """
        SELECT id, portfolio_id, symbol, underlying_symbol, option_type, strike_price, expiration_date,
               quantity, multiplier
        FROM ingest.api_position
        WHERE portfolio_id = ANY(CAST(:pids AS uuid[])) AND instrument_type = 'option'
          AND entry_date <= :d AND (status = 'open' OR exit_date > :d)
        ORDER BY portfolio_id, id
        """,
        {"pids": list(portfolio_ids), "d": as_of},
    )
    return [OptionPosition(**dict(r)) for r in rows]


async def open_option_count(session: AsyncSession, *, portfolio_id: UUID) -> int:
    """Open option positions of a portfolio (to tell "no options" from "not calculated")."""
    rows = await _rows(
        session,
        "SELECT count(*) AS n FROM ingest.api_open_position WHERE portfolio_id = :pid AND instrument_type = 'option'",
        pid=portfolio_id,
    )
    return int(rows[0]["n"])


# ---------------------------------------------------------------- marketdata views


async def trading_days(session: AsyncSession, *, as_of: date, count: int) -> list[tuple[date, date | None]]:
    """The last `count` NYSE trading days <= as_of with their previous trading day, newest first.

    Falls back to the days on which SPY (the master date index) has a close when the calendar
    view is empty.
    """
    rows = await _rows(
        session,
        """
        SELECT trading_date, previous_trading_date FROM marketdata.api_trading_day
        WHERE trading_date <= :d ORDER BY trading_date DESC LIMIT :n
        """,
        d=as_of,
        n=count,
    )
    if rows:
        return [(r["trading_date"], r["previous_trading_date"]) for r in rows]
    spy = await _rows(
        session,
        """
        SELECT price_date FROM marketdata.api_daily_price
        WHERE symbol = 'SPY' AND price_date <= :d ORDER BY price_date DESC LIMIT :n
        """,
        d=as_of,
        n=count + 1,
    )
    days = [r["price_date"] for r in spy]
    return [(days[i], days[i + 1] if i + 1 < len(days) else None) for i in range(min(count, len(days)))]


async def prices(session: AsyncSession, *, symbols: Sequence[str], start: date, end: date) -> list[PriceRow]:
    """Daily prices of `symbols` with start <= price_date <= end."""
    if not symbols:
        return []
    rows = await _rows(
        session,
        """
        SELECT symbol, price_date, close, adj_close, implied_volatility, source
        FROM marketdata.api_daily_price
        WHERE symbol = ANY(:syms) AND price_date BETWEEN :s AND :e
        """,
        syms=list(symbols),
        s=start,
        e=end,
    )
    return [
        PriceRow(r["symbol"], r["price_date"], r["close"], r["adj_close"], r["implied_volatility"], r["source"])
        for r in rows
    ]


@dataclass(frozen=True)
class PriceHistory:
    """Daily prices of a symbol list as aligned columns (what the model inputs need of them)."""

    start: date
    symbol: npt.NDArray[np.int64]  # index into the requested symbol list
    day: npt.NDArray[np.int64]  # calendar days since `start`
    close: npt.NDArray[np.float64]
    has_close: npt.NDArray[np.bool_]
    adj_close: npt.NDArray[np.float64]
    has_adj_close: npt.NDArray[np.bool_]


async def price_history(session: AsyncSession, *, symbols: Sequence[str], start: date, end: date) -> PriceHistory:
    """Closes and adjusted closes of `symbols` with start <= price_date <= end, as columns.

    NUMERIC → float8 in SQL is correctly rounded, as Python's float(Decimal): the same floats
    without building ~100k Decimals and row objects.
    """
    # asyncpg directly (inside the session's transaction), and one row of packed big-endian columns:
    # per-row Records and their transposition cost more than the query itself on ~65k rows (1,000
    # underlyings × 64 days). All aggregates of one group read the rows in the same order, so the
    # columns stay aligned. A missing close is NaN with its `has_*` bit clear (bit 0 close, bit 1
    # adjusted close), as the row-wise read gave; string_agg skips NULLs, hence the coalesce.
    # Rows come symbol by symbol, each a primary-key range scan: as a plain join the planner hashed a
    # sequential scan of the whole price table (every date of every symbol, ~640k rows, spilling the
    # hash to disk) at ~2x the CPU. OFFSET 0 keeps the LATERAL from being flattened into that join.
    # Row order does not matter to the callers (each row carries its symbol index and day).
    row = await (await session_driver_connection(session)).fetchrow(
        """
        SELECT string_agg(int4send(CAST(s.i - 1 AS int4)), ''::bytea) AS symbol,
               string_agg(int4send(d.price_date - $2::date), ''::bytea) AS day,
               string_agg(coalesce(float8send(CAST(d.close AS float8)), float8send('NaN')), ''::bytea) AS close,
               string_agg(coalesce(float8send(CAST(d.adj_close AS float8)), float8send('NaN')), ''::bytea)
                   AS adj_close,
               string_agg(int2send(CAST((d.close IS NOT NULL)::int + 2 * (d.adj_close IS NOT NULL)::int AS int2)),
                          ''::bytea) AS has
        FROM unnest($1::text[]) WITH ORDINALITY AS s(symbol, i)
        CROSS JOIN LATERAL (
          SELECT p.price_date, p.close, p.adj_close FROM marketdata.api_daily_price p
          WHERE p.symbol = s.symbol AND p.price_date BETWEEN $2 AND $3
          OFFSET 0
        ) d
        """,
        list(symbols),
        start,
        end,
    )
    if row is None or row["symbol"] is None:
        no_ints, no_floats, no_flags = np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, bool)
        return PriceHistory(start, no_ints, no_ints.copy(), no_floats, no_flags, no_floats.copy(), no_flags.copy())
    has = np.frombuffer(row["has"], dtype=">i2")
    return PriceHistory(
        start=start,
        symbol=np.frombuffer(row["symbol"], dtype=">i4").astype(np.int64),
        day=np.frombuffer(row["day"], dtype=">i4").astype(np.int64),
        close=np.frombuffer(row["close"], dtype=">f8").astype(np.float64),
        has_close=(has & 1).astype(bool),
        adj_close=np.frombuffer(row["adj_close"], dtype=">f8").astype(np.float64),
        has_adj_close=(has & 2).astype(bool),
    )


async def curve_observations(session: AsyncSession, *, as_of: date, max_age_days: int) -> list[tuple[str, date, float]]:
    """Risk-free curve observations (fractions) dated within `max_age_days` before as_of."""
    rows = await _rows(
        session,
        """
        SELECT series_id, observation_date, value FROM marketdata.api_rate
        WHERE series_id = ANY(:series) AND observation_date BETWEEN :s AND :e
        """,
        series=list(CURVE_TENORS),
        s=as_of - timedelta(days=max_age_days),
        e=as_of,
    )
    return [(r["series_id"], r["observation_date"], float(r["value"])) for r in rows if r["value"] is not None]


async def securities(session: AsyncSession, *, symbols: Sequence[str]) -> dict[str, sa.RowMapping]:
    """Security-master rows (dividend_yield, multiplier, security_type) by symbol."""
    if not symbols:
        return {}
    rows = await _rows(
        session,
        """
        SELECT symbol, security_type, dividend_yield, multiplier, underlying_symbol
        FROM marketdata.api_security WHERE symbol = ANY(:syms)
        """,
        syms=list(symbols),
    )
    return {r["symbol"]: r for r in rows}


async def resolve_symbols(session: AsyncSession, *, symbols: Sequence[str]) -> dict[str, str]:
    """Requested symbol → canonical security-master symbol (directly or through an alias)."""
    if not symbols:
        return {}
    rows = await _rows(
        session,
        """
        SELECT s.symbol AS requested, s.symbol AS canonical FROM marketdata.api_security s
        WHERE s.symbol = ANY(:syms)
        UNION ALL
        SELECT a.alias, a.symbol FROM marketdata.api_symbol_alias a
        JOIN marketdata.api_security s ON s.symbol = a.symbol
        WHERE a.alias = ANY(:syms)
        """,
        syms=list(symbols),
    )
    out: dict[str, str] = {}
    for r in rows:
        out.setdefault(r["requested"], r["canonical"])
    return out


async def latest_price_date(session: AsyncSession, *, symbol: str) -> date | None:
    """Latest stored price date of a symbol (SPY: the default as-of)."""
    rows = await _rows(
        session, "SELECT max(price_date) AS d FROM marketdata.api_daily_price WHERE symbol = :s", s=symbol
    )
    return rows[0]["d"] if rows else None


async def data_source(session: AsyncSession, *, as_of: date) -> str:
    """`fixture` when SPY's close on as_of came from the fixture, else `live` (docs/contracts.md)."""
    rows = await _rows(
        session,
        "SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' AND price_date = :d",
        d=as_of,
    )
    return "fixture" if rows and rows[0]["source"] == "fixture" else "live"


# ---------------------------------------------------------------- greeks.position_greek


async def replace_position_greeks(
    session: AsyncSession, *, portfolio_id: UUID, calculation_date: date, rows: Sequence[dict[str, Any]]
) -> None:
    """Upsert one portfolio's rows for a date on (position_id, calculation_date) and drop rows of
    positions no longer held, so a re-run replaces the day and never duplicates it."""
    ids = [r["position_id"] for r in rows]
    await session.execute(
        sa.delete(position_greek).where(
            position_greek.c.portfolio_id == portfolio_id,
            position_greek.c.calculation_date == calculation_date,
            position_greek.c.position_id.not_in(ids) if ids else sa.true(),
        )
    )
    if not rows:
        return
    stmt = pg.insert(position_greek).values(list(rows))
    keys = {"position_id", "calculation_date"}
    update: dict[str, Any] = {c.name: stmt.excluded[c.name] for c in position_greek.columns if c.name not in keys}
    update["created_at"] = sa.func.now()
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[position_greek.c.position_id, position_greek.c.calculation_date], set_=update
        )
    )


async def delete_portfolio(session: AsyncSession, *, portfolio_id: UUID) -> int:
    """Remove every row of a portfolio (portfolio.updated removed)."""
    result = await session.execute(sa.delete(position_greek).where(position_greek.c.portfolio_id == portfolio_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def latest_calculation_date(session: AsyncSession, *, portfolio_id: UUID) -> date | None:
    """Newest calculation_date stored for a portfolio."""
    value = (
        await session.execute(
            sa.select(sa.func.max(position_greek.c.calculation_date)).where(
                position_greek.c.portfolio_id == portfolio_id
            )
        )
    ).scalar()
    return value


async def has_calculation(session: AsyncSession, *, portfolio_id: UUID, calculation_date: date) -> bool:
    """True when rows exist for the portfolio and date."""
    value = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(position_greek)
            .where(position_greek.c.portfolio_id == portfolio_id, position_greek.c.calculation_date == calculation_date)
        )
    ).scalar()
    return bool(value)
