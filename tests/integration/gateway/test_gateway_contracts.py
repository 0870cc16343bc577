"""The gateway's reads of ingest's published views work against ingest's real migrations."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from tests.conftest import make_migrated_database, worker_suffix

from common.db import Database
from common.testing import drop_database
from gateway import repository

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def real_views_db(pg_admin_url: str) -> AsyncIterator[Database]:
    if importlib.util.find_spec("ingest.migrations") is None:
        pytest.skip("the ingest schema has no migrations yet")
    name = f"sigmasight_gwcontract_{worker_suffix()}"
    url = await make_migrated_database(pg_admin_url, name, services=("gateway", "marketdata", "ingest"))
    db = Database(url, pool_size=2)
    yield db
    await db.close()
    await drop_database(pg_admin_url, name)


async def test_portfolio_queries_match_the_ingest_view_contract(real_views_db: Database) -> None:
    user_id = uuid.uuid4()
    pool = await real_views_db.pool()
    pid = await pool.fetchval(
        "INSERT INTO ingest.portfolio (user_id, name, status, is_default, cash_balance) "
        "VALUES ($1, 'Main', 'active', true, 100.50) RETURNING id",
        user_id,
    )
    async with real_views_db.session() as session:
        plain = await repository.user_portfolios(session, user_id=user_id)
        valued = await repository.user_portfolios(session, user_id=user_id, valuation=True)
    assert [(p["id"], p["name"], p["is_default"], p["status"]) for p in plain] == [(pid, "Main", True, "active")]
    assert valued[0]["equity"] == Decimal("100.50")  # cash only: no positions yet
    assert valued[0]["valuation_date"] is None
