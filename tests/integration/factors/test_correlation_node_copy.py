"""The batch's column-wise writes and reads of position-correlation nodes match the former per-row ones.

* `nodes_copy_stream` (one binary COPY built a column at a time, money as numeric cents) stores exactly
  the factors.correlation_node rows that the former COPY of `node_rows` records stored, compared as
  PostgreSQL's text of every column, on nodes with half-cent ties, ±0, NaN market values, large money,
  capped observation counts, several positions per node, UTF-8 symbols and tags, no tag and no sector.
* `position_exposures_of` (one row of arrays per portfolio) gives the nodes that the per-portfolio rows
  of `position_exposures` give, on the demo books.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix
from tests.integration.factors.test_factor_pipeline import HF, HNW, IND, T0, Env, db_url, env

from common import pg_binary as pgb
from common.db import Database
from factors import correlation_bulk_store as cbs
from factors import correlation_repository as repo
from factors import repository
from factors.correlation_compute import Nodes, build_nodes
from factors.correlation_rows import NODE_COLUMNS, node_rows

pytestmark = pytest.mark.integration
__all__ = ["db_url", "env"]  # the pipeline tests' fixtures (the demo books, for the read)

NAN = math.nan
MONEY = [1.005, -2.675, 0.125, -0.0, 0.0, 12345.675, -0.005, 99_999_999_999.995, 123456789012.34, 7e15, 1e-9]


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_node_copy_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    database = Database(url, pool_size=2)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


async def rows_after(db: Database, write: Callable[[Any], Awaitable[None]]) -> list[str]:
    """Every correlation_node row (as text) after `write` in a rolled-back transaction (foreign keys
    off: the rows reference no calculation here)."""
    async with db.session() as s:
        conn = await repository.raw_connection(s)
        await conn.execute("SET LOCAL session_replication_role = replica")
        await write(conn)
        rows = await conn.fetch("SELECT to_jsonb(t) AS r FROM factors.correlation_node t ORDER BY 1")
        await s.rollback()
    return [r["r"] for r in rows]


def calculation(seed: int, k: int) -> SimpleNamespace:
    """A computed calculation's node part: what `node_rows` and `node_columns` read."""
    rng = np.random.default_rng(seed)
    included = rng.random(k) < 0.6
    reasons = [
        None if inc else ["below_filter", "insufficient_history", "missing_exposure"][j % 3]
        for j, inc in enumerate(included)
    ]
    exposure = np.array([MONEY[(seed + j) % len(MONEY)] * (1 if j % 2 else -1) for j in range(k)])
    exposure[::5] = rng.normal(0, 1e5, len(exposure[::5]))
    market_value = exposure * rng.uniform(0.5, 1.5, k)
    market_value[::3] = NAN
    positions = [int(rng.integers(1, 4)) for _ in range(k)]
    nodes = Nodes(
        symbols=[f"S{j}é" if j % 4 == 0 else f"SYM{j:02d}" for j in range(k)],
        exposure=exposure,
        market_value=market_value,
        has_exposure=np.ones(k, dtype=bool),
        position_ids=[[uuid.uuid4() for _ in range(n)] for n in positions],
        position_types=[sorted({"LONG", "LC", "SP"})[:n] for n in positions],
        tags=[() if j % 3 else ("tech", "größe") for j in range(k)],
        sectors=[None if j % 4 == 1 else "Énergie" for j in range(k)],
        gross=float(np.abs(exposure).sum()),
    )
    observations = rng.integers(0, 100, k)
    observations[0] = 40_000  # capped at int2
    result = SimpleNamespace(nodes=nodes, observations=observations, included=included, exclusion_reason=reasons)
    return SimpleNamespace(portfolio_id=uuid.uuid4(), result=result)


async def test_node_copy_stores_the_rows_of_the_former_record_copy(db: Database) -> None:
    items = [calculation(seed, k) for seed, k in enumerate([7, 1, 23, 11])]
    cid = {i.portfolio_id: uuid.uuid4() for i in items}

    async def old(conn: Any) -> None:
        records = [(cid[i.portfolio_id], *row) for i in items for row in node_rows(i.result)]
        await conn.copy_records_to_table(
            "correlation_node", schema_name="factors", columns=["calculation_id", *NODE_COLUMNS], records=records
        )

    async def new(conn: Any) -> None:
        stream = cbs.nodes_copy_stream(items, cid)  # type: ignore[arg-type]
        assert stream is not None
        await pgb.copy_binary(
            conn, "correlation_node", schema="factors", columns=["calculation_id", *NODE_COLUMNS], stream=stream
        )

    before, after = await rows_after(db, old), await rows_after(db, new)
    assert len(after) == 42
    assert after == before
    assert cbs.nodes_copy_stream([], {}) is None


async def test_columnar_position_read_gives_the_nodes_of_the_per_portfolio_rows(env: Env) -> None:
    ids = [HF, IND, HNW, uuid.uuid4()]
    async with env.db.transaction() as s:
        columns = await repo.position_exposures_of(s, portfolio_ids=ids, as_of=T0)
        assert set(columns) == {HF, IND, HNW}
        assert any(t for pid in (HF, IND, HNW) for t in columns[pid].tags)  # tags travel as JSON
        for pid in (HF, IND, HNW):
            rows = await repo.position_exposures(s, portfolio_id=pid, as_of=T0)
            got, expected = build_nodes(columns[pid]), build_nodes(rows)
            assert list(columns[pid].position_ids) == [r.position_id for r in rows]
            assert [tuple(t) for t in columns[pid].tags] == [r.tags for r in rows]
            for name in ("symbols", "position_ids", "position_types", "tags", "sectors", "gross"):
                assert getattr(got, name) == getattr(expected, name), name
            for name in ("exposure", "market_value", "has_exposure"):
                assert np.array_equal(getattr(got, name), getattr(expected, name), equal_nan=True), name
