"""The binary-COPY writes store exactly the rows of the former paths (asyncpg-encoded parameters and
COPY records), compared row by row as PostgreSQL's text of every column: the position and portfolio
exposures of `replace_exposures` and the pair arrays of `correlation_bulk_store._insert_pairs`, on
inputs with NaN, ±0, ±inf, extremes, None, non-cent money, UTF-8 and empty strings/flags."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from common.db import Database
from common.formatting import nan_as_null
from factors import correlation_bulk_store as cbs
from factors import repository as repo
from factors.correlation_rows import PairColumns

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 24)
NAN, INF = math.nan, math.inf
PIDS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"bin-eq-p{n}") for n in range(3)]
FIDS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"bin-eq-f{n}") for n in range(3)]
RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "bin-eq-run")

# The former statements, verbatim in effect (the reference of this test).
OLD_INSERT_POSITIONS = """
INSERT INTO factors.position_factor_exposure (position_id, calculation_date, portfolio_id, symbol, underlying_symbol,
                                              exposure, beta_source, quality_flag, factor_ids, betas,
                                              exposure_dollars, run_id)
SELECT p.position_id, $1::date, p.portfolio_id, p.symbol, p.underlying_symbol, NULLIF(p.exposure, 'NaN'::float8),
       p.beta_source, p.quality_flag, $3::uuid[],
       ($11::float8[])[(p.i - 1) * cardinality($3::uuid[]) + 1 : p.i * cardinality($3::uuid[])],
       ($12::float8[])[(p.i - 1) * cardinality($3::uuid[]) + 1 : p.i * cardinality($3::uuid[])],
       $2::uuid
FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::float8[], $9::text[], $10::text[])
     WITH ORDINALITY AS p(position_id, portfolio_id, symbol, underlying_symbol, exposure, beta_source,
                          quality_flag, i)
ORDER BY p.i
"""
OLD_PAIRS = """
INSERT INTO factors.pairwise_correlation (calculation_id, symbols_1, symbols_2, correlations, correlations_dir,
                                          observations, p_values)
SELECT t.cid, ($4::text[])[t.a:t.b], ($5::text[])[t.a:t.b], ($6::float8[])[t.a:t.b], ($7::float8[])[t.a:t.b],
       ($8::int2[])[t.a:t.b], ($9::float8[])[t.a:t.b]
FROM unnest($1::uuid[], $2::int4[], $3::int4[]) AS t(cid, a, b)
"""
ODD = [NAN, -0.0, 0.0, INF, -INF, 1.7976931348623157e308, 5e-324, 1.005, 0.125, -2.675, 123456789012.345]


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_bin_eq_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    database = Database(url, pool_size=2)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


async def rows_after(db: Database, write: Callable[[Any, Any], Awaitable[None]], table: str) -> list[str]:
    """Every row of `table` (as text, created_at left out) after `write` in a rolled-back transaction
    (foreign keys off: the rows reference nothing seeded here)."""
    async with db.session() as s:
        conn = await repo.raw_connection(s)
        await conn.execute("SET LOCAL session_replication_role = replica")
        await write(s, conn)
        rows = await conn.fetch(f"SELECT to_jsonb(t) - 'created_at' AS r FROM factors.{table} t ORDER BY 1")
        await s.rollback()
    return [r["r"] for r in rows]


def positions() -> repo.PositionExposureColumns:
    n, k = 7, len(FIDS)
    flat = [ODD[(i * 5 + j) % len(ODD)] * (1 + j) for i in range(n) for j in range(k)]
    return repo.PositionExposureColumns(
        factor_id=FIDS,
        position_id=[uuid.uuid5(uuid.NAMESPACE_DNS, f"bin-eq-pos{i}") for i in range(n)],
        portfolio_id=[PIDS[i % 2] for i in range(n)],
        symbol=[f"S{i}ü" if i % 3 else "" for i in range(n)],
        underlying_symbol=[f"U{i}" for i in range(n)],
        exposure=[round(v, 2) if math.isfinite(v) and abs(v) < 1e15 else NAN for v in ODD[:n]],
        beta_source=["regression", "default", "regression", "regression", "default", "default", "regression"],
        quality_flag=["full_history"] * n,
        beta=flat,
        exposure_dollar=[v * 3 for v in flat],
        run_id=RUN,
    )


def portfolios() -> list[tuple[Any, ...]]:
    money: list[Any] = [3440216.73, None, -0.0, 1.005, 0.125, 1e12 + 0.01, -2.675]
    out = []
    for p, pid in enumerate(PIDS):
        for j, fid in enumerate(FIDS):
            m = money[(p * 3 + j) % len(money)]
            out.append(
                (pid, DAY, fid, m, ODD[j] if j else None, NAN if p == 1 else 0.5, 5093794.39, m, 20 if j else None,
                 "Q0942ü" if j else None, 1.0, 20, 0, None, "ok", None if j else "why",
                 ["equity_undefined", "cash_unknown"][: (p + j) % 3], '[{"symbol": "X"}]' if p else "[]",
                 "factors-1.0.0", RUN if p else None)
            )  # fmt: skip
    return out


async def old_replace_exposures(s: Any, conn: Any) -> None:
    p = positions()
    await conn.execute(
        OLD_INSERT_POSITIONS, DAY, p.run_id, p.factor_id, p.position_id, p.portfolio_id, p.symbol,
        p.underlying_symbol, p.exposure, p.beta_source, p.quality_flag, nan_as_null(p.beta),
        nan_as_null(p.exposure_dollar),
    )  # fmt: skip
    await conn.copy_records_to_table(
        "portfolio_factor_exposure", schema_name="factors", records=portfolios(), columns=list(repo.PORTFOLIO_COLUMNS)
    )


async def new_replace_exposures(s: Any, conn: Any) -> None:
    await repo.replace_exposures(s, portfolio_ids=PIDS, as_of=DAY, positions=positions(), portfolios=portfolios())


@pytest.mark.parametrize("table", ["position_factor_exposure", "portfolio_factor_exposure"])
async def test_replace_exposures_stores_the_rows_of_the_former_path(db: Database, table: str) -> None:
    old = await rows_after(db, old_replace_exposures, table)
    new = await rows_after(db, new_replace_exposures, table)
    assert len(new) == (7 if table == "position_factor_exposure" else 9)
    assert new == old


def pair_sets() -> list[PairColumns]:
    def pairs(n: int, seed: int) -> PairColumns:
        vals = [ODD[(seed + i) % len(ODD)] for i in range(n)]
        return PairColumns(
            [f"A{i}é" for i in range(n)],
            [f"B{i}" if i % 4 else "" for i in range(n)],
            vals,
            [-v for v in vals],
            [(i * 997) % 32768 for i in range(n)],
            [abs(v) if i % 3 else NAN for i, v in enumerate(vals)],
        )

    return [pairs(5, 0), pairs(0, 1), pairs(1, 2), pairs(40, 3)]


async def test_insert_pairs_stores_the_rows_of_the_former_path(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sets = pair_sets()
    items = [SimpleNamespace(portfolio_id=uuid.uuid4(), result=k, rho_dir=None) for k in range(len(sets))]
    cid = {i.portfolio_id: uuid.uuid4() for i in items}
    monkeypatch.setattr(cbs, "pair_columns", lambda result, rho_dir: sets[result])

    async def old(s: Any, conn: Any) -> None:
        ids, starts, ends, flat = [], [], [], [[] for _ in range(6)]  # type: ignore[var-annotated]
        for i in items:
            p = sets[i.result]
            if len(p):
                ids.append(cid[i.portfolio_id])
                starts.append(len(flat[0]) + 1)
                ends.append(len(flat[0]) + len(p))
                for target, source in zip(flat, p.stored_columns(), strict=True):
                    target.extend(source)
        await conn.execute(OLD_PAIRS, ids, starts, ends, *flat)

    async def new(s: Any, conn: Any) -> None:
        await cbs._insert_pairs(conn, items, cid)  # type: ignore[arg-type]

    before, after = await rows_after(db, old, "pairwise_correlation"), await rows_after(db, new, "pairwise_correlation")
    assert len(after) == 3
    assert after == before
