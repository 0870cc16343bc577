"""repository.replace_exposures stores one row per (position, factor) from per-position columns and
position-major beta / exposure_dollar arrays: every cell lands on its own (position, factor) row, NaN
becomes NULL, cents are kept, and a re-run of the day replaces the rows of its portfolios only."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from common.db import Database
from factors import repository as repo
from factors.registry import FACTORS
from factors.seed import seed

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 24)
P1, P2 = (uuid.uuid5(uuid.NAMESPACE_DNS, f"pfe-write-p{n}") for n in "12")
POS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"pfe-write-pos{n}") for n in range(3)]
RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "pfe-write-run")
CODES = [f.code for f in FACTORS][:3]
FID = {f.code: f.id for f in FACTORS}
NAN = math.nan


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_pfe_write_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    database = Database(url, pool_size=2)
    await seed(database)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


def columns(positions: list[uuid.UUID], portfolios: list[uuid.UUID], scale: float) -> repo.PositionExposureColumns:
    n, k = len(positions), len(CODES)
    beta = [scale * (10 * i + j) + 0.125 for i in range(n) for j in range(k)]
    dollars = [round(scale * (1000 * i + j) + 0.01, 2) for i in range(n) for j in range(k)]
    beta[1] = NAN  # position 0, factor 1: NULL
    if n > 1:
        dollars[k + 2] = NAN  # position 1, factor 2: NULL
    return repo.PositionExposureColumns(
        factor_id=[FID[c] for c in CODES],
        position_id=positions,
        portfolio_id=portfolios,
        symbol=[f"S{i}" for i in range(n)],
        underlying_symbol=[f"U{i}" for i in range(n)],
        exposure=[NAN if i == 2 else 100.0 * (i + 1) + 0.07 for i in range(n)],
        beta_source=["regression" if i % 2 else "default" for i in range(n)],
        quality_flag=["full_history" if i % 2 else "insufficient_history" for i in range(n)],
        beta=beta,
        exposure_dollar=dollars,
        run_id=RUN,
    )


def expected(c: repo.PositionExposureColumns) -> set[tuple[Any, ...]]:
    k = len(c.factor_id)

    def null(v: float) -> float | None:
        return None if math.isnan(v) else v

    return {
        (pos, c.factor_id[j], c.portfolio_id[i], c.symbol[i], c.underlying_symbol[i], null(c.exposure[i]),
         null(c.beta[i * k + j]), c.beta_source[i], null(c.exposure_dollar[i * k + j]), c.quality_flag[i], RUN)
        for i, pos in enumerate(c.position_id)
        for j in range(k)
    }  # fmt: skip


async def stored(db: Database) -> set[tuple[Any, ...]]:
    async with db.transaction() as s:
        rows = await s.execute(
            sa.text(
                "SELECT e.position_id, f.factor_id, e.portfolio_id, e.symbol, e.underlying_symbol, e.exposure::float8, "
                "f.beta, e.beta_source, f.dollars::numeric(20,2)::float8, e.quality_flag, e.run_id "
                "FROM factors.position_factor_exposure e "
                "CROSS JOIN LATERAL unnest(e.factor_ids, e.betas, e.exposure_dollars) AS f(factor_id, beta, dollars) "
                "WHERE e.calculation_date = :d"
            ),
            {"d": DAY},
        )
        return {tuple(r) for r in rows}


async def test_every_cell_lands_on_its_position_and_factor_and_a_rerun_replaces_the_day(db: Database) -> None:
    first = columns(POS, [P1, P1, P2], scale=1.0)
    async with db.transaction() as s:
        await repo.replace_exposures(s, portfolio_ids=[P1, P2], as_of=DAY, positions=first, portfolios=None)
    assert await stored(db) == expected(first)
    assert len(expected(first)) == 9

    # P1 re-run with only its first position: its other position loses its rows, P2 is untouched.
    rerun = columns(POS[:1], [P1], scale=2.0)
    async with db.transaction() as s:
        await repo.replace_exposures(s, portfolio_ids=[P1], as_of=DAY, positions=rerun, portfolios=None)
    p2_rows = {r for r in expected(first) if r[2] == P2}
    assert await stored(db) == expected(rerun) | p2_rows
    assert {r[6] for r in expected(rerun)} == {0.125, None, 4.125}
