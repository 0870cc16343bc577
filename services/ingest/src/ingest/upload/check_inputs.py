"""What the check of a file compares against: the user's tags, the portfolio's open positions and
the security master (marketdata's published views only: api_security, api_symbol_alias,
api_daily_price).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.bus import Bus
from common.db import Database
from common.errors import TransientError
from ingest.csv_format import ExistingTag, Security, SecurityLookup
from ingest.upload.errors import MARKET_ERRORS, MarketDataUnavailable

# OCC symbols are longer than any stock ticker; only they may be priced without a master row.
_MAX_STOCK_SYMBOL = 12


async def existing_tags(session: AsyncSession, user_id: UUID) -> list[ExistingTag]:
    sql = "SELECT name, tag_type FROM ingest.tag WHERE user_id = :u AND deleted_at IS NULL"
    rows = (await session.execute(sa.text(sql), {"u": user_id})).all()
    return [ExistingTag(r.name, r.tag_type) for r in rows]


async def open_position_keys(session: AsyncSession, portfolio_id: UUID) -> frozenset[tuple[str, date]]:
    sql = "SELECT symbol, entry_date FROM ingest.position WHERE portfolio_id = :p AND status = 'open'"
    rows = (await session.execute(sa.text(sql), {"p": portfolio_id})).all()
    return frozenset((r.symbol, r.entry_date) for r in rows)


async def symbol_aliases(conn: asyncpg.Connection, names: Sequence[str]) -> dict[str, str]:
    """alias → canonical symbol for those of `names` that are aliases (marketdata.api_symbol_alias)."""
    rows = await conn.fetch(
        "SELECT alias, symbol FROM marketdata.api_symbol_alias WHERE alias = ANY($1::text[])", names
    )
    return {r["alias"]: r["symbol"] for r in rows}


async def unknown_to_master(db: Database, symbols: Iterable[str]) -> list[str]:
    """Symbols that are neither security-master rows nor aliases yet."""
    wanted = sorted(set(symbols))
    if not wanted:
        return []
    try:
        rows = await db.fetch(
            "SELECT s FROM unnest($1::text[]) AS s WHERE NOT EXISTS "
            "(SELECT 1 FROM marketdata.api_security m WHERE m.symbol = s) AND NOT EXISTS "
            "(SELECT 1 FROM marketdata.api_symbol_alias a WHERE a.alias = s)",
            wanted,
        )
    except MARKET_ERRORS as exc:
        raise MarketDataUnavailable(f"security master could not be read: {exc}") from exc
    return [r["s"] for r in rows]


async def ask_marketdata_to_verify(bus: Bus, symbols: Sequence[str], timeout: float = 30.0) -> None:
    """csv-format.md §7: symbols new to the security master are looked up at the market-data provider
    (`rpc.marketdata.verify_symbols`), which adds the ones it knows. An unreachable provider fails the
    upload as retryable instead of rejecting rows as unknown."""
    if not symbols:
        return
    try:
        await bus.request("marketdata.verify_symbols", {"symbols": list(symbols)}, timeout=timeout)
    except (TransientError, TimeoutError) as exc:
        raise MarketDataUnavailable(f"market data provider could not verify symbols: {exc}") from exc


async def security_lookup(db: Database, symbols: Iterable[str]) -> SecurityLookup:
    """Security-master rows, aliases and price presence for `symbols` (marketdata views only)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return SecurityLookup({}, {}, frozenset())
    try:
        pool = await db.pool()
        async with pool.acquire() as conn:
            aliases = await symbol_aliases(conn, wanted)
            sec_rows = await conn.fetch(
                "SELECT symbol, security_type, sector, industry FROM marketdata.api_security "
                "WHERE symbol = ANY($1::text[])",
                sorted(set(wanted) | set(aliases.values())),
            )
            securities = {
                r["symbol"]: Security(r["symbol"], r["security_type"], r["sector"], r["industry"]) for r in sec_rows
            }
            # Option contracts without a master row may still have quotes (NO_OPTION_DATA otherwise).
            unlisted = [s for s in wanted if s not in securities and len(s) > _MAX_STOCK_SYMBOL]
            priced: set[str] = set()
            if unlisted:
                priced_rows = await conn.fetch(
                    "SELECT s FROM unnest($1::text[]) AS s WHERE EXISTS "
                    "(SELECT 1 FROM marketdata.api_daily_price p WHERE p.symbol = s)",
                    unlisted,
                )
                priced = {r["s"] for r in priced_rows}
    except MARKET_ERRORS as exc:
        raise MarketDataUnavailable(f"security master could not be read: {exc}") from exc
    return SecurityLookup(securities, aliases, frozenset(priced))
