"""Reads and writes of onboarding: the portfolio's holdings, what marketdata/factors/stress hold for
them (published views only), and the `ingest.onboarding_step` rows.

Every market read is one round trip for all symbols (LATERAL on the price primary key).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from ingest.onboarding_compute import (
    FULL_HISTORY_DAYS,
    RISK_FREE_SERIES,
    FactorDef,
    Holding,
    MarketData,
    Quote,
    SecurityInfo,
    StepState,
    factor_proxies,
    symbols_needed,
)
from ingest.upload_repository import MarketDataUnavailable, driver_connection

STALE_PRICE_MAX_DAYS = 5
MARKET_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


HOLDING_COLUMNS = (
    "p.id, p.portfolio_id, p.symbol, p.instrument_type, p.position_type, p.quantity, p.multiplier, "
    "p.underlying_symbol, p.option_type, p.strike_price, p.expiration_date, p.entry_price, p.entry_date, "
    "p.cost_basis, p.status, p.realized_pnl, p.created_at, p.updated_at"
)


async def holdings(conn: asyncpg.Connection, portfolio_id: UUID, *, with_tags: bool = True) -> list[dict[str, Any]]:
    """Open positions of a portfolio (with their live tags as TagRef dicts), ordered by symbol."""
    if not with_tags:
        rows = await conn.fetch(
            f"SELECT {HOLDING_COLUMNS} FROM ingest.position p WHERE p.portfolio_id = $1 AND p.status = 'open' "
            "ORDER BY p.symbol, p.entry_date, p.id",
            portfolio_id,
        )
        return [dict(r) for r in rows]
    rows = await conn.fetch(
        f"""
        SELECT {HOLDING_COLUMNS}, COALESCE(t.tags, '[]') AS tags
        FROM ingest.position p
        LEFT JOIN (
            SELECT pt.position_id,
                   json_agg(json_build_object('id', tg.id, 'name', tg.name, 'tag_type', tg.tag_type,
                                              'color', tg.color) ORDER BY tg.name) AS tags
            FROM ingest.position_tag pt
            JOIN ingest.position pp ON pp.id = pt.position_id AND pp.portfolio_id = $1 AND pp.status = 'open'
            JOIN ingest.tag tg ON tg.id = pt.tag_id AND tg.deleted_at IS NULL
            GROUP BY pt.position_id
        ) t ON t.position_id = p.id
        WHERE p.portfolio_id = $1 AND p.status = 'open'
        ORDER BY p.symbol, p.entry_date, p.id
        """,
        portfolio_id,
    )
    out = []
    for r in rows:
        d = dict(r)
        d["tags"] = orjson.loads(d["tags"]) if isinstance(d["tags"], str) else d["tags"]
        out.append(d)
    return out


def to_holding(row: dict[str, Any]) -> Holding:
    return Holding(
        id=str(row["id"]),
        symbol=row["symbol"],
        instrument_type=row["instrument_type"],
        position_type=row["position_type"],
        quantity=Decimal(row["quantity"]),
        multiplier=int(row["multiplier"]),
        underlying_symbol=row["underlying_symbol"],
        entry_price=Decimal(row["entry_price"]),
        entry_date=row["entry_date"],
        option_type=row["option_type"],
        strike_price=row["strike_price"],
        expiration_date=row["expiration_date"],
    )


async def session_holdings(session: AsyncSession, portfolio_id: UUID) -> list[Holding]:
    """Open positions as Holdings inside a SQLAlchemy transaction (upload commit)."""
    conn = await driver_connection(session)
    return [to_holding(r) for r in await holdings(conn, portfolio_id, with_tags=False)]


async def session_market_data(session: AsyncSession, hold: Sequence[Holding], today: date) -> MarketData:
    return await market_data(await driver_connection(session), hold, today)


def _weekday_dates(today: date) -> tuple[date, date]:
    ref = np.busday_offset(np.datetime64(today, "D"), 0, roll="backward")
    since = np.busday_offset(ref, -STALE_PRICE_MAX_DAYS)
    return ref.astype(date), since.astype(date)


async def reference_dates(conn: asyncpg.Connection, today: date) -> tuple[date, date]:
    """(latest NYSE trading day on or before `today`, the trading day 5 sessions before it)."""
    try:
        rows = await conn.fetch(
            "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date <= $1 "
            "ORDER BY trading_date DESC LIMIT $2",
            today,
            STALE_PRICE_MAX_DAYS + 1,
        )
    except asyncpg.UndefinedTableError:
        rows = []
    if len(rows) < STALE_PRICE_MAX_DAYS + 1:
        return _weekday_dates(today)
    return rows[0]["trading_date"], rows[-1]["trading_date"]


async def market_data(conn: asyncpg.Connection, hold: Sequence[Holding], today: date) -> MarketData:
    """Everything onboarding needs from marketdata and factors for these holdings."""
    try:
        reference, since = await reference_dates(conn, today)
        factors = await _factor_definitions(conn)
        etf_proxies, rate_proxies = factor_proxies(factors)
        symbols = symbols_needed(hold)
        alias_rows = await conn.fetch(
            "SELECT alias, symbol FROM marketdata.api_symbol_alias WHERE alias = ANY($1::text[])",
            [*symbols, *(s.replace("-", ".") for s in symbols if "-" in s)],
        )
        aliases = {r["alias"]: r["symbol"] for r in alias_rows}
        all_symbols = sorted({*symbols, *aliases.values(), *etf_proxies})
        sec_rows = await conn.fetch(
            "SELECT symbol, security_type, name, sector, industry FROM marketdata.api_security "
            "WHERE symbol = ANY($1::text[])",
            all_symbols,
        )
        securities = {
            r["symbol"]: SecurityInfo(r["symbol"], r["security_type"], r["name"], r["sector"], r["industry"])
            for r in sec_rows
        }
        price_rows = await conn.fetch(
            """
            SELECT s.symbol, q.price_date, q.close, q.implied_volatility,
                   (SELECT count(*) FROM (SELECT 1 FROM marketdata.api_daily_price h
                                          WHERE h.symbol = s.symbol AND h.price_date <= $2
                                          ORDER BY h.price_date DESC LIMIT $3) x) AS days
            FROM unnest($1::text[]) AS s(symbol)
            LEFT JOIN LATERAL (
                SELECT price_date, close, implied_volatility FROM marketdata.api_daily_price d
                WHERE d.symbol = s.symbol AND d.price_date <= $2
                ORDER BY d.price_date DESC LIMIT 1
            ) q ON true
            """,
            all_symbols,
            reference,
            FULL_HISTORY_DAYS,
        )
        quotes = {
            r["symbol"]: Quote(r["price_date"], Decimal(r["close"]), r["implied_volatility"])
            for r in price_rows
            if r["price_date"] is not None
        }
        history = {r["symbol"]: int(r["days"]) for r in price_rows}
        series = sorted({*RISK_FREE_SERIES, *rate_proxies})
        rate_rows = await conn.fetch(
            """
            SELECT s.series_id,
                   (SELECT count(*) FROM (SELECT 1 FROM marketdata.api_rate r
                                          WHERE r.series_id = s.series_id AND r.observation_date <= $2
                                          ORDER BY r.observation_date DESC LIMIT $3) x) AS n
            FROM unnest($1::text[]) AS s(series_id)
            """,
            series,
            reference,
            FULL_HISTORY_DAYS,
        )
        rates = {r["series_id"]: int(r["n"]) for r in rate_rows}
    except MARKET_ERRORS as exc:
        raise MarketDataUnavailable(f"market data could not be read: {exc}") from exc
    return MarketData(
        reference_date=reference,
        current_since=since,
        securities=securities,
        aliases=aliases,
        quotes=quotes,
        history=history,
        rates=rates,
        factors=factors,
    )


async def _factor_definitions(conn: asyncpg.Connection) -> list[FactorDef]:
    try:
        rows = await conn.fetch(
            "SELECT code, name, proxy, proxy_type, calculation_method, is_active "
            "FROM factors.api_factor_definition ORDER BY display_order"
        )
    except asyncpg.UndefinedTableError:
        return []  # factors service not installed: the check reports no definitions
    return [
        FactorDef(r["code"], r["name"], r["proxy"], r["proxy_type"], r["calculation_method"], r["is_active"])
        for r in rows
    ]


async def first_snapshot_date(conn: asyncpg.Connection, portfolio_id: UUID) -> date | None:
    """Earliest snapshot of the portfolio in stress.api_snapshot (None before the first run ends)."""
    with contextlib.suppress(asyncpg.UndefinedTableError):
        value = await conn.fetchval(
            "SELECT min(snapshot_date) FROM stress.api_snapshot WHERE portfolio_id = $1", portfolio_id
        )
        return value if isinstance(value, date) else None
    return None


async def onboarding_run(conn: asyncpg.Connection, portfolio_id: UUID, since: datetime) -> dict[str, Any] | None:
    """The run marketdata started for this portfolio's onboarding (marketdata.api_batch_run)."""
    with contextlib.suppress(asyncpg.UndefinedTableError):
        row = await conn.fetchrow(
            "SELECT id, status, as_of_date, created_at FROM marketdata.api_batch_run "
            "WHERE $1 = ANY(portfolio_ids) AND created_at >= $2 ORDER BY created_at DESC LIMIT 1",
            portfolio_id,
            since,
        )
        return dict(row) if row is not None else None
    return None


# --------------------------------------------------------------------------------------------
# onboarding_step


async def steps(db: Database, portfolio_id: UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT step, status, attempts, last_error, details, updated_at FROM ingest.onboarding_step "
        "WHERE portfolio_id = $1",
        portfolio_id,
    )
    out = []
    for r in rows:
        d = dict(r)
        if isinstance(d["details"], str):
            d["details"] = orjson.loads(d["details"])
        out.append(d)
    return out


async def write_steps(
    session: AsyncSession, portfolio_id: UUID, states: Sequence[StepState], *, attempt: bool = True
) -> None:
    """Upsert collection-step states (attempts +1 when the step was (re)checked)."""
    for s in states:
        await session.execute(
            sa.text(
                """
                INSERT INTO ingest.onboarding_step (portfolio_id, step, status, attempts, last_error, details)
                VALUES (:p, :step, :status, :attempts, :err, CAST(:details AS jsonb))
                ON CONFLICT (portfolio_id, step) DO UPDATE
                SET status = EXCLUDED.status, attempts = ingest.onboarding_step.attempts + :inc,
                    last_error = EXCLUDED.last_error, details = EXCLUDED.details, updated_at = now()
                """
            ),
            {
                "p": portfolio_id,
                "step": s.step,
                "status": s.status,
                "attempts": 1 if attempt else 0,
                "inc": 1 if attempt else 0,
                "err": s.last_error,
                "details": orjson.dumps(s.details).decode(),
            },
        )


async def set_step(
    session: AsyncSession,
    portfolio_id: UUID,
    step: str,
    status: str,
    *,
    last_error: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        sa.text(
            """
            INSERT INTO ingest.onboarding_step (portfolio_id, step, status, last_error, details)
            VALUES (:p, :step, :status, :err, CAST(:details AS jsonb))
            ON CONFLICT (portfolio_id, step) DO UPDATE
            SET status = EXCLUDED.status, last_error = EXCLUDED.last_error,
                details = COALESCE(EXCLUDED.details, ingest.onboarding_step.details), updated_at = now()
            """
        ),
        {
            "p": portfolio_id,
            "step": step,
            "status": status,
            "err": last_error,
            "details": None if details is None else orjson.dumps(details).decode(),
        },
    )


async def mark_steps_running(session: AsyncSession, portfolio_id: UUID, names: Sequence[str]) -> None:
    await session.execute(
        sa.text(
            "UPDATE ingest.onboarding_step SET status = 'running', updated_at = now() "
            "WHERE portfolio_id = :p AND step = ANY(:steps)"
        ),
        {"p": portfolio_id, "steps": list(names)},
    )


async def activate(session: AsyncSession, portfolio_id: UUID) -> bool:
    """onboarding → active (onboarded_at now); False when the portfolio was not in onboarding."""
    row = (
        await session.execute(
            sa.text(
                "UPDATE ingest.portfolio SET status = 'active', onboarded_at = now(), updated_at = now() "
                "WHERE id = :p AND status = 'onboarding' AND deleted_at IS NULL RETURNING id"
            ),
            {"p": portfolio_id},
        )
    ).first()
    return row is not None


async def creating_upload(conn: asyncpg.Connection, portfolio_id: UUID) -> dict[str, Any] | None:
    """The latest completed upload into this portfolio (preview's `upload_id` and tag summary)."""
    row = await conn.fetchrow(
        "SELECT id, outcome FROM ingest.upload WHERE portfolio_id = $1 AND status = 'completed' "
        "ORDER BY finished_at DESC NULLS LAST, created_at DESC LIMIT 1",
        portfolio_id,
    )
    if row is None:
        return None
    outcome = row["outcome"]
    if isinstance(outcome, str):
        outcome = orjson.loads(outcome)
    return {"id": row["id"], "outcome": outcome or {}}
