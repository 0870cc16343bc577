"""ProForma modelling through the gateway in both running modes (demo.md §10.11 steps 1-5 and 7, users.md PM-07).

The hedge-fund demo user opens a session, shorts QQQ for $250,000 (595 shares at $420) and covers 300
NFLX, calculates, and reads impacts whose market-value figures are exactly the fixture numbers, with
the exposure view moved by the same amounts, equity unchanged and the market beta moved by
(−249,900·β_QQQ + 147,000·β_NFLX) / equity. The session survives a new login, saving it leaves the live
portfolio as it was, and the export view lists SELL_SHORT 595 QQQ and BUY_TO_COVER 300 NFLX. Then the
beta-neutralising suggestion, applied and recalculated, brings the session's market beta within 0.02
of zero. Distributed mode runs the same flow on six `sigmasight serve` processes (RabbitMQ request/reply).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import DEMO_EMAILS, System
from tests.e2e.surface_support import assert_error, bearer, roomy_rate_limit, token, wait_job
from tests.e2e.test_risk_routes import _login, cycled_cluster  # noqa: F401 - the distributed fixture

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSIONS = "/api/v1/modeling/sessions"
BEFORE_MV = {"long": "3952950.00", "short": "-1586750.00", "gross": "5539700.00", "net": "2366200.00"}
AFTER_MV = {"long": "3952950.00", "short": "-1689650.00", "gross": "5642600.00", "net": "2263300.00"}


def money(value: str | None) -> float:
    assert value is not None
    return float(value)


async def call(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], status: int, **kw: Any
) -> Any:
    resp = await client.request(method, url, headers=headers, **kw)
    assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text[:800]}"
    return resp.json()["data"]


async def calculate(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> dict[str, Any]:
    accepted = await call(client, "POST", f"{SESSIONS}/{sid}/calculate", headers, 202)
    assert accepted["job_type"] == "modeling.calculate" and accepted["result_url"] == f"{SESSIONS}/{sid}/impacts"
    job = await wait_job(client, headers, accepted["status_url"], timeout=120)
    assert job["status"] == "completed", job
    return await call(client, "GET", f"{SESSIONS}/{sid}/impacts", headers, 200)


def market(m: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in m["factors"] if f["code"] == "market")


async def demo_session(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> str:
    """Steps 1-4: session, QQQ short by amount, NFLX reduce, calculate; checks the fixture numbers."""
    session = await call(client, "POST", SESSIONS, headers, 201, json={"portfolio_id": pid, "name": "Hedge the beta"})
    sid = session["session_id"]
    assert session["status"] == "active" and session["trade_count"] == 0 and session["impacts_status"] == "none"
    assert session["base"]["market_value"] == BEFORE_MV, session["base"]

    short = await call(
        client, "POST", f"{SESSIONS}/{sid}/trades", headers, 201,
        json={"ticker": "QQQ", "side": "short", "amount": 250000, "tag": "Index Hedge"},
    )  # fmt: skip
    qqq = short["trades"][0]
    assert (qqq["quantity"], qqq["price"], qqq["price_source"]) == ("595", "420.0000", "last_close"), qqq
    assert qqq["resulting_position"] == {
        "symbol": "QQQ", "quantity_before": "0", "quantity_after": "-595", "position_type_after": "SHORT"
    }  # fmt: skip
    assert qqq["trade_value"] == "249900.00" and qqq["tags"] == ["Index Hedge"]

    positions = await call(client, "GET", "/api/v1/positions", headers, 200, params={"limit": "100"})
    nflx = next(p["id"] for p in positions if p["symbol"] == "NFLX")
    over = await client.post(
        f"{SESSIONS}/{sid}/trades", headers=headers, json={"position_id": nflx, "action": "reduce", "quantity": 601}
    )
    assert_error(over, 422, "OVERCOVER")
    cover = await call(
        client, "POST", f"{SESSIONS}/{sid}/trades", headers, 201,
        json={"position_id": nflx, "action": "reduce", "quantity": 300},
    )  # fmt: skip
    assert cover["trades"][0]["side"] == "cover" and cover["trade_version"] == 2
    assert cover["trades"][0]["resulting_position"]["quantity_after"] == "-300"

    impacts = await calculate(client, headers, sid)
    before, after, change = impacts["before"], impacts["after"], impacts["change"]
    assert before["market_value"] == BEFORE_MV and after["market_value"] == AFTER_MV, (before, after)
    assert change["exposure"] == {"long": "0.00", "short": "-102900.00", "gross": "102900.00", "net": "-102900.00"}
    assert change["market_value"]["short"] == "-102900.00" and after["equity"] == before["equity"] == "3501500.00"
    assert impacts["changes_summary"] == ["SHORT 595 QQQ @ 420.00", "COVER 300 NFLX"]
    assert impacts["stale"] is False and impacts["trade_version"] == 2
    assert after["position_count"] == before["position_count"] + 1 and len(after["stress"]) == 5
    assert money(after["risk"]["var_95_1d"]) > 0 and after["risk"]["annualized_volatility"] > 0

    # PM-07 AC1: the market beta moves by (−249,900·β_QQQ + 147,000·β_NFLX) / equity, betas as reported.
    reported = await call(
        client, "GET", f"/api/v1/factors/exposures/{pid}/positions", headers, 200, params={"limit": "100"}
    )
    beta = {p["underlying_symbol"]: p["betas"]["market"] for p in reported}
    moved = (-249900 * beta["QQQ"] + 147000 * beta["NFLX"]) / money(before["equity"])
    assert market(after)["beta"] == pytest.approx(market(before)["beta"] + moved, abs=1e-3)
    await engines_agree_with_the_daily_run(client, headers, pid, before)
    return sid


async def engines_agree_with_the_daily_run(
    client: httpx.AsyncClient, headers: dict[str, str], pid: str, before: dict[str, Any]
) -> None:
    """The "before" book through rpc.factors/stress.evaluate gives the stored numbers of the live portfolio."""
    live = await call(client, "GET", "/api/v1/portfolio", headers, 200)
    assert {k: before["exposure"][k] for k in ("long", "short", "gross", "net")} == {
        k: live["exposure"][k] for k in ("long", "short", "gross", "net")
    }
    assert before["notional"] == live["notional"]
    factors = await call(client, "GET", f"/api/v1/factors/exposures/{pid}", headers, 200)
    stored = {f["code"]: f for f in factors["factors"]}
    for f in before["factors"]:
        if f["status"] == "ok":
            assert f["beta"] == pytest.approx(stored[f["code"]]["beta"], abs=1e-5), f
    results = await call(client, "GET", f"/api/v1/risk/stress-testing/results/{pid}", headers, 200)
    correlated = {r["scenario_id"]: money(r["correlated_pnl"]) for r in results["results"]}
    for row in before["stress"]:
        assert money(row["correlated_pnl"]) == pytest.approx(correlated[row["scenario_id"]], abs=0.02), row
    metrics = await call(client, "GET", "/api/v1/risk/metrics", headers, 200)
    var = {(v["method"], v["confidence"], v["horizon_days"]): money(v["amount"]) for v in metrics["var"]}
    assert money(before["risk"]["var_95_1d"]) == pytest.approx(var[("historical", 0.95, 1)], abs=0.02)
    assert money(before["risk"]["var_95_1d_parametric"]) == pytest.approx(var[("parametric", 0.95, 1)], abs=0.02)


async def demo_flow(client: httpx.AsyncClient, headers: dict[str, str], relogin: dict[str, str]) -> str:
    """demo.md §10.11 steps 1-5 and 7 for the hedge-fund user."""
    me = await call(client, "GET", "/api/v1/auth/me", headers, 200)
    pid = next(p["id"] for p in me["portfolios"] if p["is_default"])
    live = await call(client, "GET", "/api/v1/portfolio", headers, 200)
    sid = await demo_session(client, headers, pid)

    # Step 5 (PM-07 AC5): the same trades after a new login; not visible to another user.
    state = await call(client, "GET", f"{SESSIONS}/{sid}", relogin, 200, params={"include": "positions"})
    assert [t["ticker"] for t in state["trades"]] == ["QQQ", "NFLX"] and state["impacts_status"] == "ready"
    assert {p["symbol"]: p["quantity"] for p in state["positions"]}["QQQ"] == "-595"
    assert state["last_job"]["status"] == "completed"

    early = await client.post(
        f"{SESSIONS}/{sid}/trades", headers=headers, json={"ticker": "ZZNOPE", "side": "buy", "quantity": 1}
    )
    assert_error(early, 422, "UNKNOWN_SYMBOL")

    # Step 7 (PM-07 AC3): saved, read-only, and the live portfolio unchanged.
    saved = await call(client, "POST", f"{SESSIONS}/{sid}/save", headers, 200, json={"name": "Hedge the beta (saved)"})
    assert saved["status"] == "saved" and saved["trade_count"] == 2 and saved["after"]["market_value"] == AFTER_MV
    again = await client.post(
        f"{SESSIONS}/{sid}/trades", headers=headers, json={"ticker": "SPY", "side": "buy", "quantity": 1}
    )
    assert_error(again, 409, "SESSION_NOT_ACTIVE")
    now = await call(client, "GET", "/api/v1/portfolio", headers, 200)
    assert now["market_value"] == live["market_value"] and now["equity"] == live["equity"]
    listed = await call(client, "GET", SESSIONS, headers, 200, params={"status": "saved", "portfolio_id": pid})
    mine = next(s for s in listed if s["session_id"] == sid)
    assert (mine["name"], mine["trade_count"], mine["status"]) == ("Hedge the beta (saved)", 2, "saved")
    return str(sid)


async def beta_neutral_flow(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The SPY hedge proposed for neutralize_beta, applied and recalculated, leaves |beta| ≤ 0.02."""
    session = await call(client, "POST", SESSIONS, headers, 201, json={"name": "Beta neutral"})
    sid = session["session_id"]
    stale = await client.post(f"{SESSIONS}/{sid}/save", headers=headers)
    assert_error(stale, 409, "IMPACTS_STALE")
    proposal = await call(
        client, "POST", f"{SESSIONS}/{sid}/suggestions", headers, 200, json={"goal": "neutralize_beta"}
    )
    best = proposal["suggestions"][0]
    assert best["instrument"] == "SPY" and all(t["ticker"] == "SPY" for t in best["trades"]), best
    assert abs(market(best["impact"]["after"])["beta"]) <= 0.02, best["impact"]["after"]
    await call(client, "POST", f"{SESSIONS}/{sid}/trades", headers, 201, json={"trades": best["trades"]})
    impacts = await calculate(client, headers, sid)
    assert abs(market(impacts["after"])["beta"]) <= 0.02, market(impacts["after"])
    assert market(impacts["before"])["beta"] > 0.1, "the demo book has a clearly positive beta to neutralise"
    assert impacts["after"]["equity"] == impacts["before"]["equity"]

    # Hedges with ETFs nobody holds (betas regressed in memory by rpc.factors.evaluate, passed on to stress).
    size = await call(
        client,
        "POST",
        f"{SESSIONS}/{sid}/suggestions",
        headers,
        200,
        json={"goal": "neutralize_factor", "factor": "size"},
    )
    (hedge,) = size["suggestions"]
    factor = next(f for f in hedge["impact"]["after"]["factors"] if f["code"] == "size")
    assert hedge["instrument"] == "IWM" and abs(factor["beta"]) <= 0.001, (hedge["sizing"], factor)
    stress = await call(
        client, "POST", f"{SESSIONS}/{sid}/suggestions", headers, 200, json={"goal": "reduce_stress_loss"}
    )
    best = stress["suggestions"][0]
    worst_before = money(best["impact"]["before"]["stress"][0]["correlated_pnl"])
    worst_after = money(best["impact"]["after"]["stress"][0]["correlated_pnl"])
    assert best["target_met"] and worst_after >= 0.5 * worst_before - float(best["sizing"]["price"]), best["sizing"]

    # Cancelling ends the session without saving: still readable, no longer changeable.
    cancelled = await client.delete(f"{SESSIONS}/{sid}", headers=headers)
    assert cancelled.status_code == 204, cancelled.text
    assert (await call(client, "GET", f"{SESSIONS}/{sid}", headers, 200))["status"] == "cancelled"
    assert_error(await client.delete(f"{SESSIONS}/{sid}", headers=headers), 409, "SESSION_NOT_ACTIVE")


# --------------------------------------------------------------------------------------- all-in-one


async def test_modeling_demo_script_and_beta_hedge_all_in_one(system: System) -> None:
    async with roomy_rate_limit(system), system.client() as client:
        headers = bearer(await token(system, DEMO_EMAILS["hedgefund"]))
        relogin = bearer(await system.token(DEMO_EMAILS["hedgefund"]))
        sid = await demo_flow(client, headers, relogin)
        await beta_neutral_flow(client, headers)
        other = bearer(await token(system, DEMO_EMAILS["individual"]))
        assert_error(await client.get(f"{SESSIONS}/{sid}", headers=other), 404, "SESSION_NOT_FOUND")
    rows = await system.inner.db.fetch(
        "SELECT t.side, t.quantity, t.symbol, t.open_close, t.trade_no FROM ingest.api_modeling_trade t "
        "JOIN ingest.api_modeling_session s ON s.id = t.session_id "
        "WHERE s.name = 'Hedge the beta (saved)' ORDER BY t.trade_no"
    )
    assert [(r["side"], int(r["quantity"]), r["symbol"], r["open_close"], r["trade_no"]) for r in rows] == [
        ("SELL_SHORT", 595, "QQQ", "O", 1),
        ("BUY_TO_COVER", 300, "NFLX", "C", 2),
    ]


# --------------------------------------------------------------------------------------- distributed


@pytest.mark.slow
async def test_modeling_demo_script_and_beta_hedge_distributed(cycled_cluster: Cluster) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=cycled_cluster.gateway_url, timeout=60) as client:
        first, second = await asyncio.gather(
            _login(client, DEMO_EMAILS["hedgefund"], "demo12345"), _login(client, DEMO_EMAILS["hedgefund"], "demo12345")
        )
        await demo_flow(client, bearer(first), bearer(second))
        await beta_neutral_flow(client, bearer(first))
