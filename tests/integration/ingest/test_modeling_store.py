"""Migration 0004 and the session repository: tables match `ingest.modeling.tables`, the published views keep
their contract (the trade export reads them), rows round-trip, expiry, removal and demo-reset deletion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from tests.conftest import make_migrated_database, worker_suffix

from common.auth import Principal
from common.db import Database
from common.testing import drop_database
from ingest.modeling import store
from ingest.modeling.book import BookedTrade, Instrument
from ingest.models import metadata

pytestmark = pytest.mark.integration
D = Decimal
TABLES = {"modeling_session", "modeling_trade"}
CONTRACT = {
    "api_modeling_session": [
        ("id", "uuid"),
        ("portfolio_id", "uuid"),
        ("user_id", "uuid"),
        ("name", "text"),
        ("status", "text"),
        ("created_at", "timestamp with time zone"),
        ("updated_at", "timestamp with time zone"),
    ],
    "api_modeling_trade": [
        ("id", "uuid"),
        ("session_id", "uuid"),
        ("trade_no", "integer"),
        ("symbol", "text"),
        ("underlying_symbol", "text"),
        ("security_type", "text"),
        ("option_type", "text"),
        ("strike", "numeric"),
        ("expiry_date", "date"),
        ("side", "text"),
        ("quantity", "numeric"),
        ("price", "numeric"),
        ("open_close", "text"),
        ("tag", "text"),
        ("created_at", "timestamp with time zone"),
    ],
}
QQQ = Instrument("QQQ", "stock", "QQQ")
NFLX = Instrument("NFLX", "stock", "NFLX")
PUT = Instrument("SPY271217P00500000", "option", "SPY", 100, "P", D(500), date(2027, 12, 17))


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_modeling_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("marketdata", "ingest"))
    database = Database(url, pool_size=2)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    """One transaction per test, rolled back."""
    async with db.sessionmaker() as s:
        await s.begin()
        yield s
        await s.rollback()


async def _portfolio(s: AsyncSession, user: uuid.UUID) -> uuid.UUID:
    pid = (
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (user_id, name, status, cash_balance) "
                "VALUES (:u, :n, 'active', 1000) RETURNING id"
            ),
            {"u": user, "n": f"P {uuid.uuid4().hex[:6]}"},
        )
    ).scalar_one()
    await s.execute(
        sa.text(
            "INSERT INTO ingest.position (portfolio_id, symbol, instrument_type, position_type, quantity, multiplier, "
            "underlying_symbol, entry_price, entry_date, source, last_price, market_value, dollar_exposure, notional) "
            "VALUES (:p, 'NFLX', 'stock', 'SHORT', -600, 1, 'NFLX', 490, '2024-01-25', 'seed', 490, "
            "-294000, -294000, 294000)"
        ),
        {"p": pid},
    )
    return pid


async def _session(s: AsyncSession, user: uuid.UUID) -> dict[str, Any]:
    pid = await _portfolio(s, user)
    return await store.insert_session(
        s,
        user_id=user,
        portfolio_id=pid,
        name="Hedge the beta",
        base_as_of_date=date(2026, 11, 24),
        base_cash_balance=D(1000),
        base_positions=await store.base_positions(s, pid),
    )


def _trade(instrument: Instrument, side: str, quantity: int, before: int, after: int, **kw: Any) -> BookedTrade:
    return BookedTrade(instrument, side, D(quantity), D(420), "last_close", D(before), D(after), **kw)


async def test_tables_match_the_models_and_views_keep_the_contract(db: Database) -> None:
    async with db.connect() as conn:

        def diff(sync_conn: Any) -> list[Any]:
            ctx = MigrationContext.configure(sync_conn, opts={"include_schemas": True, "compare_type": True})
            return [
                d
                for d in compare_metadata(ctx, metadata)
                if getattr(getattr(d[1], "table", d[1]), "name", None) in TABLES
            ]

        assert await conn.run_sync(diff) == []
    for view, columns in CONTRACT.items():
        rows = await db.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'ingest' "
            "AND table_name = $1 ORDER BY ordinal_position",
            view,
        )
        assert [(r["column_name"], r["data_type"]) for r in rows] == columns, view


async def test_base_positions_round_trip_with_their_valuation(session: AsyncSession) -> None:
    row = await _session(session, uuid.uuid4())
    (nflx,) = [store.base_from_json(p) for p in row["base_positions"]]
    assert (nflx.instrument, nflx.quantity, nflx.market_value, nflx.notional) == (NFLX, -600, -294000, 294000)
    assert row["status"] == "active" and row["expires_at"] > row["created_at"]


async def test_export_view_uses_order_ticket_sides_and_renumbers_after_a_removal(session: AsyncSession) -> None:
    row = await _session(session, uuid.uuid4())
    sid = row["id"]
    trades = [
        _trade(QQQ, "short", 595, 0, -595, tags=("Index Hedge",)),
        _trade(NFLX, "cover", 300, -600, -300, action="reduce"),
        _trade(PUT, "short", 2, 0, -2),
        _trade(PUT, "cover", 1, -2, -1),
        _trade(PUT, "buy", 3, -1, 2),
    ]
    rows = await store.insert_trades(session, sid, 1, trades)
    assert [store.trade_from_row(r).instrument for r in rows] == [t.instrument for t in trades]
    view = "SELECT * FROM ingest.api_modeling_trade WHERE session_id = :s ORDER BY trade_no"
    got = (await session.execute(sa.text(view), {"s": sid})).mappings().all()
    assert [(r["trade_no"], r["side"], r["open_close"], r["security_type"]) for r in got] == [
        (1, "SELL_SHORT", "O", "CS"),
        (2, "BUY_TO_COVER", "C", "CS"),
        (3, "SELL", "O", "OPT"),
        (4, "BUY", "C", "OPT"),
        (5, "BUY", "O", "OPT"),
    ]
    assert got[0]["tag"] == "Index Hedge" and got[1]["tag"] is None and got[0]["quantity"] == 595
    assert (got[2]["option_type"], got[2]["strike"], got[2]["expiry_date"]) == ("put", 500, date(2027, 12, 17))
    assert await store.delete_trade(session, sid, rows[0]["id"])
    got = (await session.execute(sa.text(view), {"s": sid})).mappings().all()
    assert [(r["trade_no"], r["symbol"]) for r in got][:2] == [(1, "NFLX"), (2, PUT.symbol)]


async def test_expiry_is_visible_at_once_and_applied_by_the_sweep(session: AsyncSession) -> None:
    user = uuid.uuid4()
    row = await _session(session, user)
    await session.execute(
        sa.text("UPDATE ingest.modeling_session SET expires_at = now() - interval '1 minute' WHERE id = :s"),
        {"s": row["id"]},
    )
    status = "SELECT status FROM ingest.api_modeling_session WHERE id = :s"
    assert (await session.execute(sa.text(status), {"s": row["id"]})).scalar_one() == "expired"
    assert await store.active_count(session, user) == 1
    assert await store.expire_due(session, user_id=user) == 1
    assert await store.active_count(session, user) == 0
    principal = Principal(user, "u@example.com", "user")
    assert (await store.get_session(session, principal, row["id"]))["status"] == "expired"  # type: ignore[index]
    assert await store.get_session(session, Principal(uuid.uuid4(), "x@example.com", "user"), row["id"]) is None


async def test_demo_reset_deletes_a_users_sessions_and_their_trades(session: AsyncSession) -> None:
    user = uuid.uuid4()
    row = await _session(session, user)
    await store.insert_trades(session, row["id"], 1, [_trade(QQQ, "short", 1, 0, -1)])
    assert await store.delete_for_user(session, user) == 1
    left = await session.execute(
        sa.text("SELECT count(*) FROM ingest.modeling_trade WHERE session_id = :s"), {"s": row["id"]}
    )
    assert left.scalar_one() == 0


async def test_a_trade_must_have_a_positive_quantity(session: AsyncSession) -> None:
    row = await _session(session, uuid.uuid4())
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await store.insert_trades(session, row["id"], 1, [_trade(QQQ, "short", 0, 0, 0)])


async def test_session_list_filters_by_portfolio_and_status_and_counts_trades(session: AsyncSession) -> None:
    user = uuid.uuid4()
    first, second = await _session(session, user), await _session(session, user)
    # One transaction gives both the same now(): make `first` the older one, as separate requests would.
    await session.execute(
        sa.text("UPDATE ingest.modeling_session SET created_at = created_at - interval '1 minute' WHERE id = :id"),
        {"id": first["id"]},
    )
    await store.insert_trades(session, first["id"], 1, [_trade(QQQ, "short", 1, 0, -1), _trade(QQQ, "cover", 1, -1, 0)])
    await store.update_session(session, second["id"], status="cancelled", expires_at=None)
    rows, total = await store.list_sessions(session, user_id=user, portfolio_id=None, statuses=[], limit=50, offset=0)
    assert total == 2 and [r["id"] for r in rows] == [second["id"], first["id"]]
    assert "base_positions" not in rows[0] and rows[1]["trade_count"] == 2
    active, n = await store.list_sessions(
        session, user_id=user, portfolio_id=first["portfolio_id"], statuses=["active"], limit=1, offset=0
    )
    assert n == 1 and [r["id"] for r in active] == [first["id"]]
    none, zero = await store.list_sessions(
        session, user_id=uuid.uuid4(), portfolio_id=None, statuses=[], limit=50, offset=0
    )
    assert (none, zero) == ([], 0)
