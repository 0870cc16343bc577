"""The factors step on PostgreSQL (api.md §5.2–5.3, calculations.md §4): the three demo books valued on
T0 = 2026-11-24 over the demo.md §7 fixture market (factor ETFs and DGS10 included).

`portfolio.updated` valued → matrices, regressions, position and portfolio exposures and one
`factors.computed` per portfolio; a second delivery changes nothing; a failing portfolio is marked
failed while the others complete; `removed` purges the rows; single-step `cycle.started` triggers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from tests.conftest import make_migrated_database, worker_suffix

from common.bus import InProcessBus
from common.db import Database
from common.events import CycleStarted, FactorsComputed, PortfolioUpdated, PricesUpdated
from common.testing import drop_database
from factors import repository
from factors.main import create_service
from factors.settings import Settings
from ingest.demo_data import DEMO_BOOKS, HEDGE_FUND, HIGH_NET_WORTH, INDIVIDUAL
from ingest.seed import seed as seed_ingest
from marketdata.fixture import market_for
from marketdata.seed import seed as seed_marketdata
from marketdata.settings import Settings as MarketDataSettings

pytestmark = pytest.mark.integration

T0 = date(2026, 11, 24)
HISTORY = 300  # sessions of prices loaded (≥ 253 for the 252-return window)
SECRET = "factors-pipeline-tests-secret-0123456789abcdef"
CALL_DELTA, PUT_DELTA = 0.55, -0.35
HF, IND, HNW = (b.portfolio_id for b in (HEDGE_FUND, INDIVIDUAL, HIGH_NET_WORTH))
FACTOR_TABLES = (
    "factors.position_factor_exposure",
    "factors.portfolio_factor_exposure",
    "factors.underlying_factor_beta",
    "factors.underlying_regression",
    "factors.factor_matrix_cell",
    "factors.factor_matrix",
    "factors.correlation_calculation",
    "factors.processed_event",
)


async def load_market_and_valuations(db: Database) -> None:
    """Fixture closes and DGS10 for the last HISTORY sessions, and each demo position valued on T0
    (stocks E = q·S; options E = q·m·Δ·S with a fixed per-type delta)."""
    fm = market_for(T0)
    lo = len(fm.dates) - HISTORY
    dates = fm.dates[lo:]
    async with db.transaction() as s:
        known = {r[0] for r in (await s.execute(sa.text("SELECT symbol FROM marketdata.security"))).all()}
        prices = [
            (sym, d, round(float(c), 4), round(float(c), 4), "fixture")
            for sym, series in fm.series.items()
            if sym in known
            for d, c in zip(dates, series.close[lo:].tolist(), strict=True)
        ]
        raw = await (await s.connection()).get_raw_connection()
        conn = raw.driver_connection
        await conn.copy_records_to_table(
            "daily_price",
            schema_name="marketdata",
            records=prices,
            columns=["symbol", "price_date", "close", "adj_close", "source"],
        )
        rates = [
            ("DGS10", d, float(v), "fixture")
            for d, v in zip(dates, fm.rates["DGS10"][lo:].tolist(), strict=True)
            if np.isfinite(v)
        ]
        await conn.copy_records_to_table(
            "rate_observation",
            schema_name="marketdata",
            records=rates,
            columns=["series_id", "observation_date", "value", "source"],
        )
        positions = (
            await s.execute(
                sa.text(
                    "SELECT id, portfolio_id, symbol, quantity, multiplier, underlying_symbol, option_type "
                    "FROM ingest.position WHERE status = 'open'"
                )
            )
        ).all()
        close = {sym: float(series.close[-1]) for sym, series in fm.series.items()}
        rows = []
        for pid, portfolio_id, symbol, qty, mult, underlying, option_type in positions:
            q, m = float(qty), float(mult or 1)
            mv = q * m * close[symbol]
            if option_type is None:
                exposure = mv
            else:
                delta = CALL_DELTA if option_type == "C" else PUT_DELTA
                exposure = q * m * delta * close[underlying]
            rows.append({"id": pid, "p": portfolio_id, "mv": round(mv, 2), "e": round(exposure, 2)})
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position_valuation (position_id, valuation_date, portfolio_id, market_value, "
                "dollar_exposure) VALUES (:id, :d, :p, :mv, :e)"
            ),
            [r | {"d": T0} for r in rows],
        )


@pytest.fixture(scope="module")
async def db_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"sigmasight_factor_pipeline_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, ("marketdata", "ingest", "factors"))
    db = Database(url, pool_size=2)
    from factors.seed import seed as seed_factors

    await seed_marketdata(db, MarketDataSettings())
    await seed_ingest(db)
    await seed_factors(db)
    await load_market_and_valuations(db)
    await db.close()
    yield url
    await drop_database(pg_admin_url, name)


class Env:
    """The real factors service on an InProcessBus, with the published factors.computed collected."""

    def __init__(self, url: str) -> None:
        self.db = Database(url, pool_size=4)
        self.bus = InProcessBus()
        self.service = create_service(Settings(jwt_secret=SECRET, database_url=url), self.db, self.bus)
        self.computed: list[FactorsComputed] = []

        async def collect(evt: FactorsComputed) -> None:
            self.computed.append(evt)

        self.bus.subscribe("test", FactorsComputed, collect)

    async def deliver(self, *events: Any) -> None:
        for evt in events:
            await self.bus.publish(evt)
        await self.bus.drain()

    async def rows(self, sql: str, **params: object) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            return [dict(r) for r in (await s.execute(sa.text(sql), params)).mappings().all()]

    async def count(self, table: str, **where: object) -> int:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
        async with self.db.session() as s:
            return int((await s.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {clause}"), where)).scalar_one())


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    e = Env(db_url)
    async with e.db.transaction() as s:
        await s.execute(sa.text(f"TRUNCATE {', '.join(FACTOR_TABLES)} CASCADE"))
    await e.bus.start()
    yield e
    await e.bus.close()
    await e.db.close()


def valued(portfolio_id: uuid.UUID, run_id: uuid.UUID | None = None, cascade: bool = True) -> PortfolioUpdated:
    return PortfolioUpdated(portfolio_id=portfolio_id, change="valued", as_of=T0, run_id=run_id, cascade=cascade)


async def test_valued_event_builds_the_model_exposures_and_one_factors_computed(env: Env) -> None:
    run = uuid.uuid4()
    event = valued(HF, run)
    await env.deliver(event)

    [computed] = env.computed
    assert computed.portfolio_id == HF and computed.run_id == run and computed.cascade is True
    assert computed.step is not None and computed.step.name == "factors" and computed.step.status == "completed"
    assert [s.name for s in computed.extra_steps] == ["correlations"]
    assert computed.extra_steps[0].status == "completed" and computed.correlation_calculation_id is not None
    hf_positions = len(HEDGE_FUND.positions)
    assert computed.coverage["positions_total"] == hf_positions and computed.step.records_processed == hf_positions

    matrices = await env.rows("SELECT id, basis, observations, factor_codes FROM factors.factor_matrix")
    assert {m["basis"] for m in matrices} == {"model", "raw"}
    model = next(m for m in matrices if m["basis"] == "model")
    assert computed.matrix_id == model["id"] and model["observations"] >= 240
    assert model["factor_codes"][0] == "market" and "interest_rate" in model["factor_codes"]
    assert await env.count("factors.factor_matrix_cell", matrix_id=model["id"]) == len(model["factor_codes"]) ** 2

    # Every held underlying of the three books is regressed once (options by their underlying).
    held = await env.rows("SELECT DISTINCT underlying_symbol AS s FROM ingest.position WHERE status = 'open'")
    regressions = await env.rows("SELECT symbol, beta_source, quality_flag FROM factors.underlying_regression")
    assert {r["symbol"] for r in regressions} == {r["s"] for r in held}
    spy = await env.rows(
        "SELECT factor_code, beta, r_squared FROM factors.api_underlying_beta WHERE symbol = 'SPY' ORDER BY factor_code"
    )
    betas = {r["factor_code"]: r for r in spy}
    # §4.6: SPY has market beta 1, every style beta 0 and R² 1 exactly (styles are orthogonal to SPY).
    assert betas["market"]["beta"] == pytest.approx(1.0, abs=1e-9)
    assert betas["market"]["r_squared"] == pytest.approx(1.0, abs=1e-9)
    assert all(abs(betas[c]["beta"]) < 1e-8 for c in ("value", "growth", "momentum", "quality", "size"))

    # Position rows: E × β per factor; portfolio rows: Σ of the positions, β = X / V.
    positions = await env.rows(
        "SELECT position_id, factor_code, exposure, beta, exposure_dollar FROM factors.api_position_factor_exposure "
        "WHERE portfolio_id = :p",
        p=HF,
    )
    assert len(positions) == hf_positions * 8
    for r in positions:
        assert float(r["exposure_dollar"]) == pytest.approx(float(r["exposure"]) * r["beta"], abs=0.01)
    portfolio = {
        r["factor_code"]: r
        for r in await env.rows("SELECT * FROM factors.api_portfolio_factor_exposure WHERE portfolio_id = :p", p=HF)
    }
    assert set(portfolio) == {d.code for d in await _definitions(env)}
    market = portfolio["market"]
    summed = sum(float(r["exposure_dollar"]) for r in positions if r["factor_code"] == "market")
    assert float(market["exposure_dollar"]) == pytest.approx(summed, abs=0.05)
    assert market["beta"] == pytest.approx(float(market["exposure_dollar"]) / float(market["equity"]), rel=1e-6)
    gross = sum(abs(float(r["exposure"])) for r in positions if r["factor_code"] == "market")
    assert float(market["gross_exposure"]) == pytest.approx(gross, abs=0.05)
    assert market["status"] == "ok" and 0 < market["coverage_pct"] <= 1
    assert portfolio["short_interest"]["status"] == "not_calculated"
    assert portfolio["short_interest"]["exposure_dollar"] is None
    # V = C + Σ MV (§2.1): the demo hedge fund is worth 3,501,500.00 on the fixture closes (api.md #21).
    equity = await env.rows(
        "SELECT pf.cash_balance + sum(v.market_value) AS v FROM ingest.portfolio pf "
        "JOIN ingest.position_valuation v ON v.portfolio_id = pf.id AND v.valuation_date = :d "
        "WHERE pf.id = :p GROUP BY pf.cash_balance",
        p=HF,
        d=T0,
    )
    assert float(market["equity"]) == pytest.approx(float(equity[0]["v"]), abs=0.05)
    assert float(market["equity"]) == pytest.approx(3_501_500.00, abs=0.05)


async def _definitions(env: Env) -> list[repository.FactorDef]:
    async with env.db.session() as s:
        return await repository.factor_definitions(s)


async def test_a_second_delivery_changes_nothing(env: Env) -> None:
    event = valued(IND)
    await env.deliver(event)
    before = await env.rows(
        "SELECT position_id, factor_ids, exposure_dollars, created_at FROM factors.position_factor_exposure "
        "ORDER BY position_id"
    )
    await env.deliver(event)
    after = await env.rows(
        "SELECT position_id, factor_ids, exposure_dollars, created_at FROM factors.position_factor_exposure "
        "ORDER BY position_id"
    )
    assert len(env.computed) == 1 and before == after and before


async def test_a_run_without_correlations_reports_only_the_factors_step(env: Env) -> None:
    # api.md #9 `include_correlations: false`: the run's params (marketdata.api_batch_run) leave the step out.
    run = uuid.uuid4()
    async with env.db.transaction() as s:
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.batch_run (id, job_name, trigger, as_of_date, cascade, force, "
                "include_correlations, params, steps, scope_hash, status, created_at, updated_at) VALUES "
                "(:id, 'run_all', 'manual', :d, true, false, false, CAST(:params AS jsonb), :steps, :h, 'running', "
                "now(), now())"
            ),
            {
                "id": run,
                "d": T0,
                "params": '{"include_correlations": false}',
                "steps": ["market_data", "greeks", "aggregations", "factors"],
                "h": run.bytes,
            },
        )
    await env.deliver(valued(IND, run))
    [computed] = env.computed
    assert computed.step is not None and computed.step.name == "factors" and computed.step.status == "completed"
    assert computed.extra_steps == [] and computed.correlation_calculation_id is None
    assert await env.count("factors.correlation_calculation", portfolio_id=IND) == 0
    assert await env.count("factors.portfolio_factor_exposure", portfolio_id=IND) > 0


async def test_valued_without_cascade_is_ignored(env: Env) -> None:
    await env.deliver(valued(IND, cascade=False))
    assert env.computed == [] and await env.count("factors.portfolio_factor_exposure") == 0


async def test_one_failing_portfolio_is_marked_failed_while_the_others_complete(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = repository.valuations

    async def broken(session: Any, *, portfolio_ids: Any, as_of: date) -> repository.Valuations:
        if IND in portfolio_ids:
            raise RuntimeError("valuation read failed")
        return await original(session, portfolio_ids=portfolio_ids, as_of=as_of)

    monkeypatch.setattr(repository, "valuations", broken)
    run = uuid.uuid4()
    await env.deliver(valued(HF, run), valued(IND, run), valued(HNW, run))
    by_portfolio = {e.portfolio_id: e for e in env.computed}
    assert set(by_portfolio) == {HF, IND, HNW}
    failed = by_portfolio[IND].step
    assert failed is not None and failed.status == "failed" and failed.error is not None
    assert failed.error.code == "FACTORS_FAILED" and "valuation read failed" in failed.error.message
    for pid in (HF, HNW):
        step = by_portfolio[pid].step
        assert step is not None and step.status == "completed"
        assert await env.count("factors.portfolio_factor_exposure", portfolio_id=pid) == 9
    assert await env.count("factors.portfolio_factor_exposure", portfolio_id=IND) == 0


async def test_removed_purges_the_portfolio_rows(env: Env) -> None:
    await env.deliver(valued(HNW))
    assert await env.count("factors.position_factor_exposure", portfolio_id=HNW) > 0
    removed = PortfolioUpdated(portfolio_id=HNW, change="removed", as_of=T0)
    await env.deliver(removed)
    await env.deliver(removed)  # idempotent
    for table in (
        "factors.position_factor_exposure",
        "factors.portfolio_factor_exposure",
        "factors.correlation_calculation",
    ):
        assert await env.count(table, portfolio_id=HNW) == 0
    # The market model is shared by every portfolio and stays.
    assert await env.count("factors.underlying_regression") > 0


async def test_single_step_triggers_report_their_step_with_the_cascade(env: Env) -> None:
    factors_only = CycleStarted(
        trigger="manual", steps=["factors"], portfolio_ids=[IND], as_of=T0, run_id=uuid.uuid4(), cascade=False
    )
    await env.deliver(factors_only)
    [evt] = env.computed
    assert evt.step is not None and evt.step.name == "factors" and evt.extra_steps == [] and evt.cascade is False
    assert await env.count("factors.correlation_calculation") == 0

    correlations = CycleStarted(
        trigger="manual",
        steps=["correlations"],
        portfolio_ids=None,
        params={"duration_days": 60},
        as_of=T0,
        run_id=uuid.uuid4(),
        cascade=True,
    )
    await env.deliver(correlations)
    events = env.computed[1:]
    assert {e.portfolio_id for e in events} == {HF, IND, HNW}
    for e in events:
        assert e.step is not None and e.step.name == "correlations" and e.extra_steps == [] and e.cascade is True
    durations = await env.rows("SELECT DISTINCT duration_days FROM factors.correlation_calculation")
    assert [r["duration_days"] for r in durations] == [60]


async def test_factor_history_shorter_than_60_fails_the_step_with_a_clear_code(env: Env) -> None:
    # A date early in the loaded history has fewer than 60 factor returns before it.
    early = (await env.rows("SELECT min(price_date) + 40 AS d FROM marketdata.daily_price"))[0]["d"]
    day = (
        await env.rows("SELECT max(trading_date) AS d FROM marketdata.trading_day WHERE trading_date <= :d", d=early)
    )[0]["d"]
    await env.deliver(PortfolioUpdated(portfolio_id=IND, change="valued", as_of=day, cascade=True))
    [evt] = env.computed
    assert evt.step is not None and evt.step.status == "failed"
    assert evt.step.error is not None and evt.step.error.code == "INSUFFICIENT_FACTOR_HISTORY"
    assert await env.count("factors.factor_matrix") == 0


async def test_compute_time_of_the_three_demo_books(env: Env) -> None:
    pipeline = env.service.app.state.pipeline
    ids = [b.portfolio_id for b in DEMO_BOOKS]
    timings = []
    for _ in range(2):  # the first run builds the model; the second reuses it
        async with env.db.transaction() as s:
            started = time.perf_counter()
            outcomes = await pipeline.compute_portfolios(s, portfolio_ids=ids, as_of=T0, run_id=None)
            timings.append(time.perf_counter() - started)
        assert all(o.factors is not None and o.factors.status == "completed" for o in outcomes.values())
    print(f"compute_portfolios(3 demo books): cold {timings[0] * 1000:.0f} ms, warm {timings[1] * 1000:.0f} ms")
    assert await env.count("factors.portfolio_factor_exposure") == 27


async def test_prices_updated_builds_the_dates_model_before_any_portfolio_is_valued(env: Env) -> None:
    run = uuid.uuid4()
    prices = PricesUpdated(as_of=T0, run_id=run, portfolio_ids=[HF, IND, HNW], cascade=True)
    await env.deliver(prices)

    # api.md §5.2: the model and the regressions of every held underlying exist, no factors.computed yet.
    assert env.computed == []
    [model] = await env.rows("SELECT id, run_id FROM factors.factor_matrix WHERE basis = 'model'")
    assert model["run_id"] == run
    held = await env.rows("SELECT DISTINCT underlying_symbol AS s FROM ingest.position WHERE status = 'open'")
    regressed = await env.rows("SELECT symbol FROM factors.underlying_regression WHERE calculation_date = :d", d=T0)
    assert {r["symbol"] for r in regressed} == {r["s"] for r in held}
    regressions = await env.count("factors.underlying_regression")

    # The valued batch uses that model (no second build); a repeated prices.updated changes nothing.
    await env.deliver(valued(HF, run), prices)
    [computed] = env.computed
    assert computed.matrix_id == model["id"] and computed.step is not None and computed.step.status == "completed"
    assert await env.count("factors.factor_matrix", basis="model") == 1
    assert await env.count("factors.underlying_regression") == regressions


async def test_prices_updated_without_cascade_or_without_a_model_changes_nothing(env: Env) -> None:
    await env.deliver(PricesUpdated(as_of=T0, cascade=False))
    assert await env.count("factors.factor_matrix") == 0
    # Not a trading day: only logged here (each portfolio's factors step reports it); the claim commits.
    saturday = PricesUpdated(as_of=date(2026, 11, 21), cascade=True)
    await env.deliver(saturday)
    assert await env.count("factors.factor_matrix") == 0
    assert not env.bus.dead_letters
    assert await env.count("factors.processed_event", event_id=saturday.event_id) == 1
