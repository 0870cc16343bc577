"""The greeks step end to end on an InProcessBus and a real PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from greeks_harness import PA, PB, PC, SYM_ABC_C, SYM_NOPE_C, SYM_XYZ_C, SYM_XYZ_P, T0, Harness

from common.events import CycleStarted, PortfolioUpdated, PricesUpdated
from greeks import bulk_store, repository

pytestmark = pytest.mark.integration


def rel_ok(actual: float, expected: float, rel: float = 1e-4) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


async def run_prices_updated(h: Harness, **kw) -> PricesUpdated:
    evt = PricesUpdated(as_of=T0, run_id=uuid.uuid4(), portfolio_ids=[PA, PB, PC], correlation_id="req_test", **kw)
    await h.bus.publish(evt)
    await h.bus.drain()
    return evt


async def stored(h: Harness) -> dict[str, dict]:
    rows = await h.rows("SELECT * FROM greeks.position_greek WHERE portfolio_id = :p", p=PA)
    return {r["symbol"]: r for r in rows}


async def test_prices_updated_stores_greeks_and_announces_every_portfolio(harness: Harness):
    evt = await run_prices_updated(harness)
    rows = await stored(harness)
    assert set(rows) == {SYM_XYZ_C, SYM_ABC_C, SYM_NOPE_C, SYM_XYZ_P}

    short_calls = rows[SYM_XYZ_C]  # Example 2, 5 written calls
    assert short_calls["status"] == "ok" and short_calls["iv_source"] == "vendor"
    assert "iv_market_solve_failed" in short_calls["flags"]
    assert rel_ok(short_calls["risk_free_rate"], 0.05, 1e-12)
    assert rel_ok(short_calls["model_price"], 1.14436)
    assert rel_ok(short_calls["delta"], -135.161)
    assert rel_ok(short_calls["gamma"], -23.0611)
    assert rel_ok(short_calls["theta"], 20.7766)
    assert rel_ok(short_calls["vega"], -47.3858)
    assert rel_ok(short_calls["rho"], -10.6388)
    assert short_calls["dollar_delta"] == Decimal("-13516.10")
    assert short_calls["dollar_gamma_1pct"] == Decimal("-2306.11")
    assert short_calls["run_id"] == evt.run_id and short_calls["calculation_date"] == T0

    atm = rows[SYM_ABC_C]  # Example 3: market IV from 16.22 with r interpolated to 0.045
    assert atm["iv_source"] == "market"
    assert rel_ok(atm["implied_volatility"], 0.200025)
    assert rel_ok(atm["risk_free_rate"], 0.045, 1e-9)
    assert rel_ok(atm["delta_ps"], 0.552416, 1e-3)

    assert rows[SYM_NOPE_C]["status"] == "missing_inputs"
    assert rows[SYM_NOPE_C]["reason"] == "underlying_price_missing"
    assert rows[SYM_NOPE_C]["delta"] is None
    assert rows[SYM_XYZ_P]["status"] == "expired" and rows[SYM_XYZ_P]["delta"] == 0.0

    events = {e.portfolio_id: e for e in harness.received}
    assert set(events) == {PA, PB, PC}
    a, b, c = events[PA], events[PB], events[PC]
    assert (a.ok, a.failed, a.step.records_processed) == (3, 1, 4)
    assert (b.ok, b.failed, b.step.records_processed) == (0, 0, 0)
    assert (c.ok, c.failed) == (1, 0)
    for e in (a, b, c):
        assert e.step.name == "greeks" and e.step.status == "completed"
        assert e.run_id == evt.run_id and e.as_of == T0 and e.cascade is True
        assert e.correlation_id == "req_test" and e.producer == "greeks"


async def test_duplicate_delivery_changes_nothing(harness: Harness):
    evt = await run_prices_updated(harness)
    before = await harness.rows("SELECT position_id, created_at FROM greeks.position_greek ORDER BY position_id")
    await harness.bus.publish(evt)
    await harness.bus.drain()
    after = await harness.rows("SELECT position_id, created_at FROM greeks.position_greek ORDER BY position_id")
    assert before == after
    assert len(harness.received) == 3


async def test_rerun_of_a_day_replaces_rows_without_duplicates(harness: Harness):
    await run_prices_updated(harness)
    async with harness.db.transaction() as s:
        import sqlalchemy as sa

        await s.execute(
            sa.text(
                "UPDATE ingest.position SET status = 'closed', exit_date = :d WHERE symbol = :s AND portfolio_id = :p"
            ),
            {"d": T0, "s": SYM_NOPE_C, "p": PA},
        )
    await run_prices_updated(harness)
    rows = await stored(harness)
    assert set(rows) == {SYM_XYZ_C, SYM_ABC_C, SYM_XYZ_P}
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek") == 4
    assert len(harness.received) == 6


async def test_prices_updated_without_cascade_is_ignored(harness: Harness):
    await run_prices_updated(harness, cascade=False)
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek") == 0
    assert harness.received == []


async def test_scope_none_means_every_active_portfolio(harness: Harness):
    await harness.bus.publish(PricesUpdated(as_of=T0, portfolio_ids=None))
    await harness.bus.drain()
    assert {e.portfolio_id for e in harness.received} == {PA, PB, PC}  # not the onboarding portfolio


async def test_single_step_cycle_started_computes_with_its_cascade_flag(harness: Harness):
    await harness.bus.publish(
        CycleStarted(as_of=T0, trigger="manual", steps=["greeks"], portfolio_ids=[PC], cascade=False)
    )
    await harness.bus.publish(
        CycleStarted(as_of=T0, trigger="schedule", steps=["market_data", "greeks"], portfolio_ids=[PA])
    )
    await harness.bus.drain()
    assert [(e.portfolio_id, e.cascade) for e in harness.received] == [(PC, False)]
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek WHERE portfolio_id = :p", p=PC) == 1


async def test_one_failing_portfolio_does_not_stop_the_others(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    original = repository.replace_position_greeks

    async def flaky(session, *, portfolio_id, calculation_date, rows):
        if portfolio_id == PC:
            raise ValueError("simulated storage failure")
        await original(session, portfolio_id=portfolio_id, calculation_date=calculation_date, rows=rows)

    # The one-batch write of every portfolio fails as well while PC is in it (as a bad row of PC would).
    original_many = bulk_store.replace_many

    async def flaky_many(session, *, portfolio_ids, calculation_date, rows):
        if PC in portfolio_ids:
            raise ValueError("simulated storage failure")
        await original_many(session, portfolio_ids=portfolio_ids, calculation_date=calculation_date, rows=rows)

    monkeypatch.setattr(repository, "replace_position_greeks", flaky)
    monkeypatch.setattr(bulk_store, "replace_many", flaky_many)
    await run_prices_updated(harness)
    events = {e.portfolio_id: e for e in harness.received}
    assert events[PC].step.status == "failed"
    assert events[PC].step.error is not None and "simulated storage failure" in events[PC].step.error.message
    assert events[PA].step.status == "completed" and events[PB].step.status == "completed"
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek WHERE portfolio_id = :p", p=PA) == 4
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek WHERE portfolio_id = :p", p=PC) == 0


async def test_failed_batch_compute_is_isolated_per_portfolio(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    from greeks import service as service_module

    original = service_module.evaluate_contracts

    def picky(contracts, market, *, run_id=None, workers=1):
        if any(c.portfolio_id == PC for c in contracts):
            raise RuntimeError("simulated compute failure")
        return original(contracts, market, run_id=run_id, workers=workers)

    monkeypatch.setattr(service_module, "evaluate_contracts", picky)
    await run_prices_updated(harness)
    events = {e.portfolio_id: e for e in harness.received}
    assert events[PC].step.status == "failed"
    assert events[PA].step.status == "completed" and events[PA].ok == 3


async def test_removed_portfolio_rows_are_deleted(harness: Harness):
    await run_prices_updated(harness)
    await harness.bus.publish(PortfolioUpdated(as_of=T0, portfolio_id=PA, change="removed"))
    await harness.bus.publish(PortfolioUpdated(as_of=T0, portfolio_id=PC, change="valued"))
    await harness.bus.drain()
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek WHERE portfolio_id = :p", p=PA) == 0
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek WHERE portfolio_id = :p", p=PC) == 1


async def test_published_views_expose_rows_and_the_latest_per_position(harness: Harness):
    await run_prices_updated(harness)
    assert await harness.scalar("SELECT count(*) FROM greeks.api_position_greek") == 5
    assert await harness.scalar("SELECT count(*) FROM greeks.api_latest_position_greek") == 5
    assert await harness.scalar("SELECT max(calculation_date) FROM greeks.api_latest_position_greek") == T0
