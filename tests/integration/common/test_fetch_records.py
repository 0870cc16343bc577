"""`common.db.fetch_records`: named parameters, the session's own transaction, Records out."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from common.db import Database, fetch_records

pytestmark = pytest.mark.integration


async def test_named_parameters_reach_the_right_places_and_rows_come_back_as_records(scratch_database: str) -> None:
    db = Database(scratch_database, pool_size=1)
    ids = [uuid.uuid4(), uuid.uuid4()]
    try:
        async with db.session() as session:
            rows = await fetch_records(
                session,
                "SELECT u.id, u.n * :k AS scaled, CAST(:k AS int8) AS k, CAST(:label AS text) || '/' || u.n AS label "
                "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS u(id, n) ORDER BY u.n",
                {"ids": ids, "k": 10, "label": "x"},
            )
        assert [tuple(r.values()) for r in rows] == [(ids[0], 10, 10, "x/1"), (ids[1], 20, 10, "x/2")]
        assert list(rows[0].keys()) == ["id", "scaled", "k", "label"]
    finally:
        await db.close()


async def test_it_reads_inside_the_sessions_open_transaction(scratch_database: str) -> None:
    db = Database(scratch_database, pool_size=1)
    try:
        async with db.transaction() as session:
            await session.execute(sa.text("CREATE TABLE t (v int)"))
            await session.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
            rows = await fetch_records(session, "SELECT sum(v) AS total FROM t WHERE v >= :lo", {"lo": 1})
            assert rows[0]["total"] == 3  # the uncommitted rows: same connection, same transaction
            await session.rollback()
        async with db.session() as session:
            assert (await session.execute(sa.text("SELECT to_regclass('t') IS NULL"))).scalar_one()
    finally:
        await db.close()
