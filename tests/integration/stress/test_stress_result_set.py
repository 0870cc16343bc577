"""A stress run's results as one `stress.stress_result_set` row behind the view `stress.stress_result`.

* the view returns, value for value, the per-scenario rows the presenter builds (money, percentages,
  documents, flags, floored counts), in the per-row shape of data-model.md §8.3;
* migration stress_0007 moves per-row results into the sets (and its downgrade moves them back) with
  every value unchanged.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from tests.integration.stress.result_rows import store_rows, view_rows
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)
from tests.integration.stress.test_stress_result_documents import DOCUMENTS, run_presenter

from common.db import Database
from common.migrations import alembic_config, upgrade
from stress import stress_repository as repo

pytestmark = pytest.mark.integration

# data-model.md §8.3, in column order (json where §8.3 says jsonb: migration stress_0006).
VIEW_COLUMNS = [
    ("stress_run_id", "uuid"),
    ("scenario_id", "uuid"),
    ("portfolio_id", "uuid"),
    ("calculation_date", "date"),
    ("direct_pnl", "numeric(20,2)"),
    ("direct_linear_pnl", "numeric(20,2)"),
    ("correlated_pnl", "numeric(20,2)"),
    ("correlated_linear_pnl", "numeric(20,2)"),
    ("correlation_effect", "numeric(20,2)"),
    ("direct_pnl_pct", "double precision"),
    ("correlated_pnl_pct", "double precision"),
    ("worst_factor", "text"),
    ("implied_factor_moves", "json"),
    ("direct_factor_impacts", "json"),
    ("correlated_factor_impacts", "json"),
    ("top_positions", "json"),
    ("floored_positions", "smallint"),
    ("correlated_floored_positions", "smallint"),
    ("flags", "text[]"),
    ("created_at", "timestamp with time zone"),
]

SHAPE_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
WHERE a.attrelid = 'stress.stress_result'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


async def test_the_view_returns_every_scenario_row_as_built(
    harness,
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    ids = sorted(portfolios[:4])
    pr, run_ids = await run_presenter(harness, stress_db, ids)
    expected = {(r["stress_run_id"], r["scenario_id"]): r for r in view_rows(pr, list(run_ids), AS_OF)}
    async with stress_db.transaction() as s:
        assert [tuple(r) for r in (await s.execute(sa.text(SHAPE_SQL))).all()] == VIEW_COLUMNS
        # one stored row per run, its arrays in catalogue order
        sets = (
            await s.execute(
                sa.text(
                    "SELECT stress_run_id, scenario_ids FROM stress.stress_result_set WHERE portfolio_id = ANY(:i)"
                ),
                {"i": ids},
            )
        ).all()
        rows = (
            (await s.execute(sa.text("SELECT * FROM stress.stress_result WHERE portfolio_id = ANY(:i)"), {"i": ids}))
            .mappings()
            .all()
        )
    assert sorted(r.stress_run_id for r in sets) == sorted(run_ids)
    assert all(list(r.scenario_ids) == list(pr.meta.ids) for r in sets)
    assert len(rows) == len(expected) == 4 * len(pr.meta.ids)
    for row in rows:
        want = expected[(row["stress_run_id"], row["scenario_id"])]
        for key, value in want.items():
            got = row[key]
            if key in DOCUMENTS:
                # decoded by the connection's json codec; a missing document is JSON null
                assert got == (None if value is None else orjson.loads(str(value))), key
            elif key.endswith("_pnl") or key == "correlation_effect":
                assert got == (None if value is None else Decimal(value)), key
            else:
                assert got == value, key
    assert any(r["flags"] or r["worst_factor"] for r in rows) and any(r["top_positions"] for r in rows)


async def test_a_rerun_with_fewer_scenarios_replaces_the_whole_set(
    harness,
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    ids = sorted(portfolios[:4])
    pr, run_ids = await run_presenter(harness, stress_db, ids)
    sets = pr.result_sets(list(run_ids), AS_OF)
    async with stress_db.transaction() as s:
        await repo.replace_result_sets(s, sets[:1])  # ... now written with the first set alone
        count = (
            await s.execute(
                sa.text("SELECT count(*) FROM stress.stress_result WHERE stress_run_id = :r"), {"r": run_ids[0]}
            )
        ).scalar_one()
        assert count == len(pr.meta.ids)
        await store_rows(s, [run_ids[0]], [])  # a run that keeps no scenario
        left = (
            await s.execute(
                sa.text("SELECT count(*) FROM stress.stress_result_set WHERE stress_run_id = :r"), {"r": run_ids[0]}
            )
        ).scalar_one()
    assert left == 0


# -- migration stress_0007 ---------------------------------------------------------------------------

S1, S2 = uuid.uuid4(), uuid.uuid4()
RUN_A, RUN_B, PORTFOLIO = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
DAY = date(2025, 6, 2)
OLD_ROWS = """
INSERT INTO stress.stress_result (stress_run_id, scenario_id, portfolio_id, calculation_date, direct_pnl,
    direct_linear_pnl, correlated_pnl, correlated_linear_pnl, correlation_effect, direct_pnl_pct, correlated_pnl_pct,
    worst_factor, implied_factor_moves, direct_factor_impacts, correlated_factor_impacts, top_positions,
    floored_positions, correlated_floored_positions, flags, created_at)
VALUES
    (:a, :s2, :p, :d, -10.50, -9.25, -12.00, -11.00, -1.50, -0.0105, -0.012, 'market', '{"value": 0.01}',
     '[{"factor": "market", "pnl": "-10.50"}]', '[{"factor": "market", "pnl": "-12.00"}]',
     '{"correlated": [{"position_id": "x", "pnl": "-3.00"}]}', 1, 0, '{loss_exceeds_equity}', '2025-06-02 22:00Z'),
    (:a, :s1, :p, :d, 4.00, 4.00, NULL, NULL, NULL, 0.004, NULL, NULL, 'null', '[]', 'null',
     '{"direct": []}', 0, NULL, '{correlation_unavailable,factor_unavailable}', '2025-06-02 22:00Z'),
    (:b, :s1, :p, :d, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     '{factor_unavailable}', '2025-06-02 23:00Z')
"""
ROWS_SQL = (
    "SELECT stress_run_id, (to_jsonb(r))::text AS row FROM stress.stress_result r ORDER BY stress_run_id, scenario_id"
)


async def test_migration_moves_per_row_results_into_sets_and_back(scratch_database: str) -> None:
    url = scratch_database
    await asyncio.to_thread(upgrade, "stress", url, "stress_0006")
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            await s.execute(
                sa.text(
                    "INSERT INTO stress.stress_scenario (id, scenario_key, name, category, severity, shocks,"
                    " display_order) VALUES (:s1, 'b_first', 'B', 'market', 'mild', '{}', 1),"
                    " (:s2, 'a_second', 'A', 'market', 'mild', '{}', 2)"
                ),
                {"s1": S1, "s2": S2},
            )
            await s.execute(
                sa.text(
                    "INSERT INTO stress.stress_run (id, portfolio_id, calculation_date, trigger)"
                    " VALUES (:a, :p, :d, 'batch'), (:b, :p, :d, 'api')"
                ),
                {"a": RUN_A, "b": RUN_B, "p": PORTFOLIO, "d": DAY},
            )
            await s.execute(sa.text(OLD_ROWS), {"a": RUN_A, "b": RUN_B, "s1": S1, "s2": S2, "p": PORTFOLIO, "d": DAY})
            before = (await s.execute(sa.text(ROWS_SQL))).all()
        await db.close()
        await asyncio.to_thread(upgrade, "stress", url, "stress_0007")
        db = Database(url, pool_size=1)
        async with db.transaction() as s:
            assert (await s.execute(sa.text(ROWS_SQL))).all() == before
            sets = (
                await s.execute(
                    sa.text("SELECT stress_run_id, scenario_ids, flags::text FROM stress.stress_result_set")
                )
            ).all()
            assert {r.stress_run_id: list(r.scenario_ids) for r in sets} == {
                RUN_A: [S1, S2],
                RUN_B: [S1],
            }  # display order
            view = await s.execute(
                sa.text(
                    "SELECT flags, top_positions FROM stress.stress_result WHERE stress_run_id = :a"
                    " ORDER BY scenario_id = :s2"
                ),
                {"a": RUN_A, "s2": S2},
            )
            rows: list[Any] = view.all()
            assert [list(r.flags) for r in rows] == [
                ["correlation_unavailable", "factor_unavailable"],
                ["loss_exceeds_equity"],
            ]
            assert rows[0].top_positions == {"direct": []}
            await s.execute(sa.text("DELETE FROM stress.stress_run WHERE id = :b"), {"b": RUN_B})  # cascades
            assert (await s.execute(sa.text("SELECT count(*) FROM stress.stress_result"))).scalar_one() == 2
        await db.close()
        await asyncio.to_thread(command.downgrade, alembic_config("stress", url), "stress_0006")
        db = Database(url, pool_size=1)
        async with db.transaction() as s:
            assert (await s.execute(sa.text(ROWS_SQL))).all() == [r for r in before if r.stress_run_id == RUN_A]
    finally:
        await db.close()
