"""Routes #33 (risk metrics) and #36–#40 (stress testing) on a real PostgreSQL, after one daily stress
step of the Example 7 book (api.md §4.4, §4.5; calculations.md §5, §6, §8)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from tests.integration.stress.conftest import SECRET
from tests.integration.stress.stress_dataset import (
    AS_OF,
    EQUITY,
    EXAMPLE8_DAY,
    EXPOSURES,
    Book,
    seed_book,
    seed_example8,
    seed_market,
)

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.events import FactorsComputed, StepInfo
from common.formatting import utcnow
from stress.main import create_service
from stress.settings import Settings

pytestmark = pytest.mark.integration

METRICS = "/api/v1/risk/metrics"
SCENARIOS = "/api/v1/risk/stress-testing/scenarios"
DIRECT = "/api/v1/risk/stress-testing/direct-impact"
CORRELATED = "/api/v1/risk/stress-testing/correlated-impact"
COMPREHENSIVE = "/api/v1/risk/stress-testing/comprehensive"
RESULTS = "/api/v1/risk/stress-testing/results/{}"


@dataclass
class Setup:
    client: httpx.AsyncClient
    owner: uuid.UUID
    other: uuid.UUID
    book: Book
    unvalued: uuid.UUID  # owner's second portfolio: no factor exposures, no stress run, no metrics
    example8_owner: uuid.UUID
    example8: uuid.UUID
    batch_run: uuid.UUID  # the daily run's stress_run id (#39 calls add later runs of the same date)

    def headers(self, user: uuid.UUID) -> dict[str, str]:
        token = issue_access_token(Principal(user_id=user, email="u@example.com", role="user"), SECRET, 3600)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, user: uuid.UUID | None = None, **params) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(user or self.owner))

    async def post(self, path: str, body: dict, user: uuid.UUID | None = None, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers(user or self.owner) | headers)


@pytest.fixture(scope="module")
async def setup(stress_db, seeder, calendar_days) -> AsyncIterator[Setup]:
    await seed_market(seeder, calendar_days)
    owner, other, example8_owner = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    book = await seed_book(seeder, owner)
    unvalued = await seeder.portfolio(user_id=owner, is_default=False)
    example8 = await seed_example8(seeder, example8_owner)
    await seeder.portfolio(user_id=other)
    bus = InProcessBus()
    service = create_service(Settings(jwt_secret=SECRET), stress_db, bus)
    await bus.start()
    await service.start()
    now = utcnow()
    step = StepInfo(name="factors", status="completed", started_at=now, finished_at=now)
    await bus.publish(FactorsComputed(portfolio_id=book.portfolio_id, as_of=AS_OF, run_id=uuid.uuid4(), step=step))
    await bus.drain()
    [run] = await seeder.rows("SELECT id FROM stress.stress_run WHERE portfolio_id = :p", {"p": book.portfolio_id})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as client:
        yield Setup(client, owner, other, book, unvalued, example8_owner, example8, run["id"])
    await service.stop()
    await bus.close()


def error(resp: httpx.Response) -> dict:
    return resp.json()["error"]


# -- #36 scenario catalogue -------------------------------------------------------------------


async def test_catalogue_lists_the_18_scenarios_in_display_order(setup) -> None:
    resp = await setup.get(SCENARIOS, limit=500)
    assert resp.status_code == 200
    items = resp.json()["data"]
    assert len(items) == 18 and resp.json()["page"]["total"] == 18
    assert [i["scenario_id"] for i in items[:2]] == ["market_up_10", "market_down_10"]
    liquidity = next(i for i in items if i["scenario_id"] == "liquidity_crisis")
    assert liquidity["shocks"] == {"market": -0.20, "low_volatility": -0.30, "quality": 0.15, "size": -0.10}
    assert (liquidity["category"], liquidity["severity"], liquidity["active"]) == ("volatility", "severe", True)
    dotcom = next(i for i in items if i["scenario_id"] == "dotcom_crash_2000")
    assert dotcom["historical_period"] == {"start_date": "2000-03-10", "end_date": "2002-10-09"}


async def test_catalogue_filters_sorts_and_pages(setup) -> None:
    rates = (await setup.get(SCENARIOS, category="rates")).json()["data"]
    assert len(rates) == 5 and {i["category"] for i in rates} == {"rates"}
    extreme = (await setup.get(SCENARIOS, severity="extreme,mild", sort="-name")).json()["data"]
    assert {i["severity"] for i in extreme} == {"extreme", "mild"} and len(extreme) == 3 + 4
    names = [i["name"] for i in extreme]
    assert names == sorted(names, reverse=True)
    page = (await setup.get(SCENARIOS, limit=5, offset=15)).json()
    assert len(page["data"]) == 3 and page["page"]["has_more"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "crypto"}, "category"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"sort": "shock"}, "sort"),
        ({"limit": "501"}, "limit"),
        ({"active_only": "maybe"}, "active_only"),
    ],
)
async def test_catalogue_rejects_bad_query_values(setup, params, field) -> None:
    resp = await setup.get(SCENARIOS, **params)
    assert resp.status_code == 422 and error(resp)["code"] == "VALIDATION_ERROR"
    assert field in str(error(resp)["details"])


# -- #37 direct impact -------------------------------------------------------------------------


async def test_direct_impact_reproduces_example_7(setup) -> None:
    resp = await setup.post(DIRECT, {"scenario_id": "liquidity_crisis"})
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["portfolio_id"] == str(setup.book.portfolio_id) and data["method"] == "direct"
    assert data["calculation_date"] == data["factor_exposures_date"] == AS_OF.isoformat()
    assert (data["direct_pnl"], data["linear_pnl"], data["nonlinear_adjustment"]) == ("-4639.90", "-6651.93", "2012.03")
    assert data["equity"] == f"{EQUITY:.2f}"
    assert data["direct_pnl_pct"] == pytest.approx(-4639.90 / EQUITY, abs=1e-6)
    impacts = {f["factor"]: f["pnl"] for f in data["factor_impacts"]}
    assert impacts == {"market": "-27142.80", "low_volatility": "13277.89", "quality": "6919.47", "size": "293.51"}
    by_position = {p["position_id"]: p for p in data["top_position_impacts"]}
    assert by_position[str(setup.book.stock_a)]["pnl"] == "-8000.00"
    assert by_position[str(setup.book.stock_b)]["pnl"] == "7000.00"
    # The call is repriced with Black-Scholes at S = 92, next to its linear (delta) P&L.
    assert by_position[str(setup.book.call)]["pnl"] == "-3639.90"
    assert by_position[str(setup.book.call)]["linear_pnl"] == "-5651.93"
    assert data["flags"] == [] and data["floored_positions"] == 0


async def test_direct_impact_of_a_custom_scenario_with_floor_and_loss_beyond_equity(setup) -> None:
    # Market −95 %: STRA (β 1.1) is floored at −100 %, the short STRB (β 1.3) gains its full value.
    body = {"portfolio_id": str(setup.book.portfolio_id), "scenario": {"name": "wipe-out", "shocks": {"market": -0.95}}}
    data = (await setup.post(DIRECT, body)).json()["data"]
    pnl = {p["position_id"]: float(p["pnl"]) for p in data["top_position_impacts"]}
    assert pnl[str(setup.book.stock_a)] == -100_000.0 and pnl[str(setup.book.stock_b)] == 40_000.0
    # A long call can lose at most its premium (market value 4,751.07).
    assert -4751.07 <= pnl[str(setup.book.call)] < -4700
    # Both underlyings hit the floor (STRB: 1.3 × −0.95 = −1.235).
    assert data["floored_positions"] == 2
    assert float(data["linear_pnl"]) == pytest.approx(-0.95 * EXPOSURES["market"], abs=0.01)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "VALIDATION_ERROR"),
        ({"scenario_id": "market_down_10", "scenario": {"name": "x", "shocks": {"market": -0.1}}}, 422, None),
        ({"scenario": {"name": "x", "shocks": {"short_interest": 0.1}}}, 422, "UNKNOWN_FACTOR"),
        ({"scenario": {"name": "x", "shocks": {"market": -1.5}}}, 422, "VALIDATION_ERROR"),
        ({"scenario": {"name": "x", "shocks": {"interest_rate": 0.06}}}, 422, "VALIDATION_ERROR"),
        ({"scenario_id": "alien_invasion"}, 404, "SCENARIO_NOT_FOUND"),
    ],
)
async def test_direct_impact_rejects_bad_bodies(setup, body, status, code) -> None:
    resp = await setup.post(DIRECT, body)
    assert resp.status_code == status
    if code:
        assert error(resp)["code"] == code


async def test_impact_routes_hide_other_users_portfolios_and_need_factor_exposures(setup) -> None:
    for path in (DIRECT, CORRELATED):
        body = {"portfolio_id": str(setup.book.portfolio_id), "scenario_id": "market_down_10"}
        resp = await setup.post(path, body, user=setup.other)
        assert resp.status_code == 404 and error(resp)["code"] == "PORTFOLIO_NOT_FOUND"
        resp = await setup.post(path, {"portfolio_id": str(setup.unvalued), "scenario_id": "market_down_10"})
        assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED" and error(resp)["hint"]


# -- #38 correlated impact ---------------------------------------------------------------------


async def test_correlated_impact_reproduces_example_8(setup) -> None:
    body = {"portfolio_id": str(setup.example8), "scenario_id": "value_rotation_20"}
    resp = await setup.post(CORRELATED, body, user=setup.example8_owner)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["method"] == "correlated" and data["factor_exposures_date"] == EXAMPLE8_DAY.isoformat()
    assert (data["direct_pnl"], data["correlated_pnl"], data["correlation_effect"]) == (
        "-17000.00",
        "-6406.25",
        "10593.75",
    )
    assert {f["factor"]: f["pnl"] for f in data["correlated_factor_impacts"]} == {
        "value": "-11875.00",
        "growth": "5468.75",
    }
    moves = data["implied_factor_moves"]
    assert moves["momentum"] == pytest.approx(-0.0754688, abs=1e-7)
    assert moves["quality"] == pytest.approx(0.0470313, abs=1e-7)
    assert moves["market"] == pytest.approx(0.0, abs=1e-12)  # the market is uncorrelated with the styles
    assert data["matrix"]["calculation_date"] == EXAMPLE8_DAY.isoformat()


async def test_single_factor_scenario_has_no_correlation_effect(setup) -> None:
    body = {"portfolio_id": str(setup.example8), "scenario": {"name": "value only", "shocks": {"value": 0.20}}}
    data = (await setup.post(CORRELATED, body, user=setup.example8_owner)).json()["data"]
    assert data["direct_pnl"] == data["correlated_pnl"] == "-10000.00" and data["correlation_effect"] == "0.00"
    moves = data["implied_factor_moves"]
    assert (moves["growth"], moves["momentum"], moves["quality"]) == pytest.approx((-0.150, -0.105, 0.035))


async def test_correlated_impact_with_an_unknown_matrix_is_not_found(setup) -> None:
    body = {"scenario_id": "market_down_10", "matrix_id": str(uuid.uuid4())}
    resp = await setup.post(CORRELATED, body)
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED"


# -- #39 comprehensive run (async job) and #40 stored results ----------------------------------


async def test_comprehensive_run_is_a_job_that_completes_and_stores_its_results(setup) -> None:
    resp = await setup.post(COMPREHENSIVE, {"categories": ["rates"]})
    assert resp.status_code == 202
    accepted = resp.json()["data"]
    assert accepted["job_type"] == "stress.comprehensive" and resp.headers["Location"] == accepted["status_url"]
    job: dict = {}
    for _ in range(100):
        job = (await setup.get(accepted["status_url"])).json()["data"]
        if job["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed"
    run_id = job["result"]["stress_run_id"]
    assert accepted["result_url"].endswith(f"stress_run_id={run_id}") and job["result"]["scenarios"] == 5
    results = (await setup.get(RESULTS.format(setup.book.portfolio_id), stress_run_id=run_id)).json()["data"]
    assert results["run"]["trigger"] == "api" and results["run"]["scenarios"] == 5
    assert {r["category"] for r in results["results"]} == {"rates"}
    # Rates Up 100bp: X_R·0.01 is the linear part (X_R = −401,298.20).
    up = next(r for r in results["results"] if r["scenario_id"] == "rates_up_100bp")
    assert float(up["linear_pnl"]) == pytest.approx(EXPOSURES["interest_rate"] * 0.01, abs=0.01)


async def test_comprehensive_with_prefer_wait_returns_the_results(setup) -> None:
    resp = await setup.post(COMPREHENSIVE, {"scenario_ids": ["market_down_10", "market_crash_35"]}, Prefer="wait=5")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert [r["scenario_id"] for r in data["results"]] == ["market_crash_35", "market_down_10"]
    assert data["summary"]["worst_scenario"] == "market_crash_35" and data["run"]["trigger"] == "api"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"scenario_ids": ["alien_invasion"]}, "SCENARIO_NOT_FOUND"),
        ({"categories": ["crypto"]}, "VALIDATION_ERROR"),
    ],
)
async def test_comprehensive_rejects_unknown_scenarios_and_categories(setup, body, code) -> None:
    resp = await setup.post(COMPREHENSIVE, body)
    assert resp.status_code in (404, 422) and error(resp)["code"] == code


async def test_comprehensive_needs_an_own_calculable_portfolio(setup) -> None:
    resp = await setup.post(COMPREHENSIVE, {"portfolio_id": str(setup.book.portfolio_id)}, user=setup.other)
    assert resp.status_code == 404 and error(resp)["code"] == "PORTFOLIO_NOT_FOUND"
    resp = await setup.post(COMPREHENSIVE, {"portfolio_id": str(setup.unvalued)})
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED"


async def test_results_of_the_daily_run_are_sorted_worst_first_with_a_summary(setup) -> None:
    batch = await setup.get(RESULTS.format(setup.book.portfolio_id), stress_run_id=str(setup.batch_run))
    assert batch.status_code == 200
    data = batch.json()["data"]
    assert data["run"]["trigger"] == "batch" and data["run"]["scenarios"] == 18 and len(data["results"]) == 18
    pnl = [float(r["correlated_pnl"]) for r in data["results"]]
    assert pnl == sorted(pnl)
    assert data["summary"]["worst_case_pnl"] == data["results"][0]["correlated_pnl"]
    assert data["summary"]["scenarios_negative"] == sum(p < 0 for p in pnl)
    liquidity = next(r for r in data["results"] if r["scenario_id"] == "liquidity_crisis")
    assert (liquidity["direct_pnl"], liquidity["correlated_pnl"], liquidity["correlation_effect"]) == (
        "-4639.90",
        "-4639.90",
        "0.00",
    )
    historical = await setup.get(
        RESULTS.format(setup.book.portfolio_id), stress_run_id=str(setup.batch_run), category="historical", sort="name"
    )
    names = [r["name"] for r in historical.json()["data"]["results"]]
    assert len(names) == 3 and names == sorted(names)
    assert historical.json()["data"]["category_breakdown"]["historical"]["count"] == 3


async def test_results_errors(setup) -> None:
    resp = await setup.get(RESULTS.format(setup.book.portfolio_id), user=setup.other)
    assert resp.status_code == 404 and error(resp)["code"] == "PORTFOLIO_NOT_FOUND"
    resp = await setup.get(RESULTS.format(setup.unvalued))
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED" and error(resp)["hint"]
    resp = await setup.get(RESULTS.format(setup.book.portfolio_id), stress_run_id=str(uuid.uuid4()))
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED"
    resp = await setup.get(RESULTS.format(setup.book.portfolio_id), sort="luck")
    assert resp.status_code == 422 and error(resp)["code"] == "VALIDATION_ERROR"


# -- #33 risk metrics --------------------------------------------------------------------------


async def test_risk_metrics_of_the_daily_run(setup) -> None:
    resp = await setup.get(METRICS, portfolio_id=str(setup.book.portfolio_id))
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["calculation_date"] == AS_OF.isoformat() and data["equity"] == f"{EQUITY:.2f}"
    var = {(v["confidence"], v["horizon_days"], v["method"]): float(v["amount"]) for v in data["var"]}
    assert len(var) == 8
    for method in ("historical", "parametric"):
        for confidence in (0.95, 0.99):
            # §8.4: 10-day = 1-day × √10 (within the 2-dp rounding of both).
            assert var[(confidence, 10, method)] == pytest.approx(var[(confidence, 1, method)] * 10**0.5, abs=0.02)
        assert var[(0.99, 1, method)] > var[(0.95, 1, method)] > 0
    es = {(e["confidence"], e["horizon_days"], e["method"]): float(e["amount"]) for e in data["expected_shortfall"]}
    # §8.3: parametric ES / VaR = φ(z)/(1 − α)/z.
    ratio = es[(0.95, 1, "parametric")] / var[(0.95, 1, "parametric")]
    assert ratio == pytest.approx(2.062713 / 1.644854, rel=1e-3)
    assert data["var_window"]["observations"] == 252 and data["var_window"]["limited_history"] is False
    assert data["beta"]["ex_ante"] == pytest.approx(EXPOSURES["market"] / EQUITY, abs=1e-6)
    assert data["performance"]["series_type"] == "simulated_history" and "simulated_history" in data["flags"]
    assert data["performance"]["max_drawdown"] <= 0
    assert data["rate_sensitivity"]["exposure_dollar"] == f"{EXPOSURES['interest_rate']:.2f}"
    assert float(data["rate_sensitivity"]["dv01"]) == pytest.approx(EXPOSURES["interest_rate"] / 10_000, abs=0.005)
    scenarios = {s["scenario"]: s for s in data["market_scenarios"]}
    assert len(scenarios) == 10
    assert float(scenarios["market_down_10"]["linear_pnl"]) == pytest.approx(-0.1 * EXPOSURES["market"], abs=0.01)
    # §5.3 invariant: the −10 % market scenario equals the stored market_down_10 stress result.
    stored = (await setup.get(RESULTS.format(setup.book.portfolio_id), stress_run_id=str(setup.batch_run))).json()[
        "data"
    ]["results"]
    stress_down = next(r for r in stored if r["scenario_id"] == "market_down_10")
    assert scenarios["market_down_10"]["predicted_pnl"] == stress_down["direct_pnl"]
    # With a long call the book is convex: up-moves gain more than down-moves lose.
    assert float(scenarios["market_up_10"]["nonlinear_adjustment"]) > 0
    assert float(scenarios["market_down_10"]["nonlinear_adjustment"]) > 0


async def test_risk_metrics_filters_confidence_and_horizon(setup) -> None:
    resp = await setup.get(METRICS, portfolio_id=str(setup.book.portfolio_id), confidence="0.99", horizon_days="1")
    data = resp.json()["data"]
    assert {(v["confidence"], v["horizon_days"]) for v in data["var"]} == {(0.99, 1)}
    assert {(e["confidence"], e["horizon_days"]) for e in data["expected_shortfall"]} == {(0.99, 1)}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"confidence": "0.9"}, "confidence"), ({"horizon_days": "5"}, "horizon_days"), ({"include": "x"}, "include")],
)
async def test_risk_metrics_rejects_unsupported_values(setup, params, field) -> None:
    resp = await setup.get(METRICS, portfolio_id=str(setup.book.portfolio_id), **params)
    assert resp.status_code == 422 and error(resp)["code"] == "VALIDATION_ERROR"
    assert field in str(error(resp)["details"])


async def test_risk_metrics_errors(setup) -> None:
    resp = await setup.get(METRICS, setup.other, portfolio_id=str(setup.book.portfolio_id))
    assert resp.status_code == 404 and error(resp)["code"] == "PORTFOLIO_NOT_FOUND"
    resp = await setup.get(METRICS, portfolio_id=str(setup.unvalued))
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED" and error(resp)["hint"]
    resp = await setup.get(
        METRICS, portfolio_id=str(setup.book.portfolio_id), as_of_date=date(2026, 11, 13).isoformat()
    )
    assert resp.status_code == 404 and error(resp)["code"] == "NOT_CALCULATED"
