"""The binary-COPY writes store exactly the rows of the former paths (asyncpg-encoded parameters and
COPY records), compared row by row as PostgreSQL's text of every column: the position and portfolio
exposures of `replace_exposures` (the portfolio rows against the COPY records of the former row
builder) and the pair arrays of `correlation_bulk_store._insert_pairs`, on
inputs with NaN, ±0, ±inf, extremes, None, non-cent money, UTF-8 and empty strings/flags."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from common.db import Database
from common.formatting import nan_as_null
from factors import correlation_bulk_store as cbs
from factors import repository as repo
from factors.correlation_rows import PairColumns
from factors.pg_numeric import rounded_float_cents

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


def portfolios() -> repo.PortfolioExposureColumns:
    """Three portfolios × three factors, plus amounts of every kind in the money columns: half cents
    (ties of the binary value or of its repr), non-cent values, ±0, huge and non-finite ones."""
    p, f = len(PIDS), len(FIDS)
    rng = np.random.default_rng(7)
    money = np.array([3440216.73, NAN, -0.0, 1.005, 0.125, 1e12 + 0.01, -2.675, INF, 123456789012.345])
    grid = np.resize(np.concatenate([money, np.round(rng.normal(0, 1e6, 9), 3), rng.normal(0, 1e9, 9)]), (p, f))
    return repo.PortfolioExposureColumns(
        portfolio_id=PIDS,
        factor_id=FIDS,
        exposure_dollar=grid,
        beta=np.resize(np.array(ODD), (p, f)),
        beta_gross=np.array([[NAN, 0.5, -INF], [1.0, -0.0, 2.5], [0.25, INF, NAN]]),
        equity=np.array([5093794.39, NAN, 0.005]),
        gross_exposure=np.array([-2.675, 1e12 + 0.01, 7.0]),
        contributing_positions=np.array([[20, 0, 3], [1, 2, 0], [0, 0, 0]]),
        largest_contributor=["Q0942ü", None, "", "A", None, "B", None, None, None],
        coverage_pct=np.array([1.0, NAN, 0.0]),
        positions_full=np.array([20, 0, 3]),
        positions_limited=np.array([0, 1, 0]),
        positions_default=np.array([0, 0, 7]),
        status=["ok"] * (p * f),
        reason=[None, "no return series in v1", "ü"] * p,
        flags=[[], ["equity_undefined"], ["equity_undefined", "cash_unknown", "missing_exposure"]],
        excluded=["[]", '[{"position_id": "x", "symbol": "Xü", "reason": "missing_exposure"}]', "[]"],
        engine_version="factors-1.0.0",
        run_id=RUN,
    )


def former_portfolio_records(c: repo.PortfolioExposureColumns) -> list[tuple[Any, ...]]:
    """The COPY records the former row builder made of the same values (amounts round(v, 2) as
    Python floats, None for any non-finite value)."""

    def amount(v: float) -> float | None:
        return round(float(v), 2) if math.isfinite(v) else None

    def ratio(v: float) -> float | None:
        return float(v) if math.isfinite(v) else None

    out = []
    for p, pid in enumerate(c.portfolio_id):
        for j, fid in enumerate(c.factor_id):
            r = p * len(c.factor_id) + j
            out.append(
                (pid, DAY, fid, amount(c.exposure_dollar[p, j]), ratio(c.beta[p, j]), ratio(c.beta_gross[p, j]),
                 amount(c.equity[p]), amount(c.gross_exposure[p]), int(c.contributing_positions[p, j]),
                 c.largest_contributor[r], ratio(c.coverage_pct[p]), int(c.positions_full[p]),
                 int(c.positions_limited[p]), int(c.positions_default[p]), c.status[r], c.reason[r], c.flags[p],
                 c.excluded[p], c.engine_version, c.run_id)
            )  # fmt: skip
    return out


def test_rounded_float_cents_are_the_cents_of_pythons_round() -> None:
    """Near-ties of the binary value (k + 0.5 cents ± a few ulps) and of the repr (1.005, 2.675)."""
    rng = np.random.default_rng(11)
    ties = (rng.integers(-(10**9), 10**9, 2000) + 0.5) / 100.0
    values = np.concatenate([ties, np.nextafter(ties, np.inf), rng.normal(0, 1e7, 2000), [1.005, -2.675, 0.125]])
    cents, nulls = rounded_float_cents(values)
    assert not nulls.any()
    expected = [int(Decimal(repr(round(float(v), 2))).scaleb(2).to_integral_value(ROUND_HALF_UP)) for v in values]
    assert cents.tolist() == expected


async def old_replace_exposures(s: Any, conn: Any) -> None:
    p = positions()
    await conn.execute(
        OLD_INSERT_POSITIONS, DAY, p.run_id, p.factor_id, p.position_id, p.portfolio_id, p.symbol,
        p.underlying_symbol, p.exposure, p.beta_source, p.quality_flag, nan_as_null(p.beta),
        nan_as_null(p.exposure_dollar),
    )  # fmt: skip
    await conn.copy_records_to_table(
        "portfolio_factor_exposure",
        schema_name="factors",
        records=former_portfolio_records(portfolios()),
        columns=list(repo.PORTFOLIO_COLUMNS),
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
