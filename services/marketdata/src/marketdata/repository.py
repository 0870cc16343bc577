"""Database access of the marketdata service (SQLAlchemy Core in sessions; raw asyncpg for bulk
loads and hot reads). Bulk writes go through COPY into a temporary table and one
`INSERT … ON CONFLICT DO UPDATE`, never one statement per row; unchanged rows are not rewritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database, session_driver_connection
from marketdata.demo_securities import FACTOR_ETFS
from marketdata.providers.base import PriceBar, RateObservation

S = "marketdata"

PRICE_COLUMNS = (
    "symbol",
    "price_date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "implied_volatility",
    "dividend",
    "source",
)


# The asyncpg connection under a session, inside its transaction (common.db).
raw_connection = session_driver_connection


async def _copy_upsert(
    session: AsyncSession, *, table: str, columns: Sequence[str], records: list[tuple[Any, ...]], upsert_sql: str
) -> None:
    """COPY `records` into a temp copy of `table`, then run `upsert_sql` (with `{tmp}`) from it."""
    if not records:
        return
    conn = await raw_connection(session)
    tmp = f"_md_load_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE {S}.{table} INCLUDING DEFAULTS) ON COMMIT DROP")
    await conn.copy_records_to_table(tmp, records=records, columns=list(columns))
    await conn.execute(upsert_sql.format(tmp=tmp))
    await conn.execute(f"DROP TABLE {tmp}")


def price_records(bars: Iterable[PriceBar], source: str) -> list[tuple[Any, ...]]:
    """COPY records (PRICE_COLUMNS order) from bars; the last bar wins for a repeated (symbol, date)."""
    unique: dict[tuple[str, date], tuple[Any, ...]] = {}
    for b in bars:
        unique[(b.symbol, b.price_date)] = (
            b.symbol,
            b.price_date,
            b.open,
            b.high,
            b.low,
            b.close,
            b.adj_close,
            b.volume,
            b.implied_volatility,
            b.dividend,
            source,
        )
    return list(unique.values())


async def upsert_prices(session: AsyncSession, bars: Iterable[PriceBar], *, source: str) -> int:
    """Upsert daily bars on (symbol, price_date); keeps a stored vendor IV/dividend the new bar lacks."""
    records = price_records(bars, source)
    await upsert_price_records(session, records)
    return len(records)


async def upsert_price_records(session: AsyncSession, records: list[tuple[Any, ...]]) -> None:
    """Upsert prepared COPY records (PRICE_COLUMNS order)."""
    cols = ", ".join(PRICE_COLUMNS)
    sql = f"""
        INSERT INTO {S}.daily_price AS p ({cols}, fetched_at)
        SELECT {cols}, now() FROM {{tmp}}
        ON CONFLICT (symbol, price_date) DO UPDATE SET
            open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
            adj_close = EXCLUDED.adj_close, volume = EXCLUDED.volume,
            implied_volatility = COALESCE(EXCLUDED.implied_volatility, p.implied_volatility),
            dividend = COALESCE(EXCLUDED.dividend, p.dividend),
            source = EXCLUDED.source, fetched_at = now()
        WHERE (p.open, p.high, p.low, p.close, p.adj_close, p.volume, p.source)
              IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.adj_close,
                                EXCLUDED.volume, EXCLUDED.source)
           OR (EXCLUDED.implied_volatility IS NOT NULL
               AND p.implied_volatility IS DISTINCT FROM EXCLUDED.implied_volatility)
           OR (EXCLUDED.dividend IS NOT NULL AND p.dividend IS DISTINCT FROM EXCLUDED.dividend)
    """
    await _copy_upsert(session, table="daily_price", columns=PRICE_COLUMNS, records=records, upsert_sql=sql)


async def upsert_rates(session: AsyncSession, rows: Iterable[RateObservation], *, source: str) -> int:
    """Upsert rate observations (fractions) on (series_id, observation_date)."""
    unique = {(r.series_id, r.observation_date): (r.series_id, r.observation_date, r.value, source) for r in rows}
    records = list(unique.values())
    sql = f"""
        INSERT INTO {S}.rate_observation AS r (series_id, observation_date, value, source, fetched_at)
        SELECT series_id, observation_date, value, source, now() FROM {{tmp}}
        ON CONFLICT (series_id, observation_date) DO UPDATE SET
            value = EXCLUDED.value, source = EXCLUDED.source, fetched_at = now()
        WHERE (r.value, r.source) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.source)
    """
    await _copy_upsert(
        session,
        table="rate_observation",
        columns=("series_id", "observation_date", "value", "source"),
        records=records,
        upsert_sql=sql,
    )
    return len(records)


async def view_exists(session: AsyncSession, qualified: str) -> bool:
    """True when a relation (e.g. `ingest.api_open_position`) exists."""
    found = (await session.execute(sa.text("SELECT to_regclass(:name) IS NOT NULL"), {"name": qualified})).scalar()
    return bool(found)


async def held_symbols(session: AsyncSession) -> list[str]:
    """Symbols and option underlyings of every open position (empty when ingest is not installed)."""
    if not await view_exists(session, "ingest.api_open_position"):
        return []
    rows = await session.execute(
        sa.text(
            "SELECT symbol FROM ingest.api_open_position "
            "UNION SELECT underlying_symbol FROM ingest.api_open_position WHERE underlying_symbol IS NOT NULL"
        )
    )
    return sorted({str(r[0]).upper() for r in rows if r[0]})


async def factor_proxy_symbols(session: AsyncSession) -> list[str]:
    """ETF proxies of the factor registry; the calculations.md §4.1 list when factors is not installed."""
    if not await view_exists(session, "factors.api_factor_definition"):
        return list(FACTOR_ETFS)
    rows = await session.execute(
        sa.text(
            "SELECT DISTINCT proxy FROM factors.api_factor_definition "
            "WHERE proxy_type = 'etf' AND proxy IS NOT NULL ORDER BY proxy"
        )
    )
    return [str(r[0]).upper() for r in rows]


async def price_counts(session: AsyncSession, symbols: Sequence[str], *, up_to: date) -> dict[str, int]:
    """Stored daily_price rows per symbol on or before `up_to`."""
    if not symbols:
        return {}
    rows = await session.execute(
        sa.text(
            f"SELECT symbol, count(*) FROM {S}.daily_price WHERE symbol = ANY(:symbols) AND price_date <= :up_to "
            "GROUP BY symbol"
        ),
        {"symbols": list(symbols), "up_to": up_to},
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def rate_counts(session: AsyncSession, series_ids: Sequence[str], *, up_to: date) -> dict[str, int]:
    """Stored observations per rate series on or before `up_to`."""
    rows = await session.execute(
        sa.text(
            f"SELECT series_id, count(*) FROM {S}.rate_observation "
            "WHERE series_id = ANY(:ids) AND observation_date <= :up_to GROUP BY series_id"
        ),
        {"ids": list(series_ids), "up_to": up_to},
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def existing_securities(session: AsyncSession, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Security rows (symbol → type, status, sector, industry) for the given canonical symbols."""
    if not symbols:
        return {}
    rows = await session.execute(
        sa.text(
            f"SELECT symbol, security_type, enrichment_status, sector, industry FROM {S}.security "
            "WHERE symbol = ANY(:symbols)"
        ),
        {"symbols": list(symbols)},
    )
    return {str(r.symbol): dict(r._mapping) for r in rows}


async def symbols_with_prices(session: AsyncSession, symbols: Sequence[str]) -> set[str]:
    """Those of `symbols` with at least one stored close."""
    if not symbols:
        return set()
    rows = await session.execute(
        sa.text(
            f"SELECT s FROM unnest(CAST(:symbols AS text[])) AS s "
            f"WHERE EXISTS (SELECT 1 FROM {S}.daily_price p WHERE p.symbol = s)"
        ),
        {"symbols": list(symbols)},
    )
    return {str(r[0]) for r in rows}


async def resolve_aliases(session: AsyncSession, spellings: Sequence[str]) -> dict[str, str]:
    """alias → symbol for those of `spellings` that are registered aliases."""
    if not spellings:
        return {}
    rows = await session.execute(
        sa.text(f"SELECT alias, symbol FROM {S}.symbol_alias WHERE alias = ANY(:a)"), {"a": list(spellings)}
    )
    return {str(r.alias): str(r.symbol) for r in rows}


async def record_provider_outcome(session: AsyncSession, name: str, *, ok: bool, error: str | None = None) -> None:
    """Provider health bookkeeping in data_provider (no-op when the provider has no row)."""
    if ok:
        sql = (
            f"UPDATE {S}.data_provider SET last_success_at = now(), consecutive_failures = 0, updated_at = now() "
            "WHERE name = :name"
        )
        await session.execute(sa.text(sql), {"name": name})
    else:
        sql = (
            f"UPDATE {S}.data_provider SET last_failure_at = now(), last_error = :error, "
            "consecutive_failures = consecutive_failures + 1, updated_at = now() WHERE name = :name"
        )
        await session.execute(sa.text(sql), {"name": name, "error": (error or "")[:1000]})


async def provider_limits(db: Database, name: str) -> dict[str, Any] | None:
    """rate_limit_per_minute, timeout_seconds and max_retries of a provider row."""
    async with db.session() as session:
        row = (
            await session.execute(
                sa.text(
                    f"SELECT rate_limit_per_minute, timeout_seconds, max_retries FROM {S}.data_provider "
                    "WHERE name = :name"
                ),
                {"name": name},
            )
        ).first()
    return dict(row._mapping) if row else None


async def refresh_dividend_yields(session: AsyncSession, symbols: Sequence[str]) -> None:
    """dividend_yield = cash dividends going ex in the year up to the last close ÷ that close.

    Only for symbols that have dividend rows stored (a file import or a provider that reports them).
    """
    if not symbols:
        return
    await session.execute(
        sa.text(
            f"""
            WITH last AS (
                SELECT DISTINCT ON (symbol) symbol, price_date, close
                FROM {S}.daily_price WHERE symbol = ANY(:symbols)
                ORDER BY symbol, price_date DESC
            ), div AS (
                SELECT l.symbol, l.close, sum(p.dividend) AS paid, count(p.dividend) AS n
                FROM last l JOIN {S}.daily_price p
                  ON p.symbol = l.symbol AND p.price_date > l.price_date - 365 AND p.price_date <= l.price_date
                GROUP BY l.symbol, l.close
            ), ever AS (
                SELECT DISTINCT symbol FROM {S}.daily_price
                WHERE symbol = ANY(:symbols) AND dividend IS NOT NULL
            )
            UPDATE {S}.security s
            SET dividend_yield = COALESCE(d.paid, 0) / d.close, updated_at = now()
            FROM div d JOIN ever e ON e.symbol = d.symbol
            WHERE s.symbol = d.symbol AND s.security_type <> 'option'
            """
        ),
        {"symbols": list(symbols)},
    )


# ---------------------------------------------------------------- reads for the API (raw pool)


async def resolve_symbol(db: Database, raw: str, canonical: str) -> str | None:
    """The stored symbol for a user spelling: the canonical symbol itself or a registered alias."""
    row = await db.fetchrow(
        f"""
        SELECT symbol FROM {S}.security WHERE symbol = $2
        UNION ALL
        SELECT symbol FROM {S}.symbol_alias WHERE alias = ANY(ARRAY[$1, $2]::text[])
        LIMIT 1
        """,
        raw,
        canonical,
    )
    return None if row is None else str(row["symbol"])


async def security_row(db: Database, symbol: str) -> asyncpg.Record | None:
    """One security row with its aliases."""
    return await db.fetchrow(
        f"""
        SELECT s.*, COALESCE((SELECT array_agg(alias ORDER BY alias) FROM {S}.symbol_alias a
                              WHERE a.symbol = s.symbol), ARRAY[]::varchar[]) AS aliases
        FROM {S}.security s WHERE s.symbol = $1
        """,
        symbol,
    )


async def latest_price_date(db: Database, symbol: str) -> date | None:
    """The most recent stored price date of `symbol`."""
    row = await db.fetchrow(f"SELECT max(price_date) AS d FROM {S}.daily_price WHERE symbol = $1", symbol)
    return None if row is None else row["d"]


async def price_points(db: Database, symbol: str, start: date, end: date) -> list[asyncpg.Record]:
    """Stored bars of `symbol` in [start, end], ascending."""
    return await db.fetch(
        f"""
        SELECT price_date, open, high, low, close, adj_close, volume, implied_volatility, source
        FROM {S}.daily_price WHERE symbol = $1 AND price_date BETWEEN $2 AND $3
        ORDER BY price_date
        """,
        symbol,
        start,
        end,
    )


async def data_source(db: Database, as_of: date | None) -> str | None:
    """`fixture` when SPY's close on `as_of` (else its latest close before) came from the fixture, else `live`."""
    if as_of is None:
        return None
    row = await db.fetchrow(
        f"""
        SELECT source FROM {S}.daily_price WHERE symbol = 'SPY' AND price_date <= $1
        ORDER BY price_date DESC LIMIT 1
        """,
        as_of,
    )
    if row is None:
        return "live"
    return "fixture" if row["source"] == "fixture" else "live"
