"""Migration 0001: tables match `ingest.models`, constraints hold, published views have the contract columns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from tests.conftest import make_migrated_database

from common.db import asyncpg_dsn, sqlalchemy_url
from common.testing import drop_database
from ingest.models import metadata

pytestmark = pytest.mark.integration
MODEL_DIFF: list[Any] = []
BOOK_TABLES = {"portfolio", "position", "position_valuation", "tag", "position_tag"}

CONTRACT_VIEWS = {
    "api_portfolio": "id, user_id, name, description, status, currency, cash_balance, is_default, is_demo_seed, "
    "equity, valued_at, created_at, updated_at",
    "api_position": "id, portfolio_id, user_id, symbol, instrument_type, position_type, quantity, multiplier, "
    "underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, cost_basis, status, "
    "closed_at, exit_price, exit_date, realized_pnl, last_price, price_date, price_source, underlying_price, "
    "market_value, dollar_exposure, notional, unrealized_pnl, daily_pnl, valued_at, created_at",
    "api_position_valuation": "position_id, valuation_date, portfolio_id, symbol, underlying_symbol, instrument_type, "
    "position_type, quantity, multiplier, last_price, underlying_price, price_date, price_source, market_value, "
    "dollar_exposure, notional, unrealized_pnl, daily_pnl, run_id",
    "api_position_tag": "position_id, tag_id, name, tag_type",
}


@pytest.fixture(scope="module")
async def conn(pg_admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    name = f"sigmasight_ingest_schema_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("ingest",))
    engine = create_async_engine(sqlalchemy_url(url))

    def diff(sync_conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(sync_conn, opts={"include_schemas": True, "compare_type": True})
        # position_upload_fk belongs to migration 0002 (upload part), not to these models.
        return [
            d
            for d in compare_metadata(ctx, metadata)
            if _table_of(d) in BOOK_TABLES and getattr(d[1], "name", None) != "position_upload_fk"
        ]

    async with engine.connect() as sa_conn:
        conn_diff = await sa_conn.run_sync(diff)
    await engine.dispose()
    c = await asyncpg.connect(asyncpg_dsn(url))
    MODEL_DIFF[:] = conn_diff
    yield c
    await c.close()
    await drop_database(pg_admin_url, name)


def _table_of(diff: Any) -> str | None:
    obj = diff[1] if isinstance(diff, tuple) and len(diff) > 1 else None
    table = getattr(obj, "table", obj)
    return getattr(table, "name", None)


async def _portfolio(c: asyncpg.Connection, user: uuid.UUID | None = None, name: str = "P") -> uuid.UUID:
    return await c.fetchval(
        "INSERT INTO ingest.portfolio (user_id, name, status) VALUES ($1, $2, 'active') RETURNING id",
        user or uuid.uuid4(),
        name,
    )


STOCK = (
    "INSERT INTO ingest.position (portfolio_id, symbol, instrument_type, position_type, quantity, multiplier, "
    "underlying_symbol, entry_price, entry_date, source) "
    "VALUES ($1, $2, 'stock', $3, $4, 1, $2, $5, '2024-01-02', 'seed') RETURNING id, cost_basis"
)
OPTION = (
    "INSERT INTO ingest.position (portfolio_id, symbol, instrument_type, position_type, quantity, multiplier, "
    "underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, source) "
    "VALUES ($1, 'AAPL270820P00200000', 'option', $2, $3, $4, 'AAPL', $5, 200, '2027-08-20', 4.5, $6, 'seed') "
    "RETURNING id"
)


async def test_tables_match_the_core_models(conn: asyncpg.Connection) -> None:
    assert MODEL_DIFF == []


async def test_published_views_expose_the_contract_columns(conn: asyncpg.Connection) -> None:
    for view, columns in CONTRACT_VIEWS.items():
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ingest' AND table_name = $1 "
            "ORDER BY ordinal_position",
            view,
        )
        assert [r["column_name"] for r in rows] == [c.strip() for c in columns.split(",")], view
    open_cols = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ingest' "
        "AND table_name = 'api_open_position' ORDER BY ordinal_position"
    )
    assert [r["column_name"] for r in open_cols] == [c.strip() for c in CONTRACT_VIEWS["api_position"].split(",")]


async def test_cost_basis_is_generated_and_rounded_half_even(conn: asyncpg.Connection) -> None:
    pid = await _portfolio(conn)
    row = await conn.fetchrow(STOCK, pid, "GLD", "LONG", Decimal("325"), Decimal("219.23"))
    assert row["cost_basis"] == Decimal("71249.75")
    tie = await conn.fetchrow(STOCK, pid, "TIE", "LONG", Decimal("1"), Decimal("10.0150"))
    assert tie["cost_basis"] == Decimal("10.02")
    tie2 = await conn.fetchrow(STOCK, pid, "TIE2", "SHORT", Decimal("-1"), Decimal("10.0250"))
    assert tie2["cost_basis"] == Decimal("-10.02")


@pytest.mark.parametrize(
    ("position_type", "quantity", "multiplier", "option_type", "entry"),
    [
        ("SP", Decimal("100"), 100, "P", "2024-01-20"),  # direction: SP needs quantity < 0
        ("LC", Decimal("100"), 100, "P", "2024-01-20"),  # LC must be a call
        ("LP", Decimal("1.5"), 100, "P", "2024-01-20"),  # whole contracts
        ("LP", Decimal("1"), 1, "P", "2024-01-20"),  # options have multiplier 100
        ("LP", Decimal("1"), 100, "P", "2028-01-20"),  # entry after expiry
    ],
)
async def test_option_constraints_reject_inconsistent_rows(
    conn: asyncpg.Connection, position_type: str, quantity: Decimal, multiplier: int, option_type: str, entry: str
) -> None:
    from datetime import date

    pid = await _portfolio(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.fetchrow(OPTION, pid, position_type, quantity, multiplier, option_type, date.fromisoformat(entry))


async def test_stock_constraints_and_the_open_duplicate_rule(conn: asyncpg.Connection) -> None:
    pid = await _portfolio(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.fetchrow(STOCK, pid, "X", "SHORT", Decimal("5"), Decimal("1"))
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.fetchrow(STOCK, pid, "X", "LONG", Decimal("0"), Decimal("1"))
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.fetchrow(STOCK, pid, "X", "LONG", Decimal("1"), Decimal("0"))
    first = await conn.fetchrow(STOCK, pid, "DUP", "LONG", Decimal("1"), Decimal("1"))
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.fetchrow(STOCK, pid, "DUP", "LONG", Decimal("2"), Decimal("1"))
    await conn.execute("UPDATE ingest.position SET status = 'closed' WHERE id = $1", first["id"])
    assert await conn.fetchrow(STOCK, pid, "DUP", "LONG", Decimal("2"), Decimal("1")) is not None


async def test_portfolio_and_tag_uniqueness_and_name_rules(conn: asyncpg.Connection) -> None:
    user = uuid.uuid4()
    await _portfolio(conn, user, "Main")
    with pytest.raises(asyncpg.UniqueViolationError):
        await _portfolio(conn, user, "MAIN")
    await conn.execute("INSERT INTO ingest.tag (user_id, name) VALUES ($1, 'Core Holdings')", user)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("INSERT INTO ingest.tag (user_id, name) VALUES ($1, 'core holdings')", user)
    for bad in ("bad!", " lead", "two  spaces", "a,b", "x" * 51):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO ingest.tag (user_id, name) VALUES ($1, $2)", user, bad)
    await conn.execute("UPDATE ingest.tag SET deleted_at = now() WHERE user_id = $1", user)
    await conn.execute(
        "INSERT INTO ingest.tag (user_id, name, tag_type) VALUES ($1, 'core holdings', 'strategy')", user
    )
    assert await conn.fetchval("SELECT name_key FROM ingest.tag WHERE user_id = $1 AND deleted_at IS NULL", user) == (
        "core holdings"
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("INSERT INTO ingest.tag (user_id, name, color) VALUES ($1, 'c', 'red')", user)


async def test_api_portfolio_equity_is_cash_plus_open_market_value(conn: asyncpg.Connection) -> None:
    pid = await _portfolio(conn)
    await conn.execute("UPDATE ingest.portfolio SET cash_balance = 100 WHERE id = $1", pid)
    a = await conn.fetchrow(STOCK, pid, "A", "LONG", Decimal("10"), Decimal("5"))
    b = await conn.fetchrow(STOCK, pid, "B", "SHORT", Decimal("-3"), Decimal("5"))
    c = await conn.fetchrow(STOCK, pid, "C", "LONG", Decimal("1"), Decimal("5"))
    await conn.execute("UPDATE ingest.position SET market_value = 60 WHERE id = $1", a["id"])
    await conn.execute("UPDATE ingest.position SET market_value = -15 WHERE id = $1", b["id"])
    await conn.execute("UPDATE ingest.position SET market_value = 1000, status = 'closed' WHERE id = $1", c["id"])
    assert await conn.fetchval("SELECT equity FROM ingest.api_portfolio WHERE id = $1", pid) == Decimal("145.00")
    assert await conn.fetchval("SELECT count(*) FROM ingest.api_open_position WHERE portfolio_id = $1", pid) == 2
