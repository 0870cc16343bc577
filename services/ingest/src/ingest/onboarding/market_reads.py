"""What marketdata, factors and stress hold for onboarding, through their published views only
(api_trading_day, api_symbol_alias, api_security, api_daily_price, api_rate,
api_factor_definition, api_batch_run, api_snapshot).

Every market read is one round trip for all symbols (LATERAL on the price primary key). A view of
a service that is not installed reads as empty; any other failure is `MarketDataUnavailable`.
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
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.onboarding.model import (
    FULL_HISTORY_DAYS,
    RISK_FREE_SERIES,
    FactorDef,
    Holding,
    MarketData,
    Quote,
    SecurityInfo,
    factor_proxies,
    symbols_needed,
)
from ingest.upload.bulk import driver_connection
from ingest.upload.check_inputs import symbol_aliases
from ingest.upload.errors import MARKET_ERRORS, MarketDataUnavailable

STALE_PRICE_MAX_DAYS = 5


async def session_market_data(session: AsyncSession, hold: Sequence[Holding], today: date) -> MarketData:
    """`market_data` inside a SQLAlchemy transaction (upload commit)."""
    return await market_data(await driver_connection(session), hold, today)


def _weekday_dates(today: date) -> tuple[date, date]:
    ref = np.busday_offset(np.datetime64(today, "D"), 0, roll="backward")
    since = np.busday_offset(ref, -STALE_PRICE_MAX_DAYS)
    return ref.astype(date), since.astype(date)


async def reference_dates(conn: asyncpg.Connection, today: date) -> tuple[date, date]:
    """(latest NYSE trading day on or before `today`, the trading day 5 sessions before it).

    Without the trading calendar (marketdata not installed or not seeded) weekdays stand in.
    """
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
        aliases = await symbol_aliases(conn, [*symbols, *(s.replace("-", ".") for s in symbols if "-" in s)])
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
