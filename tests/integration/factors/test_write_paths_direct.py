"""The factors writes that skip staging tables and scans store what the former paths stored.

* `repository.replace_exposures` COPYs position rows straight into position_factor_exposure, the
  exposure as the numeric(20, 2) that the former float8 staging column's cast gave
  (`pg_numeric.float8_numeric_cents`): same rows as the former INSERT … SELECT, on money with
  half-cent ties, non-cent values, ±0, NaN and amounts beyond 1e13.
* `float8_numeric_cents` gives the cents of PostgreSQL's own float8 → numeric(20, 2) cast.
* `repository.insert_new_regressions` stores the rows the former upsert stored for new keys.
* `common.db.parent_key_probes`: a child insert's foreign-key check stays a primary-key
  probe after the parent table grew, where the plan cached at a one-page parent scans it per row.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import numpy as np
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix
from tests.integration.factors.test_binary_copy_equivalence import OLD_INSERT_POSITIONS

from common.db import Database, parent_key_probes
from common.formatting import nan_as_null
from factors import repository as repo
from factors.pg_numeric import float8_numeric_cents

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 24)
NAN = math.nan
FIDS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"direct-f{n}") for n in range(3)]
RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "direct-run")
MONEY = [1.005, -2.675, 0.125, -0.125, 0.0, -0.0, 12345.675, -0.005, 0.015, 99_999_999_999.995, 1e13 + 0.005,
         -123456789012345.67, 7e15, 1e-9, 0.004999999999, NAN, 3440216.73]  # fmt: skip


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_direct_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    database = Database(url, pool_size=2)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


async def rows_after(db: Database, write: Callable[[Any], Awaitable[None]], table: str, drop: str = "") -> list[str]:
    """Every row of `table` as text (created_at and `drop` left out) after `write`, rolled back
    (foreign keys off: nothing is seeded)."""
    async with db.session() as s:
        conn = await repo.raw_connection(s)
        await conn.execute("SET LOCAL session_replication_role = replica")
        await write(s)
        rows = await conn.fetch(f"SELECT to_jsonb(t) - 'created_at' - '{drop}' AS r FROM factors.{table} t ORDER BY 1")
        await s.rollback()
    return [r["r"] for r in rows]


def positions() -> repo.PositionExposureColumns:
    rng = np.random.default_rng(7)
    raw = [*MONEY, *rng.normal(0, 1e6, 40).tolist(), *np.round(rng.normal(0, 1e6, 40), 2).tolist()]
    n, k = len(raw), len(FIDS)
    flat = rng.normal(0, 2, n * k)
    flat[::7] = NAN
    return repo.PositionExposureColumns(
        factor_id=FIDS,
        position_id=[uuid.uuid5(uuid.NAMESPACE_DNS, f"direct-pos{i}") for i in range(n)],
        portfolio_id=[uuid.uuid5(uuid.NAMESPACE_DNS, f"direct-p{i % 3}") for i in range(n)],
        symbol=[f"S{i}ü" if i % 3 else "" for i in range(n)],
        underlying_symbol=[f"U{i}" for i in range(n)],
        exposure=raw,
        beta_source=["regression" if i % 2 else "default" for i in range(n)],
        quality_flag=[None if i % 5 == 0 else "full_history" for i in range(n)],
        beta=flat.tolist(),
        exposure_dollar=(flat * 3).tolist(),
        run_id=RUN,
    )


async def test_position_rows_copied_directly_match_the_former_staged_insert(db: Database) -> None:
    p = positions()

    async def old(s: Any) -> None:
        conn = await repo.raw_connection(s)
        await conn.execute(
            OLD_INSERT_POSITIONS, DAY, p.run_id, p.factor_id, p.position_id, p.portfolio_id, p.symbol,
            p.underlying_symbol, p.exposure, p.beta_source, p.quality_flag, nan_as_null(p.beta),
            nan_as_null(p.exposure_dollar),
        )  # fmt: skip

    async def new(s: Any) -> None:
        await repo.replace_exposures(s, portfolio_ids=[], as_of=DAY, positions=p, portfolios=None)

    expected = await rows_after(db, old, "position_factor_exposure")
    assert len(expected) == len(p.position_id)
    assert await rows_after(db, new, "position_factor_exposure") == expected


async def test_float8_numeric_cents_are_the_cents_of_the_servers_cast(db: Database) -> None:
    rng = np.random.default_rng(3)
    raw = np.concatenate([rng.normal(0, 1e5, 3000), rng.normal(0, 1e12, 500), np.array(MONEY)])
    values = np.concatenate([raw, np.round(raw, 2)])
    cents, nulls = float8_numeric_cents(values)
    async with db.session() as s:
        conn = await repo.raw_connection(s)
        rows = await conn.fetch(
            "SELECT (NULLIF(v, 'NaN')::numeric(20, 2) * 100)::int8 AS c, v = 'NaN' AS nan "
            "FROM unnest($1::float8[]) WITH ORDINALITY AS u(v, i) ORDER BY i",
            values.tolist(),
        )
    assert nulls.tolist() == [r["nan"] for r in rows]
    assert [None if n else int(c) for c, n in zip(cents, nulls, strict=True)] == [
        None if r["nan"] else r["c"] for r in rows
    ]


def test_float8_numeric_cents_rejects_infinity() -> None:
    with pytest.raises(ValueError):
        float8_numeric_cents(np.array([1.0, math.inf]))


async def test_new_regressions_inserted_directly_match_the_former_upsert(db: Database) -> None:
    matrix_id = uuid.uuid4()
    regressions = [
        (f"R{i}", DAY, matrix_id, DAY, DAY, 60 + i, "full_history", "regression", 0.001 * i, None, 0.2, 0.5,
         3.0, ["flag"] if i % 2 else [], "factors-1.0.0", RUN if i % 2 else None)
        for i in range(5)
    ]  # fmt: skip
    betas = [(f"R{i}", DAY, f, 1.0 + i, 0.1, None, 0.05, 0.4, 0.39, 1.2) for i in range(5) for f in FIDS]

    async def old(s: Any) -> None:
        await repo.upsert_regressions(s, regressions=regressions, betas=betas)

    async def new(s: Any) -> None:
        await repo.insert_new_regressions(s, regressions=regressions, betas=betas)

    for table in ("underlying_regression", "underlying_factor_beta"):
        expected = await rows_after(db, old, table)
        assert len(expected) == (5 if table == "underlying_regression" else 15)
        assert await rows_after(db, new, table) == expected


_CALCULATION = """
INSERT INTO factors.correlation_calculation (id, portfolio_id, calculation_date, data_quality, nodes_included,
                                             nodes_excluded, inputs_hash, gross_exposure, engine_version)
SELECT gen_random_uuid(), gen_random_uuid(), $1, 'sufficient', 1, 0, '\\x00', 0, 'test' FROM generate_series(1, $2)
RETURNING id
"""
_NODES = """
INSERT INTO factors.correlation_node (calculation_id, symbol, position_ids, position_types, exposure, included)
SELECT c, 'S' || n, '{}', '{}', 0, true FROM unnest($1::uuid[]) AS c, generate_series(1, $2) AS n
"""


async def parent_rows_read(url: str, probes: bool) -> int:
    """Parent rows read sequentially by the foreign-key checks of 200 × 10 nodes, in a fresh backend
    whose check plan is first made (and cached) while the analysed parent table holds 3 rows."""
    database = Database(url, pool_size=1)
    try:
        async with database.session() as s:
            conn = await repo.raw_connection(s)
            await conn.execute("ANALYZE factors.correlation_calculation")  # 3 rows, one page
            first = [r["id"] for r in await conn.fetch(_CALCULATION, DAY, 3)]

            async def nodes(ids: list[uuid.UUID]) -> None:
                if probes:
                    async with parent_key_probes(conn):
                        await conn.execute(_NODES, ids, 10)
                else:
                    await conn.execute(_NODES, ids, 10)

            await nodes(first)  # 30 checks: the plan is cached now
            await nodes([r["id"] for r in await conn.fetch(_CALCULATION, DAY, 200)])
            read: int = await conn.fetchval(
                "SELECT seq_tup_read FROM pg_stat_xact_user_tables "
                "WHERE schemaname = 'factors' AND relname = 'correlation_calculation'"
            )
            assert await conn.fetchval("SELECT current_setting('enable_seqscan')") == "on"
            await s.rollback()
        return read
    finally:
        await database.close()


async def test_child_foreign_key_checks_probe_the_parent_key(pg_admin_url: str) -> None:
    name = f"sigmasight_fkprobe_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    try:
        seed = Database(url, pool_size=1)
        try:
            async with seed.session() as s:
                await (await repo.raw_connection(s)).fetch(_CALCULATION, date(2026, 11, 23), 3)
                await s.commit()
        finally:
            await seed.close()
        scanned = await parent_rows_read(url, probes=False)
        probed = await parent_rows_read(url, probes=True)
    finally:
        await drop_database(pg_admin_url, name)
    assert scanned > 100_000  # the cached scan reads the grown table once per node (2,000 × ~200 rows)
    assert probed < 1_000
