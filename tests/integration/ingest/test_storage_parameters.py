"""Storage parameters the daily valuation relies on for in-page (HOT) updates (migrations 0003, 0006, 0007)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic import command
from tests.conftest import make_migrated_database, worker_suffix

from common.db import Database
from common.migrations import alembic_config, upgrade
from common.testing import drop_database

pytestmark = pytest.mark.integration


async def _fillfactors(url: str) -> dict[str, set[str]]:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            rows = await session.execute(
                sa.text(
                    "SELECT c.relname, c.reloptions FROM pg_class c "
                    "WHERE c.relnamespace = 'ingest'::regnamespace AND c.relname IN ('position', 'position_valuation')"
                )
            )
            return {r.relname: set(r.reloptions or ()) for r in rows}
    finally:
        await db.close()


async def test_valued_tables_leave_room_for_same_page_updates(migrated_db_url: str) -> None:
    assert await _fillfactors(migrated_db_url) == {
        "position": {"fillfactor=35"},
        "position_valuation": {"fillfactor=70"},
    }


@pytest.fixture
async def ingest_only_db(pg_admin_url: str) -> AsyncIterator[str]:
    """A database with only the ingest schema (its migrations alone go down and up again)."""
    name = f"sigmasight_ingest_ff_{worker_suffix()}"
    yield await make_migrated_database(pg_admin_url, name, ("ingest",))
    await drop_database(pg_admin_url, name)


async def test_position_fillfactor_migration_downgrades_and_upgrades(ingest_only_db: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config("ingest", ingest_only_db), "ingest_0006")
    assert (await _fillfactors(ingest_only_db))["position"] == {"fillfactor=50"}
    await asyncio.to_thread(upgrade, "ingest", ingest_only_db)
    assert (await _fillfactors(ingest_only_db))["position"] == {"fillfactor=35"}
