"""Storage parameters the daily valuation relies on for in-page (HOT) updates (migrations 0003, 0006)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from common.db import Database

pytestmark = pytest.mark.integration


async def test_valued_tables_leave_room_for_same_page_updates(migrated_db_url: str) -> None:
    db = Database(migrated_db_url, pool_size=1)
    try:
        async with db.session() as session:
            rows = await session.execute(
                sa.text(
                    "SELECT c.relname, c.reloptions FROM pg_class c "
                    "WHERE c.relnamespace = 'ingest'::regnamespace AND c.relname IN ('position', 'position_valuation')"
                )
            )
            options = {r.relname: set(r.reloptions or ()) for r in rows}
    finally:
        await db.close()
    assert options == {"position": {"fillfactor=50"}, "position_valuation": {"fillfactor=70"}}
