"""Within a run, underlying betas read by one batch serve the later batches (`stress.beta_cache`).

The cached table must be the very table a fresh read gives; later batches ask only for symbols not
seen yet (and again for those without any stored row); outside a run nothing is cached.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)

from stress import beta_cache
from stress import stress_repository as repo
from stress.scenarios_inputs import BetaTable

pytestmark = pytest.mark.integration


async def test_a_runs_later_batches_read_only_unseen_symbols(
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
    monkeypatch,
) -> None:
    asked: list[list[str]] = []
    real = repo.underlying_betas

    async def spy(session, symbols, on):  # type: ignore[no-untyped-def]
        asked.append(list(symbols))
        return await real(session, symbols, on)

    monkeypatch.setattr(repo, "underlying_betas", spy)
    async with stress_db.transaction() as s:
        on = (
            await s.execute(
                sa.text("SELECT max(calculation_date) FROM factors.api_underlying_beta WHERE calculation_date <= :d"),
                {"d": AS_OF},
            )
        ).scalar_one()
        stored = sorted(
            {
                r.symbol
                for r in await s.execute(
                    sa.text(
                        "SELECT symbol::text AS symbol FROM factors.api_underlying_beta WHERE calculation_date = :d"
                    ),
                    {"d": on},
                )
            }
        )
        assert len(stored) >= 2
        run_id = uuid.uuid4()
        first_batch = [stored[0], "NO-SUCH"]
        everything = [*stored, "NO-SUCH"]
        await beta_cache.beta_table(s, first_batch, on, as_of=AS_OF, run_id=run_id)
        cached = await beta_cache.beta_table(s, everything, on, as_of=AS_OF, run_id=run_id)
        fresh = BetaTable.from_rows(await real(s, everything, on), everything)
        outside = [await beta_cache.beta_table(s, everything, on, as_of=AS_OF, run_id=None) for _ in range(2)]
    assert asked[0] == first_batch
    assert asked[1] == [*stored[1:], "NO-SUCH"]  # the first symbol came from the run's cache
    assert asked[2:] == [everything, everything]  # no run: read every time
    for table in (cached, *outside):
        assert table.symbols == fresh.symbols
        assert np.array_equal(table.betas, fresh.betas, equal_nan=True)
        assert np.array_equal(table.regression, fresh.regression)
    assert np.isnan(cached.betas[-1]).all() and not cached.regression[-1]
    assert np.isfinite(cached.betas).any()
