"""Onboarding of uploaded portfolios through the HTTP API (api.md #61-#64) on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from test_upload_support import TODAY, Env, fixture_bytes, start_env

from ingest.onboarding import completion

pytestmark = pytest.mark.integration

HEADER = "ticker,quantity,entry_price,entry_date,tags\n"


@pytest.fixture(scope="module")
async def env(pg_admin_url: str) -> AsyncIterator[Env]:
    mp = pytest.MonkeyPatch()
    try:
        async for e in start_env(pg_admin_url, f"sigmasight_onboarding_{uuid.uuid4().hex[:8]}", mp):
            yield e
    finally:
        mp.undo()


async def uploaded(env: Env, user: uuid.UUID, content: bytes, **fields: object) -> tuple[str, dict]:
    r = await env.upload(user, content, **fields)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "completed", data
    return data["portfolio_id"], data


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_demo_individual_upload_preview_validate_complete(env: Env) -> None:
    user = env.user()
    pid, data = await uploaded(env, user, fixture_bytes("demo_individual.csv"), portfolio_name="Uploaded Individual")
    assert data["summary"]["rows_valid"] == 16 and data["summary"]["positions_created"] == 16
    assert data["positions_by_type"]["LONG"] == 16
    assert data["tags"] == {"created": ["Core Holdings", "Tech Growth", "Dividend Income"], "reused": []}
    h = env.headers(user)

    r = await env.client.get(f"/api/v1/portfolio/onboarding/{pid}/preview", params={"limit": 100}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    preview = body["data"]
    assert body["meta"]["as_of"] == "2026-11-25" and body["meta"]["data_source"] == "fixture"
    assert (preview["status"], preview["name"], preview["upload_id"]) == (
        "onboarding",
        "Uploaded Individual",
        data["upload_id"],
    )
    assert preview["totals"] == {
        "positions": 16,
        "by_type": {"LONG": 16, "SHORT": 0, "LC": 0, "LP": 0, "SC": 0, "SP": 0},
        "market_value": {"long": "485000.00", "short": "0.00", "gross": "485000.00", "net": "485000.00"},
        "cost_basis": "485000.00",
        "priced_with_entry": 0,
    }
    assert [c["step"] for c in preview["collection"]] == [
        "security_master",
        "current_prices",
        "price_history",
        "option_inputs",
    ]
    assert [c["status"] for c in preview["collection"]] == ["completed", "completed", "completed", "skipped"]
    assert preview["tags"] == {"created": ["Core Holdings", "Tech Growth", "Dividend Income"], "reused": []}
    assert body["page"] == {"limit": 100, "offset": 0, "total": 16, "has_more": False}
    aapl = next(p for p in preview["positions"] if p["symbol"] == "AAPL")
    assert {
        k: aapl[k]
        for k in (
            "quantity",
            "entry_price",
            "last_price",
            "market_value",
            "cost_basis",
            "unrealized_pnl",
            "priced_with",
            "price_source",
            "price_date",
            "sector",
            "security_type",
            "dollar_exposure",
            "notional",
            "option",
            "greeks",
            "issues",
        )
    } == {
        "quantity": "85",
        "entry_price": "225.0000",
        "last_price": "225.0000",
        "market_value": "19125.00",
        "cost_basis": "19125.00",
        "unrealized_pnl": "0.00",
        "priced_with": "close",
        "price_source": "close",
        "price_date": "2026-11-25",
        "sector": "Technology",
        "security_type": "stock",
        "dollar_exposure": "19125.00",
        "notional": "19125.00",
        "option": None,
        "greeks": None,
        "issues": [],
    }
    assert sorted(t["name"] for t in aapl["tags"]) == ["Core Holdings", "Tech Growth"]
    assert sum(p["weight"] for p in preview["positions"]) == pytest.approx(1.0)

    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/validate", headers=h)
    report = r.json()["data"]
    assert report["ready"] is True
    assert [(c["check"], c["status"], c["blocking"]) for c in report["checks"]] == [
        ("positions", "pass", True),
        ("security_master", "pass", True),
        ("classification", "pass", False),
        ("current_prices", "pass", True),
        ("price_history", "pass", False),
        ("option_inputs", "skip", False),
        ("factor_definitions", "pass", True),
    ]
    details = {c["check"]: c["detail"] for c in report["checks"]}
    assert details["positions"] == "16 open positions"
    assert details["security_master"] == "16/16 symbols known"
    assert details["current_prices"] == "close within 5 trading days for 16/16"
    assert details["factor_definitions"] == "7 active factors + interest rate, proxies priced >= 60 days"

    env.events.clear()
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=h)
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["job_type"] == "onboarding.complete" and job["job_id"].startswith("ing_")
    assert job["result_url"] == f"/api/v1/portfolio?portfolio_id={pid}"
    status = await env.db.fetchrow("SELECT status, onboarded_at FROM ingest.portfolio WHERE id = $1", uuid.UUID(pid))
    assert status["status"] == "active" and status["onboarded_at"] is not None
    await env.bus.drain()
    onboarded = [e for e in env.events if str(e.portfolio_id) == pid]
    assert [(e.change, e.trigger) for e in onboarded] == [("onboarded", "onboarding")]
    assert "AAPL" in onboarded[0].symbols and len(onboarded[0].symbols) == 16

    # The job waits for the first run's snapshot; simulate marketdata's run and stress's snapshot.
    running = await env.client.get(f"/api/v1/jobs/{job['job_id']}", headers=h)
    assert running.json()["data"]["status"] in ("queued", "running")
    run_id = uuid.uuid4()
    await env.execute(
        "INSERT INTO marketdata.batch_run (id, portfolio_ids, status, as_of_date) VALUES ($1, $2, 'running', $3)",
        run_id,
        [uuid.UUID(pid)],
        TODAY,
    )

    async def run_seen() -> bool:
        steps = await env.fetch(
            "SELECT step, status, details FROM ingest.onboarding_step WHERE portfolio_id = $1 AND step = 'initial_run'",
            uuid.UUID(pid),
        )
        return steps[0]["details"] is not None

    await wait_for(run_seen)
    await env.execute(
        "INSERT INTO stress.portfolio_snapshot (portfolio_id, snapshot_date, equity) VALUES ($1, $2, 485000)",
        uuid.UUID(pid),
        TODAY,
    )
    finished = await env.job(user, job["job_id"])
    assert finished["status"] == "completed"
    assert finished["result"]["first_snapshot_date"] == "2026-11-25"
    assert finished["result"]["run_id"] == str(run_id)
    assert finished["steps"] == [
        {"name": "initial_run", "status": "completed"},
        {"name": "first_snapshot", "status": "completed"},
    ]
    again = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=h)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "INVALID_STATE")
    for path, method in (("validate", "post"), ("preview", "get"), ("retry", "post")):
        r = await getattr(env.client, method)(f"/api/v1/portfolio/onboarding/{pid}/{path}", headers=h)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "INVALID_STATE")


async def test_missing_prices_block_completion_and_retry_rechecks_the_failed_step(env: Env) -> None:
    user = env.user()
    h = env.headers(user)
    pid, _ = await uploaded(env, user, (HEADER + "NOPX,100,12.00,2026-03-02,\nAAPL,10,225,2026-03-02,\n").encode())
    preview = (await env.client.get(f"/api/v1/portfolio/onboarding/{pid}/preview", headers=h)).json()["data"]
    steps = {c["step"]: (c["status"], c["attempts"]) for c in preview["collection"]}
    assert steps["current_prices"] == ("failed", 1) and steps["price_history"] == ("failed", 1)
    nopx = next(p for p in preview["positions"] if p["symbol"] == "NOPX")
    assert (nopx["priced_with"], nopx["last_price"], nopx["market_value"], nopx["price_source"]) == (
        "entry",
        "12.0000",
        "1200.00",
        None,
    )
    assert [i["code"] for i in nopx["issues"]] == ["NO_CURRENT_PRICE", "SHORT_HISTORY"]
    assert preview["totals"]["priced_with_entry"] == 1

    report = (await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/validate", headers=h)).json()["data"]
    checks = {c["check"]: c for c in report["checks"]}
    assert report["ready"] is False
    assert checks["current_prices"]["status"] == "fail" and checks["current_prices"]["symbols"] == ["NOPX"]
    assert checks["price_history"]["status"] == "warn"

    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=h)
    err = r.json()["error"]
    assert (r.status_code, err["code"]) == (409, "NOT_READY")
    assert [d["check"] for d in err["details"]] == ["current_prices"]
    assert await env.fetchval("SELECT status FROM ingest.portfolio WHERE id = $1", uuid.UUID(pid)) == "onboarding"

    r = await env.client.post(
        f"/api/v1/portfolio/onboarding/{pid}/retry", json={"steps": ["current_prices"]}, headers=h
    )
    assert r.status_code == 202, r.text
    job = await env.job(user, r.json()["data"]["job_id"])
    assert job["job_type"] == "onboarding.retry" and job["status"] == "completed"
    assert job["result"]["steps"][0]["status"] == "failed"
    row = await env.db.fetchrow(
        "SELECT status, attempts FROM ingest.onboarding_step WHERE portfolio_id = $1 AND step = 'current_prices'",
        uuid.UUID(pid),
    )
    assert (row["status"], row["attempts"]) == ("failed", 2)

    # marketdata now has the prices: a retry with Prefer: wait returns the preview at once.
    days = [d for d in (date(2026, 11, 20 + i) for i in range(6)) if d.weekday() < 5]
    for d in days:
        await env.execute(
            "INSERT INTO marketdata.daily_price (symbol, price_date, close, source) "
            "VALUES ('NOPX', $1, 13.00, 'fixture')",
            d,
        )
    try:
        await _priced_retry(env, user, pid)
    finally:
        await env.execute("DELETE FROM marketdata.daily_price WHERE symbol = 'NOPX'")


async def _priced_retry(env: Env, user: uuid.UUID, pid: str) -> None:
    h = env.headers(user)
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/retry", json={}, headers={**h, "Prefer": "wait=5"})
    assert r.status_code == 200, r.text
    steps = {c["step"]: c["status"] for c in r.json()["data"]["collection"]}
    assert steps["current_prices"] == "completed" and steps["price_history"] == "failed"
    nopx = next(p for p in r.json()["data"]["positions"] if p["symbol"] == "NOPX")
    assert (nopx["priced_with"], nopx["market_value"]) == ("close", "1300.00")
    report = (await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/validate", headers=h)).json()["data"]
    assert report["ready"] is True

    r = await env.client.post(
        f"/api/v1/portfolio/onboarding/{pid}/retry", json={"steps": ["security_master"]}, headers=h
    )
    assert (r.status_code, r.json()["error"]["code"]) == (409, "INVALID_STATE")
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/retry", json={"steps": ["bogus"]}, headers=h)
    assert r.status_code == 422
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/retry", json={"force": True}, headers=h)
    assert r.status_code == 422


async def test_options_book_preview_and_option_inputs(env: Env) -> None:
    user = env.user()
    h = env.headers(user)
    pid, data = await uploaded(env, user, fixture_bytes("demo_hedgefund.csv"), cash_balance="1135300.00")
    assert data["positions_by_type"] == {"LONG": 13, "SHORT": 9, "LC": 4, "LP": 0, "SC": 1, "SP": 3}
    report = (await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/validate", headers=h)).json()["data"]
    checks = {c["check"]: c for c in report["checks"]}
    assert report["ready"] is True
    assert checks["option_inputs"]["status"] == "pass"
    assert checks["option_inputs"]["detail"].startswith("underlying price for 8/8; volatility source for 8/8")
    body = (
        await env.client.get(
            f"/api/v1/portfolio/onboarding/{pid}/preview",
            params={"sort": "-market_value", "limit": 5, "offset": 0},
            headers=h,
        )
    ).json()
    values = [Decimal(p["market_value"]) for p in body["data"]["positions"]]
    assert values == sorted(values, reverse=True) and body["page"]["total"] == 30 and body["page"]["has_more"]
    assert body["data"]["totals"]["market_value"] == {
        "long": "3952950.00",
        "short": "-1586750.00",
        "gross": "5539700.00",
        "net": "2366200.00",
    }
    everything = (
        await env.client.get(f"/api/v1/portfolio/onboarding/{pid}/preview", params={"limit": 1000}, headers=h)
    ).json()["data"]["positions"]
    spy = next(p for p in everything if p["symbol"] == "SPY270917C00460000")
    assert spy["option"] == {
        "option_type": "C",
        "strike_price": "460.0000",
        "expiration_date": "2027-09-17",
        "days_to_expiry": 296,
    }
    assert (spy["last_price"], spy["underlying_price"], spy["market_value"], spy["notional"]) == (
        "7.5000",
        "530.0000",
        "150000.00",
        "10600000.00",
    )
    assert spy["dollar_exposure"] is None and spy["weight"] is None and spy["sector"] == "ETF/Fund"
    vix = next(p for p in everything if p["symbol"].startswith("VIX"))
    assert vix["underlying_price"] == "18.5000" and vix["notional"] == "555000.00"
    bad = await env.client.get(f"/api/v1/portfolio/onboarding/{pid}/preview", params={"sort": "color"}, headers=h)
    assert bad.status_code == 422
    bad = await env.client.get(f"/api/v1/portfolio/onboarding/{pid}/preview", params={"limit": 1001}, headers=h)
    assert bad.status_code == 422


async def test_auto_complete_activates_a_ready_portfolio_after_upload(env: Env) -> None:
    user = env.user()
    pid, data = await uploaded(env, user, (HEADER + "AAPL,10,225,2026-03-02,\n").encode(), auto_complete="true")
    assert data["onboarding"]["started"] is True
    assert await env.fetchval("SELECT status FROM ingest.portfolio WHERE id = $1", uuid.UUID(pid)) == "active"
    job = data["onboarding"]["job_id"]
    r = await env.client.get(f"/api/v1/jobs/{job}", headers=env.headers(user))
    assert r.json()["data"]["job_type"] == "onboarding.complete"
    not_ready_pid, data = await uploaded(env, user, (HEADER + "NOPX,10,5,2026-03-02,\n").encode(), auto_complete="1")
    assert data["onboarding"]["started"] is False
    assert [c["check"] for c in data["onboarding"]["failing_checks"]] == ["current_prices"]
    assert (
        await env.fetchval("SELECT status FROM ingest.portfolio WHERE id = $1", uuid.UUID(not_ready_pid))
        == "onboarding"
    )


async def test_completion_is_partial_when_the_initial_run_fails(env: Env) -> None:
    user = env.user()
    pid, _ = await uploaded(env, user, (HEADER + "MSFT,10,420,2026-03-02,\n").encode())
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=env.headers(user))
    job_id = r.json()["data"]["job_id"]
    await env.execute(
        "INSERT INTO marketdata.batch_run (portfolio_ids, status, as_of_date) VALUES ($1, 'failed', $2)",
        [uuid.UUID(pid)],
        TODAY,
    )
    job = await env.job(user, job_id)
    assert job["status"] == "partial"
    assert job["result"]["run_status"] == "failed" and "next daily run" in job["result"]["message"]
    step = await env.fetchval(
        "SELECT status FROM ingest.onboarding_step WHERE portfolio_id = $1 AND step = 'initial_run'", uuid.UUID(pid)
    )
    assert step == "failed"


async def test_completion_is_partial_when_no_snapshot_arrives_before_the_deadline(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(completion, "DEADLINE_SECONDS", 0.3)
    user = env.user()
    pid, _ = await uploaded(env, user, (HEADER + "JPM,10,170,2026-03-02,\n").encode())
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=env.headers(user))
    job = await env.job(user, r.json()["data"]["job_id"])
    assert job["status"] == "partial"
    assert "no snapshot within" in job["result"]["message"]
    assert await env.fetchval("SELECT status FROM ingest.portfolio WHERE id = $1", uuid.UUID(pid)) == "active"


async def test_onboarding_routes_are_scoped_to_the_owner(env: Env) -> None:
    owner, stranger = env.user(), env.user()
    pid, _ = await uploaded(env, owner, (HEADER + "AAPL,10,225,2026-03-02,\n").encode())
    for method, path in (
        ("post", "validate"),
        ("get", "preview"),
        ("post", "complete"),
        ("post", "retry"),
    ):
        r = await getattr(env.client, method)(
            f"/api/v1/portfolio/onboarding/{pid}/{path}", headers=env.headers(stranger)
        )
        assert (r.status_code, r.json()["error"]["code"]) == (404, "PORTFOLIO_NOT_FOUND")
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{uuid.uuid4()}/validate", headers=env.headers(owner))
    assert r.status_code == 404
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/retry", headers=env.headers(owner))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "INVALID_STATE")


async def test_appending_to_a_portfolio_in_onboarding_refreshes_its_collection_steps(env: Env) -> None:
    user = env.user()
    pid, _ = await uploaded(env, user, (HEADER + "AAPL,10,225,2026-03-02,\n").encode())
    r = await env.upload(user, (HEADER + "NOPX,1,5,2026-03-02,\n").encode(), portfolio_id=pid)
    assert r.json()["data"]["status"] == "completed"
    row = await env.db.fetchrow(
        "SELECT status, attempts, details FROM ingest.onboarding_step WHERE portfolio_id = $1 "
        "AND step = 'current_prices'",
        uuid.UUID(pid),
    )
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "NOPX" in json.loads(row["details"])["missing"]
    assert env.events == [] or all(str(e.portfolio_id) != pid for e in env.events)
