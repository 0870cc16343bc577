"""Each service's database connections carry its name (pg_stat_activity.application_name) and run
without parallel query workers unless configured (common.db)."""

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


def test_parallel_workers_are_sent_only_when_given() -> None:
    assert server_settings("postgresql://u@h/db", None, parallel_workers_per_gather=0) == {
        "max_parallel_workers_per_gather": "0"
    }
    assert server_settings("postgresql://u@h/db", "s", parallel_workers_per_gather=2) == {
        "application_name": "s",
        "max_parallel_workers_per_gather": "2",
    }


async def test_sessions_run_without_parallel_workers_unless_configured(scratch_database: str) -> None:
    show = "SELECT current_setting('max_parallel_workers_per_gather')"
    default = Database(scratch_database, pool_size=1)
    configured = Database(scratch_database, pool_size=1, parallel_workers_per_gather=3)
    server = Database(scratch_database, pool_size=1, parallel_workers_per_gather=None)
    try:
        async with default.session() as session:
            assert (await session.execute(sa.text(show))).scalar_one() == "0"
        assert (await default.fetchrow(show))[0] == "0"  # type: ignore[index]
        assert (await configured.fetchrow(show))[0] == "3"  # type: ignore[index]
        async with server.session() as session:
            server_default = (
                await session.execute(
                    sa.text("SELECT reset_val FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'")
                )
            ).scalar_one()
            assert (await session.execute(sa.text(show))).scalar_one() == server_default
    finally:
        for db in (default, configured, server):
            await db.close()
