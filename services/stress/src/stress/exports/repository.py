"""Reads behind trade exports: the security master and closes (marketdata published views) and a
modelling session with its trades (ingest.api_modeling_session / api_modeling_trade, published by
ingest migration 0004). Only published views are read (docs/contracts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from greeks.occ import OccParseError, occ_symbol
from stress.exports.trades import SessionTrade
from stress.risk_repository import views_present

EASTERN = ZoneInfo("America/New_York")
SESSION_VIEWS = ("ingest.api_modeling_session", "ingest.api_modeling_trade")


async def canonical_symbols(session: AsyncSession, symbols: Sequence[str]) -> dict[str, str]:
    """Each symbol known to the security master (directly or through an alias) → its canonical form."""
    if not symbols:
        return {}
    rows = await session.execute(
        sa.text(
            """
            SELECT q.symbol AS asked, coalesce(s.symbol, a.symbol) AS canonical
            FROM unnest(CAST(:symbols AS text[])) AS q(symbol)
            LEFT JOIN marketdata.api_security s ON s.symbol = q.symbol
            LEFT JOIN marketdata.api_symbol_alias a ON a.alias = q.symbol
            """
        ),
        {"symbols": list(dict.fromkeys(symbols))},
    )
    return {r.asked: r.canonical for r in rows if r.canonical is not None}


async def latest_closes(session: AsyncSession, symbols: Sequence[str], on_or_before: date) -> dict[str, Decimal]:
    """The latest stored close of each symbol on or before `on_or_before` (symbols without one are absent)."""
    if not symbols:
        return {}
    rows = await session.execute(
        sa.text(
            """
            SELECT q.symbol, c.close
            FROM unnest(CAST(:symbols AS text[])) AS q(symbol)
            JOIN LATERAL (
                SELECT p.close FROM marketdata.api_daily_price p
                WHERE p.symbol = q.symbol AND p.price_date <= :d AND p.close IS NOT NULL
                ORDER BY p.price_date DESC LIMIT 1
            ) c ON true
            """
        ),
        {"symbols": list(dict.fromkeys(symbols)), "d": on_or_before},
    )
    return {r.symbol: Decimal(r.close) for r in rows}


@dataclass(frozen=True)
class ModelingSession:
    """A modelling session: who owns it and which portfolio it models."""

    id: UUID
    user_id: UUID
    portfolio_id: UUID
    name: str
    status: str


async def modeling_session(session: AsyncSession, session_id: UUID) -> ModelingSession | None:
    """The session, or None when it does not exist (or ingest has not published the views yet)."""
    if len(await views_present(session, SESSION_VIEWS)) < len(SESSION_VIEWS):
        return None
    row = (
        await session.execute(
            sa.text("SELECT id, user_id, portfolio_id, name, status FROM ingest.api_modeling_session WHERE id = :id"),
            {"id": session_id},
        )
    ).first()
    return None if row is None else ModelingSession(row.id, row.user_id, row.portfolio_id, row.name, row.status)


def _symbol(row: sa.Row[tuple[object, ...]]) -> str:
    """The trade's symbol; an option given by its parts gets its compact OCC symbol."""
    symbol = str(row.symbol).upper()
    if row.security_type == "OPT" and row.strike is not None and row.expiry_date is not None and row.option_type:
        try:
            return occ_symbol(str(row.underlying_symbol), row.expiry_date, str(row.option_type)[0].upper(), row.strike)
        except OccParseError:
            return symbol
    return symbol


async def session_trades(session: AsyncSession, session_id: UUID) -> list[SessionTrade]:
    """The session's trades in order (trade dates are US/Eastern calendar dates of `created_at`)."""
    rows = await session.execute(
        sa.text(
            """
            SELECT trade_no, symbol, underlying_symbol, security_type, option_type, strike, expiry_date, side,
                   quantity, price, open_close, tag, created_at
            FROM ingest.api_modeling_trade WHERE session_id = :id ORDER BY trade_no
            """
        ),
        {"id": session_id},
    )
    return [
        SessionTrade(
            trade_no=int(r.trade_no),
            symbol=_symbol(r),
            side=str(r.side),
            quantity=Decimal(r.quantity),
            price=None if r.price is None else Decimal(r.price),
            trade_date=r.created_at.astimezone(EASTERN).date(),
            tag=r.tag,
            open_close=r.open_close,
        )
        for r in rows
    ]
