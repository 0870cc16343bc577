"""The batched stress step stores exactly what the per-portfolio path stores (perf rework guard).

Five portfolios — two Example 7 books, one without positions, one holding only the call, and one that
is not live (fails every part) — are run one by one, then all in one batch; every stored row (stress
runs and results, market-risk results, risk metrics, snapshots) must be identical. A risk-metric row that the
database rejects fails its portfolio alone, and the others are stored as in the per-portfolio path.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from tests.integration.stress.stress_dataset import (
    AS_OF,
    CALL,
    CALL_EXPOSURE,
    CALL_MV,
    STOCK_A,
    seed_book,
    seed_call_greek,
    seed_market,
)

from common.events import StepInfo, StressComputed
from common.formatting import utcnow
from stress import bulk_upsert, risk_repository
from stress import service as service_module
from stress.models import risk_metric
from stress.pipeline import PortfolioOutcome

pytestmark = pytest.mark.integration

TABLES = {
    "stress_run": "SELECT * FROM stress.stress_run WHERE portfolio_id = ANY(:ids) ORDER BY portfolio_id, id",
    "stress_result": "SELECT * FROM stress.stress_result WHERE portfolio_id = ANY(:ids)"
    " ORDER BY portfolio_id, stress_run_id, scenario_id",
    "market_risk_result": "SELECT * FROM stress.market_risk_result WHERE portfolio_id = ANY(:ids)"
    " ORDER BY portfolio_id, scenario_key",
    "risk_metric": "SELECT * FROM stress.risk_metric WHERE portfolio_id = ANY(:ids) ORDER BY portfolio_id",
}


async def seed_option_only(seeder, user_id: uuid.UUID) -> uuid.UUID:
    pid = await seeder.portfolio(user_id=user_id, cash="500", is_default=False)
    expiry = AS_OF + timedelta(days=45)
    call = await seeder.position(
        pid, CALL, "20", "2.00", AS_OF - timedelta(days=30), option=("C", "105", expiry), underlying=STOCK_A
    )
    await seeder.valuation(
        call, pid, AS_OF, last_price="2.3755", market_value=CALL_MV, dollar_exposure=CALL_EXPOSURE, notional="1"
    )
    await seed_call_greek(seeder, call, pid, AS_OF)
    return pid


@pytest.fixture
async def portfolios(seeder, calendar_days) -> list[uuid.UUID]:
    await seed_market(seeder, calendar_days)
    user = uuid.uuid4()
    first = await seed_book(seeder, user)
    second = await seed_book(seeder, user, is_default=False)
    empty = await seeder.portfolio(user_id=user, cash="1000", is_default=False)
    option_only = await seed_option_only(seeder, user)
    not_live = uuid.uuid4()
    return [first.portfolio_id, second.portfolio_id, empty, option_only, not_live]


async def stored(stress_db, ids: list[uuid.UUID]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    async with stress_db.transaction() as s:
        for name, sql in TABLES.items():
            rows = (await s.execute(sa.text(sql), {"ids": ids})).mappings().all()
            out[name] = [{k: v for k, v in r.items() if k != "created_at"} for r in rows]
    return out


def summary(outcome: PortfolioOutcome) -> tuple[Any, ...]:
    def part(p: Any) -> tuple[Any, ...] | None:
        return None if p is None else (p.status, p.error.code if p.error else None)

    return part(outcome.market), part(outcome.stress), part(outcome.risk)


async def run(harness, stress_db, ids: list[uuid.UUID], run_id: uuid.UUID) -> dict[uuid.UUID, PortfolioOutcome]:
    pipeline = harness.service.app.state.pipeline
    async with stress_db.transaction() as session:
        return await pipeline.run_parts(
            session, as_of=AS_OF, run_id=run_id, portfolio_ids=ids, market=True, stress=True
        )


async def test_batch_stores_what_one_by_one_stores(harness, stress_db, portfolios) -> None:
    run_id = uuid.uuid4()
    single: dict[uuid.UUID, PortfolioOutcome] = {}
    for pid in portfolios:
        single.update(await run(harness, stress_db, [pid], run_id))
    one_by_one = await stored(stress_db, portfolios)

    batched = await run(harness, stress_db, portfolios, run_id)

    assert await stored(stress_db, portfolios) == one_by_one
    assert {p: summary(o) for p, o in batched.items()} == {p: summary(o) for p, o in single.items()}
    first, _, empty, option_only, not_live = portfolios
    assert {r["portfolio_id"] for r in one_by_one["risk_metric"]} == {first, portfolios[1], empty, option_only}
    assert len([r for r in one_by_one["stress_result"] if r["portfolio_id"] == option_only]) == 18
    assert batched[not_live].risk.status == "failed" and batched[not_live].stress.status == "failed"
    # Money went through the vectorised formatter: the Example 7 liquidity-crisis figure is unchanged.
    assert any(
        r["direct_pnl"] == Decimal("-4639.90") for r in one_by_one["stress_result"] if r["portfolio_id"] == first
    )


async def test_a_rejected_risk_metric_row_fails_only_its_portfolio(harness, stress_db, portfolios, monkeypatch) -> None:
    run_id = uuid.uuid4()
    ids = portfolios[:4]
    await run(harness, stress_db, ids, run_id)
    before = await stored(stress_db, ids)
    bad = ids[1]
    real = risk_repository.risk_metric_row

    def overflowing(portfolio_id, *args, **kwargs):
        row = real(portfolio_id, *args, **kwargs)
        return {**row, "var_observations": 99_999} if portfolio_id == bad else row  # smallint overflow

    monkeypatch.setattr(risk_repository, "risk_metric_row", overflowing)
    outcomes = await run(harness, stress_db, ids, run_id)

    assert outcomes[bad].risk is not None and outcomes[bad].risk.status == "failed"
    assert all(outcomes[p].risk.status != "failed" for p in ids if p != bad)
    after = await stored(stress_db, ids)
    # The rejected row kept its previous value; every other row is what the batch stored before.
    assert after == before


SNAPSHOTS = (
    "SELECT * FROM stress.portfolio_snapshot WHERE portfolio_id = ANY(:ids) ORDER BY portfolio_id, snapshot_date"
)


async def snapshot_rows(stress_db, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    async with stress_db.transaction() as s:
        rows = (await s.execute(sa.text(SNAPSHOTS), {"ids": ids})).mappings().all()
    return [{k: v for k, v in r.items() if k != "created_at"} for r in rows]


async def snapshot(harness, stress_db, events: list[StressComputed]) -> dict[uuid.UUID, tuple[Any, ...]]:
    service = harness.service.app.state.snapshots
    async with stress_db.transaction() as session:
        outcomes = await service.snapshot_group(session, events, AS_OF, events[0].run_id, "batch", True)
    return {
        e.portfolio_id: (o.status, o.error.code if o.error else None, o.error.message if o.error else None)
        for e, o in ((e, outcomes[e.event_id]) for e in events)
    }


@pytest.mark.parametrize("batch_write_fails", [False, True])
async def test_batched_snapshots_store_what_one_by_one_stores(
    harness, stress_db, portfolios, monkeypatch, batch_write_fails
) -> None:
    run_id = uuid.uuid4()
    await run(harness, stress_db, portfolios, run_id)
    failed_upstream = StepInfo(name="stress_tests", status="failed", started_at=utcnow(), finished_at=utcnow())
    events = [
        StressComputed(portfolio_id=p, as_of=AS_OF, run_id=run_id, step=failed_upstream if i == 1 else None)
        for i, p in enumerate(portfolios)
    ]
    single: dict[uuid.UUID, tuple[Any, ...]] = {}
    for evt in events:
        single.update(await snapshot(harness, stress_db, [evt]))
    one_by_one = await snapshot_rows(stress_db, portfolios)

    if batch_write_fails:  # the batch SAVEPOINT rolls back; every portfolio is redone on its own

        async def broken(*args, **kwargs):
            raise ValueError("bulk write rejected")

        monkeypatch.setattr(service_module.bulk_upsert, "upsert_rows", broken)
    service = harness.service.app.state.snapshots
    real, alone = service.snapshot_portfolio, []

    async def counted(session, portfolio_id, *args, **kwargs):
        alone.append(portfolio_id)
        return await real(session, portfolio_id, *args, **kwargs)

    monkeypatch.setattr(service, "snapshot_portfolio", counted)
    batched = await snapshot(harness, stress_db, events)

    assert len(alone) == (len(portfolios) if batch_write_fails else 0)  # which path wrote them
    assert await snapshot_rows(stress_db, portfolios) == one_by_one
    assert batched == single
    assert len(one_by_one) == 4  # the not-live portfolio has none
    assert single[portfolios[4]][:2] == ("failed", "PORTFOLIO_NOT_FOUND")
    assert "upstream_step_failed" in next(r["flags"] for r in one_by_one if r["portfolio_id"] == portfolios[1])


async def test_bulk_upsert_stores_what_the_per_row_upsert_stores(harness, stress_db, portfolios, monkeypatch) -> None:
    """None in a jsonb column is JSON null (SQLAlchemy's JSONB default) and a NaN float survives (it
    takes the per-row path) — the same rows whichever path writes them."""
    await run(harness, stress_db, portfolios[:2], uuid.uuid4())
    rows = [
        {k: v for k, v in r.items() if k != "created_at"} for r in (await stored(stress_db, portfolios))["risk_metric"]
    ]
    rows[0] = {**rows[0], "ewma": None, "backtest": {"nested": [1.5, None, "x"]}}
    rows[1] = {**rows[1], "ex_ante_volatility": float("nan")}

    real_check = bulk_upsert._json_safe

    async def write(per_row_only: bool) -> list[dict[str, Any]]:
        monkeypatch.setattr(bulk_upsert, "_json_safe", (lambda _rows: False) if per_row_only else real_check)
        async with stress_db.transaction() as s:
            await bulk_upsert.upsert_rows(s, risk_metric, rows[:1], ("portfolio_id", "calculation_date"))
            await bulk_upsert.upsert_rows(s, risk_metric, rows[1:], ("portfolio_id", "calculation_date"))
            text = sa.text(
                "SELECT *, ewma IS NULL AS ewma_sql_null, ewma::text AS ewma_text FROM stress.risk_metric"
                " WHERE portfolio_id = ANY(:ids) ORDER BY portfolio_id"
            )
            found = (await s.execute(text, {"ids": portfolios[:2]})).mappings().all()
        return [{k: v for k, v in r.items() if k != "created_at"} for r in found]

    per_row = await write(True)
    bulk = await write(False)
    assert repr(bulk) == repr(per_row)  # repr: NaN != NaN
    by_id = {r["portfolio_id"]: r for r in bulk}
    assert by_id[rows[0]["portfolio_id"]]["ewma_text"] == "null" and not by_id[rows[0]["portfolio_id"]]["ewma_sql_null"]
    assert math.isnan(by_id[rows[1]["portfolio_id"]]["ex_ante_volatility"])
