"""The snapshot step on a real PostgreSQL: stress.computed / cycle.started in, snapshot rows and
snapshot.created out (calculations.md §9, api.md §5)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from common.events import CycleStarted, PortfolioUpdated, StepError, StepInfo, StressComputed
from common.formatting import utcnow

pytestmark = pytest.mark.integration

D0, D1, D2 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)  # Wed, Thu, Fri
SATURDAY = date(2026, 11, 21)


async def book(seeder) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """Cash 10,000; AAPL long 100, XYZ short 50, 2 long AAPL calls (Δ 0.50 → 0.52), valued on D1 and D2."""
    pid = await seeder.portfolio(cash="10000.00")
    aapl = await seeder.position(pid, "AAPL", "100", "150", date(2026, 1, 5))
    xyz = await seeder.position(pid, "XYZ", "-50", "40", date(2026, 1, 5))
    call = await seeder.position(
        pid,
        "AAPL270115C00200000",
        "2",
        "5.00",
        date(2026, 1, 5),
        option=("C", "200", date(2027, 1, 15)),
        underlying="AAPL",
    )
    for day, (pa, px, pc, de_call, n_call, pnl) in {
        D1: ("200", "40", "6.00", "20000.00", "40000.00", ("0", "0", "0")),
        D2: ("202", "41", "6.50", "21008.00", "40400.00", ("200.00", "-50.00", "100.00")),
    }.items():
        mv_a = str(Decimal(pa) * 100)
        mv_x = str(Decimal(px) * -50)
        mv_c = str(Decimal(pc) * 200)
        await seeder.valuation(
            aapl, pid, day, last_price=pa, market_value=mv_a, dollar_exposure=mv_a, notional=mv_a, daily_pnl=pnl[0]
        )
        await seeder.valuation(
            xyz,
            pid,
            day,
            last_price=px,
            market_value=mv_x,
            dollar_exposure=mv_x,
            notional=mv_x.lstrip("-"),
            daily_pnl=pnl[1],
        )
        await seeder.valuation(
            call, pid, day, last_price=pc, market_value=mv_c, dollar_exposure=de_call, notional=n_call, daily_pnl=pnl[2]
        )
        await seeder.greek(call, pid, day, dollar_gamma_1pct="161.60", theta=-45.5, vega=88.25, rho=31.0)
    return pid, {"aapl": aapl, "xyz": xyz, "call": call}


def valued(pid: uuid.UUID, day: date, **kw) -> StressComputed:
    """The event the snapshot step starts on: the day's stress step of the portfolio is done."""
    now = utcnow()
    kw.setdefault("step", StepInfo(name="stress_tests", status="completed", started_at=now, finished_at=now))
    return StressComputed(portfolio_id=pid, as_of=day, **kw)


MISSING_ANALYTICS = {"factor_exposures_missing", "risk_metrics_missing", "stress_results_missing"}


async def test_valued_portfolio_gets_a_snapshot_with_both_views_greeks_and_return_chain(harness, seeder) -> None:
    pid, _ = await book(seeder)
    run_id = await seeder.batch_run(D2, backfill=False)
    await harness.deliver(valued(pid, D1, run_id=run_id), valued(pid, D2, run_id=run_id, correlation_id="req_1"))

    rows = await seeder.snapshot(pid)
    assert set(rows) == {D1, D2}
    first, snap = rows[D1], rows[D2]
    assert first["equity"] == Decimal("29200.00") and first["daily_return"] is None
    assert first["cumulative_pnl"] == Decimal("0.00") and first["cumulative_return"] == 0.0
    assert snap["equity"] == Decimal("29450.00") and snap["cash_balance"] == Decimal("10000.00")
    assert not snap["cash_unknown"]
    assert (snap["long_mv"], snap["short_mv"], snap["gross_mv"], snap["net_mv"]) == (
        Decimal("21500.00"),
        Decimal("-2050.00"),
        Decimal("23550.00"),
        Decimal("19450.00"),
    )
    assert (snap["long_exposure"], snap["short_exposure"], snap["gross_exposure"], snap["net_exposure"]) == (
        Decimal("41208.00"),
        Decimal("-2050.00"),
        Decimal("43258.00"),
        Decimal("39158.00"),
    )
    assert snap["notional"] == Decimal("62650.00")
    assert snap["gross_leverage"] == pytest.approx(43258 / 29450)
    assert snap["net_leverage"] == pytest.approx(39158 / 29450)
    # Without trades or flows: equity_t − equity_prev = daily_pnl (calculations.md §9 invariant).
    assert snap["daily_pnl"] == snap["equity"] - first["equity"] == Decimal("250.00")
    assert snap["daily_return"] == pytest.approx(250 / 29200)
    assert snap["cumulative_pnl"] == Decimal("250.00")
    assert snap["cumulative_return"] == pytest.approx(250 / 29200)
    assert snap["realized_pnl_day"] == Decimal("0.00") and snap["net_flows"] == Decimal("0.00")
    assert snap["dollar_delta"] == snap["net_exposure"]
    assert snap["dollar_gamma_1pct"] == Decimal("161.60")
    assert (snap["theta"], snap["vega"], snap["rho"]) == (-45.5, 88.25, 31.0)
    assert (snap["num_positions"], snap["num_long"], snap["num_short"], snap["num_stocks"], snap["num_options"]) == (
        3,
        2,
        1,
        2,
        1,
    )
    assert snap["counts_by_type"] == {"LONG": 1, "SHORT": 1, "LC": 1, "LP": 0, "SC": 0, "SP": 0}
    assert (snap["positions_unpriced"], snap["positions_stale"], snap["options_without_greeks"]) == (0, 0, 0)
    assert snap["source"] == "batch" and snap["run_id"] == run_id
    assert snap["engine_version"] == "stress-1.0.0"
    # No factor, risk or stress results stored for the day: the fields stay NULL and the snapshot says why.
    assert snap["factor_exposures"] is None and snap["var_95_1d"] is None and snap["worst_stress_pnl"] is None
    assert snap["inputs_status"] == "partial" and set(snap["flags"]) == MISSING_ANALYTICS

    # Handlers run concurrently (per-portfolio lock, re-chained rows), so events may arrive in any order.
    events = sorted((e for e in harness.created if e.portfolio_id == pid), key=lambda e: e.snapshot_date)
    assert [e.snapshot_date for e in events] == [D1, D2]
    last = events[-1]
    assert last.step is not None and last.step.name == "snapshots" and last.step.status == "partial"
    assert last.run_id == run_id and last.cascade and last.correlation_id == "req_1" and last.producer == "stress"


async def test_duplicate_delivery_writes_once_and_emits_once(harness, seeder) -> None:
    pid, _ = await book(seeder)
    event = valued(pid, D1)
    await harness.deliver(event, event)
    await harness.deliver(event)
    assert len([e for e in harness.created if e.portfolio_id == pid]) == 1
    rows = await seeder.snapshot(pid)
    assert list(rows) == [D1]


async def test_rerun_of_a_day_replaces_the_row_instead_of_appending(harness, seeder) -> None:
    pid, ids = await book(seeder)
    await harness.deliver(valued(pid, D1))
    first = (await seeder.snapshot(pid))[D1]
    await seeder.execute(
        "UPDATE ingest.position_valuation SET market_value = 20100.00 WHERE position_id = :p AND valuation_date = :d",
        {"p": ids["aapl"], "d": D1},
    )
    await harness.deliver(valued(pid, D1))
    rows = await seeder.snapshot(pid)
    assert list(rows) == [D1]
    assert rows[D1]["id"] == first["id"]
    assert rows[D1]["equity"] == Decimal("29300.00")


async def test_out_of_order_backfill_rechains_later_snapshots(harness, seeder) -> None:
    pid, _ = await book(seeder)
    run_id = await seeder.batch_run(D2, backfill=True)
    await harness.deliver(valued(pid, D2, run_id=run_id))
    early = (await seeder.snapshot(pid))[D2]
    assert early["daily_return"] is None and early["cumulative_return"] == 0.0
    await harness.deliver(valued(pid, D1, run_id=run_id))
    rows = await seeder.snapshot(pid)
    assert rows[D1]["source"] == rows[D2]["source"] == "backfill"
    assert rows[D2]["daily_return"] == pytest.approx(250 / 29200)
    assert rows[D2]["cumulative_return"] == pytest.approx(250 / 29200)
    assert rows[D2]["cumulative_pnl"] == Decimal("250.00")


async def test_positions_closed_today_and_unpriced_positions(harness, seeder) -> None:
    pid = await seeder.portfolio(cash="5000.00")
    held = await seeder.position(pid, "MSFT", "10", "300", date(2026, 1, 5))
    sold = await seeder.position(
        pid, "NVDA", "20", "100", date(2026, 1, 5), status="closed", exit_price="130", exit_date=D2
    )
    unpriced = await seeder.position(pid, "ZZZZ", "5", "10", date(2026, 1, 5))
    for day, price in ((D1, "400"), (D2, "410")):
        mv = str(Decimal(price) * 10)
        await seeder.valuation(
            held,
            pid,
            day,
            last_price=price,
            market_value=mv,
            dollar_exposure=mv,
            notional=mv,
            daily_pnl="100.00" if day == D2 else "0",
        )
    await seeder.valuation(
        sold, pid, D1, last_price="125", market_value="2500.00", dollar_exposure="2500.00", notional="2500.00"
    )
    await seeder.valuation(
        unpriced,
        pid,
        D2,
        last_price=None,
        market_value=None,
        dollar_exposure=None,
        notional=None,
        daily_pnl=None,
        unrealized_pnl=None,
    )
    await harness.deliver(valued(pid, D2))
    snap = (await seeder.snapshot(pid))[D2]
    # NVDA sold today at 130 after closing at 125 yesterday: +100 of the day; realised 20 × (130 − 100).
    assert snap["daily_pnl"] == Decimal("200.00")
    assert snap["realized_pnl_day"] == Decimal("600.00")
    assert snap["num_positions"] == 2 and snap["positions_unpriced"] == 1
    assert snap["equity"] == Decimal("9100.00")
    assert snap["inputs_status"] == "partial"
    event = next(e for e in harness.created if e.portfolio_id == pid)
    assert event.step.status == "partial" and "positions_unpriced" in event.step.error.message


async def test_held_position_without_a_valuation_row_counts_as_unpriced(harness, seeder) -> None:
    pid = await seeder.portfolio()
    await seeder.position(pid, "AMZN", "3", "180", date(2026, 1, 5))
    await harness.deliver(valued(pid, D1))
    snap = (await seeder.snapshot(pid))[D1]
    assert snap["num_positions"] == 1 and snap["positions_unpriced"] == 1 and snap["inputs_status"] == "partial"
    assert snap["equity"] == Decimal("0.00") and snap["gross_leverage"] is None


async def test_non_cascading_stress_event_and_valued_portfolio_update_start_no_snapshot(harness, seeder) -> None:
    pid, _ = await book(seeder)
    await harness.deliver(
        valued(pid, D1, cascade=False),
        PortfolioUpdated(portfolio_id=pid, change="positions", as_of=D1),
        # The snapshot now follows the stress step, not the valuation.
        PortfolioUpdated(portfolio_id=pid, change="valued", as_of=D1),
    )
    assert await seeder.snapshot(pid) is None
    assert not [e for e in harness.created if e.portfolio_id == pid]


async def test_single_step_trigger_snapshots_each_portfolio_and_reports_failures(harness, seeder) -> None:
    pid, _ = await book(seeder)
    missing = uuid.uuid4()
    run_id = uuid.uuid4()
    trigger = CycleStarted(
        as_of=D1, trigger="manual", steps=["snapshots"], portfolio_ids=[pid, missing], cascade=False, run_id=run_id
    )
    await harness.deliver(trigger, CycleStarted(as_of=D1, trigger="manual", steps=["market_data"], portfolio_ids=[pid]))
    assert list(await seeder.snapshot(pid)) == [D1]
    events = {e.portfolio_id: e for e in harness.created if e.run_id == run_id}
    assert set(events) == {pid, missing}
    assert events[pid].step.status == "partial" and not events[pid].cascade
    assert events[missing].step.status == "failed" and events[missing].step.error.code == "PORTFOLIO_NOT_FOUND"
    assert not events[missing].cascade


async def test_non_trading_day_gets_no_snapshot_and_a_failed_step(harness, seeder) -> None:
    pid, _ = await book(seeder)
    await harness.deliver(valued(pid, SATURDAY))
    assert await seeder.snapshot(pid) is None
    event = next(e for e in harness.created if e.portfolio_id == pid)
    assert event.step.status == "failed" and event.step.error.code == "NOT_TRADING_DAY"


async def test_removed_portfolio_has_its_snapshots_purged(harness, seeder) -> None:
    pid, _ = await book(seeder)
    other, _ = await book(seeder)
    await harness.deliver(valued(pid, D1), valued(pid, D2), valued(other, D1))
    await harness.deliver(PortfolioUpdated(portfolio_id=pid, change="removed", as_of=D2))
    assert await seeder.snapshot(pid) is None
    assert list(await seeder.snapshot(other)) == [D1]


async def test_failed_snapshot_leaves_the_transaction_usable_for_other_portfolios(harness, seeder, stress_db) -> None:
    pid, _ = await book(seeder)
    broken = await seeder.portfolio()
    pos = await seeder.position(broken, "BAD", "10", "1", date(2026, 1, 5))
    # A valuation that breaks the capital-view CHECK cannot be stored: the step fails for that portfolio only.
    await seeder.valuation(
        pos, broken, D1, last_price="1", market_value="10.00", dollar_exposure="10.00", notional="-10.00"
    )
    run_id = uuid.uuid4()
    await harness.deliver(
        CycleStarted(as_of=D1, trigger="manual", steps=["snapshots"], portfolio_ids=[pid, broken], run_id=run_id)
    )
    events = {e.portfolio_id: e for e in harness.created if e.run_id == run_id}
    assert events[pid].step.status == "partial"
    assert events[broken].step.status == "failed" and events[broken].step.error.code == "SNAPSHOT_FAILED"
    assert list(await seeder.snapshot(pid)) == [D1]
    assert await seeder.snapshot(broken) is None
    async with stress_db.session() as s:
        pending = (await s.execute(sa.text("SELECT count(*) FROM stress.outbox WHERE published_at IS NULL"))).scalar()
    assert pending == 0


async def test_snapshot_after_a_failed_stress_step_is_marked_partial(harness, seeder) -> None:
    pid, _ = await book(seeder)
    now = utcnow()
    failed = StepInfo(
        name="risk_scenarios",
        status="failed",
        started_at=now,
        finished_at=now,
        error=StepError(code="NOT_CALCULATED", message="no factor model"),
    )
    ok = StepInfo(name="stress_tests", status="completed", started_at=now, finished_at=now)
    await harness.deliver(valued(pid, D1, step=ok, extra_steps=[failed]))
    snap = (await seeder.snapshot(pid))[D1]
    assert snap["inputs_status"] == "partial" and snap["equity"] == Decimal("29200.00")
    assert "upstream_step_failed" in snap["flags"]
    event = next(e for e in harness.created if e.portfolio_id == pid)
    assert event.step.status == "partial" and "upstream_step_failed" in event.step.error.message


async def store_day_analytics(seeder, pid: uuid.UUID, day: date) -> uuid.UUID:
    """Factor exposures, risk metrics and a two-scenario stress run of (pid, day); returns the run id."""
    await seeder.portfolio_exposures(
        pid,
        day,
        {"market": "30000.00", "value": "1200.50", "growth": "-800.25", "interest_rate": "-50000.00"},
        equity="29450.00",
        gross="43258.00",
        coverage=0.95,
    )
    await seeder.execute(
        "INSERT INTO stress.risk_metric (portfolio_id, calculation_date, equity, var_observations, var_95_hist,"
        " var_99_hist, es_95_hist, es_99_hist, ex_ante_volatility, series_type, performance_observations,"
        " max_drawdown, positions_total, positions_included, data_status, engine_version)"
        " VALUES (:p, :d, 29450.00, 252, 512.34, 801.10, 690.00, 900.55, 0.2125, 'realized', 120, -0.0612,"
        " 3, 3, 'fresh', 'test')",
        {"p": pid, "d": day},
    )
    run = uuid.uuid4()
    await seeder.execute(
        "INSERT INTO stress.stress_run (id, portfolio_id, calculation_date, trigger, scenarios_run)"
        " VALUES (:r, :p, :d, 'batch', 2)",
        {"r": run, "p": pid, "d": day},
    )
    await seeder.execute(
        # The run's two results as its one stress_result_set row (read back through stress.stress_result).
        "INSERT INTO stress.stress_result_set (stress_run_id, portfolio_id, calculation_date, scenario_ids,"
        " direct_pnl, direct_linear_pnl, correlated_pnl, correlated_linear_pnl, correlation_effect, direct_pnl_pct,"
        " correlated_pnl_pct, worst_factor, implied_factor_moves, direct_factor_impacts, correlated_factor_impacts,"
        " top_positions, floored_positions, correlated_floored_positions, flags)"
        " SELECT :r, :p, :d, array_agg(id ORDER BY k), array_agg(pnl ORDER BY k), array_agg(pnl ORDER BY k),"
        " array_agg(pnl - 10 ORDER BY k), array_agg(pnl - 10 ORDER BY k), '{NULL,NULL}', '{NULL,NULL}',"
        " '{NULL,NULL}', '{NULL,NULL}', '[null,null]', '[null,null]', '[null,null]', '[null,null]', '{0,0}',"
        " '{0,0}', '[[],[]]' FROM stress.stress_scenario"
        " JOIN (VALUES ('market_crash_35', -9000.00), ('market_up_10', 3000.00)) AS v(k, pnl) ON v.k = scenario_key",
        {"r": run, "p": pid, "d": day},
    )
    return run


async def test_snapshot_carries_factor_exposures_var_volatility_and_worst_stress(harness, seeder) -> None:
    pid, _ = await book(seeder)
    run = await store_day_analytics(seeder, pid, D2)
    await harness.deliver(valued(pid, D1), valued(pid, D2, stress_run_id=run))
    snap = (await seeder.snapshot(pid))[D2]
    assert snap["market_beta_ex_ante"] == pytest.approx(30000 / 29450)
    assert snap["market_exposure"] == Decimal("30000.00")
    assert snap["factor_exposures"] == {
        "market": 30000.0,
        "value": 1200.5,
        "growth": -800.25,
        "interest_rate": -50000.0,
    }
    assert snap["beta_coverage"] == pytest.approx(0.95)
    assert (snap["var_95_1d"], snap["var_99_1d"], snap["es_95_1d"], snap["es_99_1d"]) == (
        Decimal("512.34"),
        Decimal("801.10"),
        Decimal("690.00"),
        Decimal("900.55"),
    )
    assert snap["annualized_volatility"] == pytest.approx(0.2125) and snap["max_drawdown"] == pytest.approx(-0.0612)
    # Worst = lowest correlated P&L of the run.
    assert snap["worst_stress_id"] == "market_crash_35" and snap["worst_stress_pnl"] == Decimal("-9010.00")
    assert snap["inputs_status"] == "complete" and snap["flags"] == []
    event = next(e for e in harness.created if e.portfolio_id == pid and e.snapshot_date == D2)
    assert event.step.status == "completed" and event.step.error is None
    # The day without analytics stays partial and names what was missing.
    assert set((await seeder.snapshot(pid))[D1]["flags"]) == MISSING_ANALYTICS
