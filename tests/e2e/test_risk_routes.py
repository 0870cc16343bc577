"""Every route of api.md §4.4–§4.6 works for the three demo users, in both running modes.

After one daily cycle, each demo user reads every risk route of their default portfolio through the
gateway — factor exposures (#31/#45, #32/#46), risk metrics (#33), the factor matrix (#34), the
scenario catalogue (#36), stored stress results (#40), position correlations (#41, #42) — and runs
one direct (#37) and one correlated (#38) stress. The answers must be 200 with sane content, agree
with each other where two routes serve the same numbers, and match the stored stress run.
All-in-one mode uses the session `system`; distributed mode starts six `sigmasight serve`
processes on PostgreSQL + RabbitMQ (tests/e2e/cluster.py), runs the cycle there and checks the same.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DEMO_EMAILS,
    E2E_ENV,
    FIXTURE_AS_OF,
    System,
    run_cycle_via_api,
)
from tests.e2e.surface_support import assert_correlation_matrix, bearer, roomy_rate_limit, token

from allinone.compose import seed_all
from common.db import Database

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AS_OF = FIXTURE_AS_OF.isoformat()
LONG_ONLY = {"individual", "hnw"}  # demo.md: no shorts and no options in these two books
MODEL_FACTORS = ["market", "momentum", "value", "growth", "quality", "size", "low_volatility", "interest_rate"]
CATEGORIES = {"market", "rates", "rotation", "volatility", "historical"}


def cents(value: str | None) -> float:
    assert value is not None
    return float(value)


async def get(client: httpx.AsyncClient, headers: dict[str, str], url: str, **params: str) -> Any:
    """GET through the gateway; asserts 200 and the success envelope; returns the whole body."""
    resp = await client.get(url, headers=headers, params=params)
    assert resp.status_code == 200, f"{url} {params}: {resp.status_code} {resp.text[:600]}"
    body = resp.json()
    assert body["meta"]["request_id"], body["meta"]
    return body


async def post(client: httpx.AsyncClient, headers: dict[str, str], url: str, body: dict[str, Any]) -> Any:
    resp = await client.post(url, headers=headers, json=body)
    assert resp.status_code == 200, f"{url} {body}: {resp.status_code} {resp.text[:600]}"
    return resp.json()["data"]


# --------------------------------------------------------------------------------------- checks


def check_factor_exposures(who: str, data: dict[str, Any], portfolio_id: str) -> dict[str, dict[str, Any]]:
    """#31/#45: nine registry factors in display order, Short Interest listed but not calculated."""
    assert data["portfolio_id"] == portfolio_id and data["calculation_date"] == AS_OF, data
    assert data["data_status"] == "fresh", data["data_status"]
    factors = {f["code"]: f for f in data["factors"]}
    assert len(data["factors"]) == 9 and set(factors) == {*MODEL_FACTORS, "short_interest"}, list(factors)
    short = factors["short_interest"]
    assert short["status"] == "not_calculated" and short["beta"] is None and short["exposure_dollar"] is None
    assert short["reason"], short
    for code in MODEL_FACTORS:
        assert factors[code]["status"] == "ok" and factors[code]["beta"] is not None, factors[code]
    market = factors["market"]
    # beta = exposure_dollar / equity and beta_gross = exposure_dollar / gross (api.md §3.4).
    assert market["beta"] == pytest.approx(cents(market["exposure_dollar"]) / cents(data["equity"]), rel=1e-3)
    assert market["beta_gross"] == pytest.approx(
        cents(market["exposure_dollar"]) / cents(data["gross_exposure"]), rel=1e-3
    )
    if who in LONG_ONLY:
        assert market["beta"] > 0, market
        assert cents(data["gross_exposure"]) == pytest.approx(cents(data["equity"]), abs=0.01), data
    assert data["window"]["observations"] >= 60, data["window"]
    return factors


def check_position_exposures(body: dict[str, Any], positions: int) -> None:
    """#32/#46: one item per position, exposure_dollar.<code> = dollar_exposure × betas.<code>."""
    items = body["data"]
    assert body["page"]["total"] == positions == len(items), (body["page"], positions)
    for item in items:
        assert set(item["betas"]) == set(MODEL_FACTORS), item["betas"]
        assert item["beta_source"] in ("regression", "default") and item["quality_flag"], item
        expected = cents(item["dollar_exposure"]) * item["betas"]["market"]
        assert cents(item["exposure_dollar"]["market"]) == pytest.approx(expected, rel=1e-3, abs=1.0), item


def check_risk_metrics(data: dict[str, Any], portfolio_id: str, market_beta: float) -> None:
    """#33: VaR99 ≥ VaR95 > 0 per method, ES ≥ VaR, 10-day = 1-day × √10, ex-ante beta = #31's market beta."""
    assert data["portfolio_id"] == portfolio_id and data["calculation_date"] == AS_OF, data
    var = {(v["method"], v["confidence"], v["horizon_days"]): cents(v["amount"]) for v in data["var"]}
    es = {(v["method"], v["confidence"], v["horizon_days"]): cents(v["amount"]) for v in data["expected_shortfall"]}
    assert len(var) == len(es) == 8, sorted(var)
    for method in ("historical", "parametric"):
        for days in (1, 10):
            assert var[(method, 0.99, days)] >= var[(method, 0.95, days)] > 0, (method, days, var)
            for alpha in (0.95, 0.99):
                assert es[(method, alpha, days)] >= var[(method, alpha, days)], (method, alpha, days)
        for alpha in (0.95, 0.99):
            assert var[(method, alpha, 10)] == pytest.approx(var[(method, alpha, 1)] * 10**0.5, rel=1e-4)
    assert data["var_window"]["observations"] >= 60, data["var_window"]
    assert data["beta"]["ex_ante"] == pytest.approx(market_beta, rel=1e-3, abs=1e-4), data["beta"]
    assert data["volatility"]["ex_ante_annual"] > 0, data["volatility"]
    scenarios = {s["scenario"]: s for s in data["market_scenarios"]}
    assert len(scenarios) == 10, sorted(scenarios)  # market ±5/10/20 %, rates ±100/200 bp
    if market_beta > 0:
        down = [s for s in data["market_scenarios"] if s["kind"] == "market" and s["shock"] < 0]
        assert down and all(cents(s["linear_pnl"]) < 0 for s in down), down


def check_stress_results(data: dict[str, Any], portfolio_id: str) -> dict[str, dict[str, Any]]:
    """#40: the batch run of the cycle, 18 scenarios, worst first, summary over correlated P&L."""
    assert data["portfolio_id"] == portfolio_id, data["portfolio_id"]
    run = data["run"]
    assert run["calculation_date"] == AS_OF and run["trigger"] == "batch" and run["partial"] is False, run
    rows = data["results"]
    assert run["scenarios"] == len(rows) == 18, run
    pnls = [cents(r["correlated_pnl"]) for r in rows]
    assert pnls == sorted(pnls), "results must be sorted worst first"
    summary = data["summary"]
    assert summary["worst_scenario"] == rows[0]["scenario_id"] and cents(summary["worst_case_pnl"]) == pnls[0]
    assert summary["scenarios_negative"] + summary["scenarios_positive"] <= 18, summary
    assert set(data["category_breakdown"]) == CATEGORIES, data["category_breakdown"]
    for row in rows:
        effect = cents(row["correlated_pnl"]) - cents(row["direct_pnl"])
        assert cents(row["correlation_effect"]) == pytest.approx(effect, abs=0.02), row["scenario_id"]
    return {r["scenario_id"]: r for r in rows}


def check_position_correlations(metrics: dict[str, Any], matrix: dict[str, Any], portfolio_id: str) -> None:
    """#41 and #42 read the same stored calculation; the matrix is square, symmetric, unit diagonal."""
    assert metrics["portfolio_id"] == portfolio_id and metrics["calculation_date"] == AS_OF, metrics
    assert metrics["calculation_id"] == matrix["calculation_id"], (metrics["calculation_id"], matrix["calculation_id"])
    assert metrics["duration_days"] == matrix["duration_days"] == 90
    assert metrics["data_quality"] == "sufficient", metrics["data_quality"]
    nodes = matrix["nodes"]
    assert len(nodes) == metrics["node_filters"]["nodes_included"] >= 2, (len(nodes), metrics["node_filters"])
    assert [n["symbol"] for n in nodes] == sorted(n["symbol"] for n in nodes)
    assert_correlation_matrix(matrix["correlations"], len(nodes))
    assert len(matrix["observations_matrix"]) == len(nodes)
    assert 1.0 <= metrics["effective_positions"] <= len(nodes) + 1e-9, metrics["effective_positions"]
    assert -1.0 <= metrics["overall_correlation"] <= 1.0
    assert 0.0 <= metrics["correlation_concentration_score"] <= 1.0


async def check_user(client: httpx.AsyncClient, who: str, headers: dict[str, str]) -> None:
    """Every read route of §4.4–§4.6 plus one direct and one correlated stress, for one demo user."""
    me = (await get(client, headers, "/api/v1/auth/me"))["data"]
    pid = next(p["id"] for p in me["portfolios"] if p["is_default"])
    positions = (await get(client, headers, "/api/v1/positions", limit="500"))["page"]["total"]

    risk_factors = (await get(client, headers, "/api/v1/risk/factors"))["data"]
    factors = check_factor_exposures(who, risk_factors, pid)
    by_id = (await get(client, headers, f"/api/v1/factors/exposures/{pid}"))["data"]
    assert by_id == risk_factors, "#31 and #45 serve the same exposures"

    by_query = await get(client, headers, "/api/v1/risk/factors/positions", limit="1000")
    check_position_exposures(by_query, positions)
    by_path = await get(client, headers, f"/api/v1/factors/exposures/{pid}/positions", limit="1000")
    assert by_path["data"] == by_query["data"], "#32 and #46 serve the same position exposures"

    metrics = (await get(client, headers, "/api/v1/risk/metrics"))["data"]
    check_risk_metrics(metrics, pid, factors["market"]["beta"])

    matrix = (await get(client, headers, "/api/v1/risk/correlations/factors/matrix"))["data"]
    assert matrix["factors"] == MODEL_FACTORS and matrix["basis"] == "model", matrix["factors"]
    assert_correlation_matrix(matrix["correlations"], 8)
    assert matrix["calculation_date"] == AS_OF

    scenarios = await get(client, headers, "/api/v1/risk/stress-testing/scenarios")
    assert scenarios["page"]["total"] == len(scenarios["data"]) == 18, scenarios["page"]
    assert {s["category"] for s in scenarios["data"]} == CATEGORIES

    stored = check_stress_results(
        (await get(client, headers, f"/api/v1/risk/stress-testing/results/{pid}"))["data"], pid
    )
    assert set(stored) == {s["scenario_id"] for s in scenarios["data"]}

    corr_metrics = (await get(client, headers, "/api/v1/risk/correlations/positions/metrics"))["data"]
    corr_matrix = (await get(client, headers, "/api/v1/risk/correlations/positions/matrix"))["data"]
    check_position_correlations(corr_metrics, corr_matrix, pid)

    # #37: one factor moved, linear P&L = market dollar exposure × shock; the stored batch run agrees.
    direct = await post(client, headers, "/api/v1/risk/stress-testing/direct-impact", {"scenario_id": "market_down_10"})
    assert direct["portfolio_id"] == pid and direct["method"] == "direct", direct
    expected_linear = cents(factors["market"]["exposure_dollar"]) * -0.10
    assert cents(direct["linear_pnl"]) == pytest.approx(expected_linear, abs=0.02), direct
    assert cents(direct["direct_pnl"]) == pytest.approx(cents(stored["market_down_10"]["direct_pnl"]), abs=0.02)
    if who in LONG_ONLY:
        assert cents(direct["direct_pnl"]) < 0 and direct["nonlinear_adjustment"] == "0.00", direct

    # #38: a five-factor replay; the other factors move with the shocked ones. Same numbers as the stored run.
    correlated = await post(
        client, headers, "/api/v1/risk/stress-testing/correlated-impact", {"scenario_id": "dotcom_crash_2000"}
    )
    assert correlated["method"] == "correlated" and correlated["portfolio_id"] == pid, correlated
    assert set(correlated["implied_factor_moves"]) == set(MODEL_FACTORS) - set(correlated["scenario"]["shocks"])
    effect = cents(correlated["correlated_pnl"]) - cents(correlated["direct_pnl"])
    assert cents(correlated["correlation_effect"]) == pytest.approx(effect, abs=0.02), correlated
    replay = stored["dotcom_crash_2000"]
    assert cents(correlated["correlated_pnl"]) == pytest.approx(cents(replay["correlated_pnl"]), abs=0.02)
    assert cents(correlated["direct_pnl"]) == pytest.approx(cents(replay["direct_pnl"]), abs=0.02)


async def check_every_demo_user(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    for who in DEMO_EMAILS:
        await check_user(client, who, bearer(tokens[who]))


# --------------------------------------------------------------------------------------- all-in-one


async def test_risk_routes_work_for_every_demo_user_all_in_one(system: System) -> None:
    tokens = {who: await token(system, email) for who, email in DEMO_EMAILS.items()}
    async with roomy_rate_limit(system), system.client() as client:
        await check_every_demo_user(client, tokens)


# --------------------------------------------------------------------------------------- distributed


@pytest.fixture(scope="module")
async def cycled_cluster(pg_admin_url: str, amqp_url: str) -> AsyncIterator[Cluster]:
    """Six service processes on a fresh seeded database, after one completed daily cycle."""
    name = f"sigmasight_risk_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name)
    db = Database(url, pool_size=2)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in E2E_ENV.items():
            mp.setenv(key, value)
        mp.setenv("SIGMASIGHT_DATA_DIR", tempfile.mkdtemp(prefix="sigmasight-risk-"))
        await seed_all(db, url)
    log_dir = Path(tempfile.mkdtemp(prefix="sigmasight-risk-logs-"))
    cluster = make_cluster(url, amqp_url, f"risk{uuid.uuid4().hex[:8]}", log_dir, E2E_ENV)
    try:
        for svc in cluster.ports:
            cluster.start(svc)
        await cluster.wait_ready()
        async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=30) as client:
            admin = await _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
            job = await run_cycle_via_api(client, admin, {"as_of_date": AS_OF}, timeout=120)
            assert job["status"] == "completed", (job, cluster.tail("factors"), cluster.tail("stress"))
        yield cluster
    finally:
        cluster.stop()
        await cluster.delete_queues()
        await db.close()
        await drop_database(pg_admin_url, name)


async def _login(client: httpx.AsyncClient, email: str, password: str) -> str:
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["access_token"])


@pytest.mark.slow
async def test_risk_routes_work_for_every_demo_user_distributed(cycled_cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cycled_cluster.gateway_url, timeout=30) as client:
        tokens = dict(
            zip(
                DEMO_EMAILS,
                await asyncio.gather(*(_login(client, email, "demo12345") for email in DEMO_EMAILS.values())),
                strict=True,
            )
        )
        await check_every_demo_user(client, tokens)
