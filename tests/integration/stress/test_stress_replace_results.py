"""`store_rows` keeps exactly the rows it is given: results of scenarios no longer run go.

A run's results are one stress_result_set row replaced whole, so a batch where runs keep different
scenario sets — one fewer, none at all, all — must still leave each run with precisely its own rows.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.integration.stress.result_rows import store_rows, view_rows
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)
from tests.integration.stress.test_stress_result_documents import run_presenter

pytestmark = pytest.mark.integration


async def test_replace_results_drops_only_the_scenarios_no_longer_run(
    harness,
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    ids = sorted(portfolios[:4])
    pr, run_ids = await run_presenter(harness, stress_db, ids)
    rows = view_rows(pr, list(run_ids), AS_OF)
    scenarios = pr.meta.ids
    assert len(scenarios) >= 2 and len(rows) == 4 * len(scenarios)
    # run 0 drops its first scenario, run 1 drops them all, run 2 keeps all, run 3 drops the second.
    dropped = {(run_ids[0], scenarios[0]), (run_ids[3], scenarios[1])}
    kept = [
        r for r in rows if r["stress_run_id"] != run_ids[1] and (r["stress_run_id"], r["scenario_id"]) not in dropped
    ]
    async with stress_db.transaction() as s:
        await store_rows(s, run_ids, kept)
        stored = (
            await s.execute(
                sa.text("SELECT stress_run_id, scenario_id FROM stress.stress_result WHERE portfolio_id = ANY(:ids)"),
                {"ids": ids},
            )
        ).all()
    assert sorted((r.stress_run_id, r.scenario_id) for r in stored) == sorted(
        (r["stress_run_id"], r["scenario_id"]) for r in kept
    )
    assert len(stored) == 3 * len(scenarios) - 2
