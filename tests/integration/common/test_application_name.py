"""Each service's database connections carry its name (pg_stat_activity.application_name)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from common.db import Database, server_settings

pytestmark = pytest.mark.integration

_MINE = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"


def test_the_name_is_sent_unless_the_url_already_sets_one() -> None:
    assert server_settings("postgresql://u@h/db", "sigmasight-stress") == {"application_name": "sigmasight-stress"}
    assert server_settings("postgresql://u@h/db?application_name=ops", "sigmasight-stress") == {}
    assert server_settings("postgresql://u@h/db", None) == {}
    assert len(server_settings("postgresql://u@h/db", "x" * 100)["application_name"]) == 63


async def test_engine_and_raw_pool_connections_are_named(scratch_database: str) -> None:
    db = Database(scratch_database, pool_size=1, application_name="sigmasight-stress")
    try:
        async with db.session() as session:
            assert (await session.execute(sa.text(_MINE))).scalar_one() == "sigmasight-stress"
        assert (await db.fetchrow(_MINE))[0] == "sigmasight-stress"  # type: ignore[index]
    finally:
        await db.close()
