"""The stress step on a real PostgreSQL (api.md §5.2, §5.3): factors.computed in → market-risk
scenarios, stress tests and risk metrics stored → stress.computed out → snapshot with the §9 fields."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from tests.integration.stress.stress_dataset import AS_OF, EQUITY, EXPOSURES, Book, seed_book, seed_market

from common.events import CycleStarted, FactorsComputed, PortfolioUpdated, StepInfo
from common.formatting import utcnow

pytestmark = pytest.mark.integration

RUN_COUNTS = """
    SELECT (SELECT count(*) FROM stress.stress_run WHERE portfolio_id = :p) AS runs,
           (SELECT count(*) FROM stress.stress_result WHERE portfolio_id = :p) AS results,
           (SELECT count(*) FROM stress.market_risk_result WHERE portfolio_id = :p) AS market,
           (SELECT count(*) FROM stress.risk_metric WHERE portfolio_id = :p) AS metrics,
           (SELECT count(*) FROM stress.portfolio_snapshot WHERE portfolio_id = :p) AS snapshots
"""


@pytest.fixture
async def books(seeder, calendar_days) -> tuple[Book, Book]:
    await seed_market(seeder, calendar_days)
    user = uuid.uuid4()
    return await seed_book(seeder, user), await seed_book(seeder, user, is_default=False)


def factors_done(book: Book, run_id: uuid.UUID, **kw) -> FactorsComputed:
    now = utcnow()
    step = StepInfo(name="factors", status="completed", started_at=now, finished_at=now)
    return FactorsComputed(portfolio_id=book.portfolio_id, as_of=AS_OF, run_id=run_id, step=step, **kw)


async def counts(seeder, book: Book) -> dict[str, int]:
    return (await seeder.rows(RUN_COUNTS, {"p": book.portfolio_id}))[0]


async def stored_pnl(seeder, book: Book, scenario: str) -> dict[str, Decimal]:
    rows = await seeder.rows(
        "SELECT r.direct_pnl, r.direct_linear_pnl, r.correlated_pnl FROM stress.stress_result r"
        " JOIN stress.stress_scenario s ON s.id = r.scenario_id WHERE r.portfolio_id = :p AND s.scenario_key = :k",
        {"p": book.portfolio_id, "k": scenario},
    )
    return rows[0]


async def test_factors_computed_for_two_portfolios_runs_every_part_and_announces_each(harness, seeder, books) -> None:
    run_id = uuid.uuid4()
    await harness.deliver(*(factors_done(b, run_id) for b in books))

    events = {e.portfolio_id: e for e in harness.computed if e.run_id == run_id}
    assert set(events) == {b.portfolio_id for b in books}
    for book in books:
        evt = events[book.portfolio_id]
        assert evt.step.name == "stress_tests" and evt.step.status == "completed"
        assert [s.name for s in evt.extra_steps] == ["risk_scenarios"]
        assert evt.extra_steps[0].status == "completed" and not evt.partial and evt.cascade
        assert await counts(seeder, book) == {"runs": 1, "results": 18, "market": 10, "metrics": 1, "snapshots": 1}
        run = (await seeder.rows("SELECT * FROM stress.stress_run WHERE portfolio_id = :p", {"p": book.portfolio_id}))[
            0
        ]
        assert run["id"] == evt.stress_run_id and run["trigger"] == "batch" and run["calculation_date"] == AS_OF
        # Example 7 (calculations.md §10): Liquidity Crisis direct impact −4,639.90, linear part −6,651.93.
        liquidity = await stored_pnl(seeder, book, "liquidity_crisis")
        assert liquidity["direct_pnl"] == Decimal("-4639.90")
        assert liquidity["direct_linear_pnl"] == Decimal("-6651.93")
        # A diagonal factor covariance has no overlap to remove: correlated = direct.
        assert liquidity["correlated_pnl"] == Decimal("-4639.90")

    # §5.3 / §6.5 invariant 7: the market_down_10 stress scenario equals the −10 % market scenario.
    book = books[0]
    market = (
        await seeder.rows(
            "SELECT predicted_pnl, linear_pnl FROM stress.market_risk_result"
            " WHERE portfolio_id = :p AND scenario_key = 'market_down_10'",
            {"p": book.portfolio_id},
        )
    )[0]
    assert market["predicted_pnl"] == (await stored_pnl(seeder, book, "market_down_10"))["direct_pnl"]
    assert market["linear_pnl"] == Decimal(f"{-0.10 * EXPOSURES['market']:.2f}")

    # stress.computed → snapshot.created with the §9 analytics copied from the stored rows.
    created = {e.portfolio_id: e for e in harness.created if e.run_id == run_id}
    assert set(created) == set(events) and all(e.step.status == "completed" for e in created.values())
    snap = (await seeder.snapshot(book.portfolio_id))[AS_OF]
    metric = (await seeder.rows("SELECT * FROM stress.risk_metric WHERE portfolio_id = :p", {"p": book.portfolio_id}))[
        0
    ]
    worst = (
        await seeder.rows(
            "SELECT s.scenario_key, r.correlated_pnl FROM stress.stress_result r"
            " JOIN stress.stress_scenario s ON s.id = r.scenario_id WHERE r.portfolio_id = :p"
            " ORDER BY r.correlated_pnl LIMIT 1",
            {"p": book.portfolio_id},
        )
    )[0]
    assert snap["equity"] == Decimal(f"{EQUITY:.2f}")
    assert snap["market_exposure"] == Decimal(f"{EXPOSURES['market']:.2f}")
    assert snap["market_beta_ex_ante"] == pytest.approx(EXPOSURES["market"] / EQUITY, rel=1e-6)
    assert snap["factor_exposures"]["interest_rate"] == pytest.approx(EXPOSURES["interest_rate"])
    assert (snap["var_95_1d"], snap["var_99_1d"], snap["es_95_1d"], snap["es_99_1d"]) == (
        metric["var_95_hist"],
        metric["var_99_hist"],
        metric["es_95_hist"],
        metric["es_99_hist"],
    )
    assert snap["var_95_1d"] > 0 and snap["es_99_1d"] >= snap["var_99_1d"] >= snap["var_95_1d"]
    assert (snap["worst_stress_id"], snap["worst_stress_pnl"]) == (worst["scenario_key"], worst["correlated_pnl"])
    assert snap["dollar_delta"] == Decimal("130649.10") and snap["options_without_greeks"] == 0
    assert snap["inputs_status"] == "complete" and snap["flags"] == []


async def test_a_second_delivery_changes_nothing(harness, seeder, books) -> None:
    run_id = uuid.uuid4()
    first = [factors_done(b, run_id) for b in books]
    await harness.deliver(*first)
    before = [await counts(seeder, b) for b in books]
    runs_before = await seeder.rows(
        "SELECT id, created_at FROM stress.stress_run WHERE portfolio_id = :p", {"p": books[0].portfolio_id}
    )
    n_computed, n_created = len(harness.computed), len(harness.created)

    await harness.deliver(*first)

    assert [await counts(seeder, b) for b in books] == before
    assert (
        await seeder.rows(
            "SELECT id, created_at FROM stress.stress_run WHERE portfolio_id = :p", {"p": books[0].portfolio_id}
        )
        == runs_before
    )
    assert (len(harness.computed), len(harness.created)) == (n_computed, n_created)


async def test_a_failing_part_fails_only_its_portfolio(harness, seeder, books, monkeypatch) -> None:
    good, bad = books
    pipeline = harness.service.app.state.pipeline
    real = pipeline.stress_tests

    async def breaks_on_bad(session, *, portfolio_ids, **kwargs):
        if bad.portfolio_id in portfolio_ids:
            raise ValueError("singular inputs")
        return await real(session, portfolio_ids=portfolio_ids, **kwargs)

    monkeypatch.setattr(pipeline, "stress_tests", breaks_on_bad)
    run_id = uuid.uuid4()
    await harness.deliver(*(factors_done(b, run_id) for b in books))

    events = {e.portfolio_id: e for e in harness.computed if e.run_id == run_id}
    assert events[good.portfolio_id].step.status == "completed" and not events[good.portfolio_id].partial
    failed = events[bad.portfolio_id]
    assert failed.step.name == "stress_tests" and failed.step.status == "failed"
    assert failed.step.error.code == "STRESS_TESTS_FAILED" and "singular inputs" in failed.step.error.message
    assert failed.partial and failed.stress_run_id is None
    # The other parts of the failing portfolio still ran (api.md §5.3).
    assert failed.extra_steps[0].name == "risk_scenarios" and failed.extra_steps[0].status == "completed"
    assert await counts(seeder, bad) == {"runs": 0, "results": 0, "market": 10, "metrics": 1, "snapshots": 1}
    assert (await counts(seeder, good))["runs"] == 1
    # Its snapshot is still written, partial, naming the failed upstream step and the missing stress result.
    snap = (await seeder.snapshot(bad.portfolio_id))[AS_OF]
    assert snap["inputs_status"] == "partial"
    assert {"upstream_step_failed", "stress_results_missing"} <= set(snap["flags"])
    assert snap["var_95_1d"] is not None and snap["worst_stress_id"] is None


async def test_non_cascading_factors_computed_starts_nothing(harness, seeder, books) -> None:
    run_id = uuid.uuid4()
    await harness.deliver(factors_done(books[0], run_id, cascade=False))
    assert not [e for e in harness.computed if e.run_id == run_id]
    assert await counts(seeder, books[0]) == {"runs": 0, "results": 0, "market": 0, "metrics": 0, "snapshots": 0}


async def test_single_step_stress_tests_trigger_runs_the_selected_categories_without_cascading(
    harness, seeder, books
) -> None:
    book = books[0]
    run_id = uuid.uuid4()
    trigger = CycleStarted(
        as_of=AS_OF,
        trigger="manual",
        steps=["stress_tests"],
        portfolio_ids=[book.portfolio_id],
        params={"categories": ["market"]},
        cascade=False,
        run_id=run_id,
    )
    await harness.deliver(trigger)
    [evt] = [e for e in harness.computed if e.run_id == run_id]
    assert evt.step.name == "stress_tests" and evt.step.status == "completed" and evt.extra_steps == []
    assert not evt.cascade
    assert await counts(seeder, book) == {"runs": 1, "results": 4, "market": 0, "metrics": 0, "snapshots": 0}


async def test_single_step_risk_scenarios_trigger_stores_market_risk_and_metrics(harness, seeder, books) -> None:
    book = books[0]
    run_id = uuid.uuid4()
    trigger = CycleStarted(
        as_of=AS_OF,
        trigger="manual",
        steps=["risk_scenarios"],
        portfolio_ids=[book.portfolio_id],
        cascade=False,
        run_id=run_id,
    )
    await harness.deliver(trigger)
    [evt] = [e for e in harness.computed if e.run_id == run_id]
    assert evt.step.name == "risk_scenarios" and evt.step.status == "completed" and evt.extra_steps == []
    assert await counts(seeder, book) == {"runs": 0, "results": 0, "market": 10, "metrics": 1, "snapshots": 0}


async def test_cascading_risk_scenarios_trigger_also_runs_the_planned_stress_tests(harness, seeder, books) -> None:
    # api.md §4.1: risk-scenarios with cascade plans risk_scenarios → stress_tests → snapshots.
    book = books[0]
    run_id = uuid.uuid4()
    trigger = CycleStarted(
        as_of=AS_OF,
        trigger="manual",
        steps=["risk_scenarios", "stress_tests", "snapshots"],
        portfolio_ids=[book.portfolio_id],
        cascade=True,
        run_id=run_id,
    )
    await harness.deliver(trigger)
    [evt] = [e for e in harness.computed if e.run_id == run_id]
    assert evt.step.name == "risk_scenarios" and [s.name for s in evt.extra_steps] == ["stress_tests"]
    assert all(s.status == "completed" for s in (evt.step, *evt.extra_steps)) and evt.cascade
    counted = await counts(seeder, book)
    assert (counted["runs"], counted["results"], counted["market"], counted["metrics"]) == (1, 18, 10, 1)


async def test_removed_portfolio_loses_its_stress_rows(harness, seeder, books) -> None:
    removed, kept = books
    await harness.deliver(*(factors_done(b, uuid.uuid4()) for b in books))
    await harness.deliver(PortfolioUpdated(portfolio_id=removed.portfolio_id, change="removed", as_of=AS_OF))
    assert await counts(seeder, removed) == {"runs": 0, "results": 0, "market": 0, "metrics": 0, "snapshots": 0}
    assert await counts(seeder, kept) == {"runs": 1, "results": 18, "market": 10, "metrics": 1, "snapshots": 1}


async def test_seed_is_discovered_by_the_all_in_one_seeding_and_is_idempotent(stress_db, seeder) -> None:
    import importlib.util

    from stress.seed import seed

    # allinone.compose.seed_all runs `<service>.seed.seed(db, settings)` for every service that has one.
    assert importlib.util.find_spec("stress.seed") is not None
    assert await seed(stress_db) == {"stress_scenarios": 18}
    assert await seed(stress_db, None) == {"stress_scenarios": 18}
    rows = await seeder.rows("SELECT scenario_key, is_active FROM stress.stress_scenario ORDER BY display_order")
    assert len(rows) == 18 and all(r["is_active"] for r in rows) and rows[0]["scenario_key"] == "market_up_10"
