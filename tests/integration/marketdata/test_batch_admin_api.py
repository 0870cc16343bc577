"""Admin batch endpoints (#9–#20) through the marketdata app on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from test_batch_support import (
    ADMIN,
    AS_OF,
    USER,
    Env,
    simulate_pipeline,
    token,
)

from common.events import STEP_NAMES, CycleStarted
from marketdata.backfill import wait_for_run
from marketdata.scheduler import seed_schedules

pytestmark = pytest.mark.integration

TRIGGERS = (
    "/api/v1/admin/batch/run-all",
    "/api/v1/admin/batch/market-data",
    "/api/v1/admin/batch/aggregations",
    "/api/v1/admin/batch/greeks",
    "/api/v1/admin/batch/factors",
    "/api/v1/admin/batch/correlations",
    "/api/v1/admin/batch/risk-scenarios",
    "/api/v1/admin/batch/stress-tests",
    "/api/v1/admin/batch/snapshots",
)
READS = ("/api/v1/admin/batch/status", "/api/v1/admin/batch/history", "/api/v1/admin/batch/schedule")


async def test_every_batch_endpoint_is_admin_only(env: Env) -> None:
    for path in TRIGGERS:
        r = await env.client.post(path, json={}, headers=token(USER))
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", path
        assert (await env.client.post(path, json={})).status_code == 401
    for path in READS:
        r = await env.client.get(path, headers=token(USER))
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", path
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 0


async def test_run_all_answers_202_job_accepted_with_run_id_and_steps(env: Env) -> None:
    await env.portfolio()
    r = await env.client.post("/api/v1/admin/batch/run-all", json={"as_of_date": "2026-11-24"}, headers=token(ADMIN))
    assert r.status_code == 202, r.text
    data = r.json()["data"]
    run_id = data["run_id"]
    assert data["job_id"] == f"mkt_{run_id}" and data["job_type"] == "batch.run_all"
    assert data["status"] == "queued" and data["deduplicated"] is False
    assert data["steps"] == list(STEP_NAMES)
    assert data["status_url"] == f"/api/v1/jobs/mkt_{run_id}"
    assert r.headers["location"] == data["status_url"] and r.headers["retry-after"] == "2"
    assert r.json()["meta"]["as_of"] == "2026-11-24"
    params = await env.scalar("SELECT params FROM marketdata.batch_run WHERE id = :r", r=uuid.UUID(run_id))
    assert params == {"include_correlations": True}
    job = await env.client.get(data["status_url"], headers=token(ADMIN))
    assert job.status_code == 200 and job.json()["data"]["job_type"] == "batch.run_all"
    # The same trigger again is deduplicated while the first is queued.
    again = await env.client.post("/api/v1/admin/batch/run-all", json={}, headers=token(ADMIN))
    assert again.status_code == 202 and again.json()["data"]["deduplicated"] is True
    assert again.json()["data"]["run_id"] == run_id


async def test_bad_trigger_bodies_are_rejected(env: Env) -> None:
    pid = await env.portfolio()
    headers = token(ADMIN)
    weekend = await env.client.post("/api/v1/admin/batch/greeks", json={"as_of_date": "2026-11-22"}, headers=headers)
    assert weekend.status_code == 422
    assert weekend.json()["error"]["details"][0]["field"] == "body.as_of_date"
    future = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    r = await env.client.post("/api/v1/admin/batch/snapshots", json={"as_of_date": future}, headers=headers)
    assert r.status_code == 422 and "future" in r.json()["error"]["details"][0]["issue"]
    missing = str(uuid.uuid4())
    r = await env.client.post(
        "/api/v1/admin/batch/aggregations", json={"portfolio_ids": [str(pid), missing]}, headers=headers
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    assert r.json()["error"]["details"][0]["value"] == missing
    empty = await env.client.post("/api/v1/admin/batch/greeks", json={"portfolio_ids": []}, headers=headers)
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["field"] == "body.portfolio_ids"
    for body in ({"lookback_days": 0}, {"lookback_days": 1261}, {"symbols": ["not a symbol!"]}, {"bogus": 1}):
        r = await env.client.post("/api/v1/admin/batch/market-data", json=body, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", body
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 0


async def test_engine_step_triggers_carry_their_params_and_validate_them(env: Env) -> None:
    pid = await env.portfolio()
    headers = token(ADMIN)
    seen: list[CycleStarted] = []

    async def record(evt: CycleStarted) -> None:
        seen.append(evt)

    env.bus.subscribe("test_recorder", CycleStarted, record)
    await env.bus.start()
    cases = [
        ("factors", {}, ["factors"], {}),
        ("correlations", {"duration_days": 120}, ["correlations"], {"duration_days": 120}),
        ("risk-scenarios", {"cascade": True}, ["risk_scenarios", "stress_tests", "snapshots"], {}),
        (
            "stress-tests",
            {"categories": ["rates", "market", "rates"]},
            ["stress_tests"],
            {"categories": ["market", "rates"]},
        ),
    ]
    for path, body, steps, params in cases:
        r = await env.client.post(
            f"/api/v1/admin/batch/{path}", json={"portfolio_ids": [str(pid)], **body}, headers=headers
        )
        assert r.status_code == 202, r.text
        assert r.json()["data"]["steps"] == steps and r.json()["data"]["job_type"] == f"batch.{steps[0]}"
        run_id = uuid.UUID(r.json()["data"]["run_id"])
        stored = await env.scalar("SELECT params FROM marketdata.batch_run WHERE id = :id", id=run_id)
        assert stored == params, path
    # Default window of #17 is 90 trading days.
    r = await env.client.post("/api/v1/admin/batch/correlations", json={"force": True}, headers=headers)
    assert r.status_code == 202
    for _ in range(100):
        if len(seen) == 5:
            break
        await asyncio.sleep(0.02)
    assert [e.steps[0] for e in seen] == ["factors", "correlations", "risk_scenarios", "stress_tests", "correlations"]
    assert seen[1].params == {"duration_days": 120} and seen[3].params == {"categories": ["market", "rates"]}
    assert seen[4].params == {"duration_days": 90} and seen[2].cascade is True
    runs = await env.scalar("SELECT count(*) FROM marketdata.batch_run")
    for path, body in (
        ("correlations", {"duration_days": 29}),
        ("correlations", {"duration_days": 253}),
        ("stress-tests", {"categories": ["crypto"]}),
        ("stress-tests", {"categories": []}),
        ("factors", {"duration_days": 90}),
    ):
        r = await env.client.post(f"/api/v1/admin/batch/{path}", json=body, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", (path, body)
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == runs


async def test_prefer_wait_returns_the_finished_run_status(env: Env) -> None:
    p1 = await env.portfolio()
    simulate_pipeline(env.bus)
    await env.bus.start()
    r = await env.client.post(
        "/api/v1/admin/batch/greeks",
        json={"portfolio_ids": [str(p1)], "as_of_date": "2026-11-24", "cascade": True},
        headers={**token(ADMIN), "Prefer": "wait=10"},
    )
    assert r.status_code == 200, r.text
    run = r.json()["data"]["run"]
    assert run["status"] == "completed" and run["job_name"] == "greeks" and run["cascade"] is True
    assert [s["job"] for s in run["steps"]] == list(STEP_NAMES[1:])
    assert all(s["status"] == "completed" and s["portfolios_completed"] == 1 for s in run["steps"])


async def test_status_shows_nothing_then_the_latest_run_per_step(env: Env) -> None:
    await seed_schedules(env.ctx.db)
    headers = token(ADMIN)
    empty = (await env.client.get("/api/v1/admin/batch/status", headers=headers)).json()["data"]
    assert empty["run"] is None and empty["running_jobs"] == []
    assert empty["last_completed"] == {
        s: None
        for s in (
            "market_data",
            "greeks",
            "aggregations",
            "factors",
            "correlations",
            "risk_scenarios",
            "stress_tests",
            "snapshots",
        )
    }
    # Scheduler disabled in these tests (scheduler_enabled=False, all-in-one).
    assert empty["scheduler"] == {"state": "disabled", "next_run_at": None}

    p1 = await env.portfolio()
    p2 = await env.portfolio()
    simulate_pipeline(env.bus, fail=lambda s, p: s == "aggregations" and p == p2)
    await env.bus.start()
    r = await env.client.post("/api/v1/admin/batch/run-all", json={}, headers=headers)
    run_id = r.json()["data"]["run_id"]
    assert await wait_for_run(env.ctx, uuid.UUID(run_id), 60) == "partial"
    status = (await env.client.get("/api/v1/admin/batch/status", headers=headers)).json()["data"]
    run = status["run"]
    assert run["run_id"] == run_id and run["status"] == "partial" and run["portfolios"] == 2
    assert run["as_of_date"] == AS_OF.isoformat() and run["trigger"] == "manual"
    assert run["portfolios_failed"] == [str(p2)]
    steps = {s["job"]: s for s in run["steps"]}
    assert steps["market_data"]["portfolios_completed"] is None and steps["market_data"]["status"] == "completed"
    assert steps["aggregations"]["status"] == "partial"
    assert (steps["aggregations"]["portfolios_completed"], steps["aggregations"]["portfolios_failed"]) == (1, 1)
    assert steps["aggregations"]["error"]["code"] == "SIMULATED"
    assert steps["snapshots"]["status"] == "completed" and steps["snapshots"]["duration_ms"] >= 0
    assert status["last_completed"]["snapshots"] is not None and status["last_completed"]["factors"] is not None
    one = (
        await env.client.get(
            "/api/v1/admin/batch/status", params={"run_id": f"mkt_{run_id}", "portfolio_id": str(p1)}, headers=headers
        )
    ).json()["data"]["run"]
    assert {s["job"]: s["status"] for s in one["steps"]}["aggregations"] == "completed"
    unknown = await env.client.get("/api/v1/admin/batch/status", params={"run_id": str(uuid.uuid4())}, headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "JOB_NOT_FOUND"
    bad = await env.client.get("/api/v1/admin/batch/status", params={"run_id": "nope"}, headers=headers)
    assert bad.status_code == 422


async def test_history_lists_step_rows_with_filters_sort_paging_and_summary(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    simulate_pipeline(env.bus, fail=lambda s, p: s == "greeks" and p == p1)
    await env.bus.start()
    r = await env.client.post("/api/v1/admin/batch/run-all", json={}, headers=token(ADMIN))
    run_id = r.json()["data"]["run_id"]
    assert await wait_for_run(env.ctx, uuid.UUID(run_id), 60) == "partial"
    headers = token(ADMIN)

    async def get(**params):
        resp = await env.client.get("/api/v1/admin/batch/history", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()

    everything = await get()
    # 1 market-wide row + 7 steps × 2 portfolios.
    assert everything["page"] == {"limit": 50, "offset": 0, "total": 15, "has_more": False}
    started = [i["started_at"] for i in everything["data"]]
    assert started == sorted(started, reverse=True)
    item = everything["data"][0]
    assert set(item) >= {
        "job_run_id",
        "run_id",
        "job",
        "service",
        "portfolio_id",
        "status",
        "trigger",
        "attempt",
        "as_of_date",
        "started_at",
        "finished_at",
        "duration_ms",
        "records_processed",
        "error",
    }
    failed = await get(status="failed")
    assert [(i["job"], i["portfolio_id"], i["error"]["code"]) for i in failed["data"]] == [
        ("greeks", str(p1), "SIMULATED")
    ]
    mine = await get(portfolio_id=str(p2), job="greeks,snapshots", sort="job")
    assert [i["job"] for i in mine["data"]] == ["greeks", "snapshots"]
    market = await get(job="market_data", run_id=run_id, trigger="MANUAL")
    assert market["page"]["total"] == 1 and market["data"][0]["portfolio_id"] is None
    paged = await get(limit=2, offset=2, sort="-duration_ms")
    assert len(paged["data"]) == 2 and paged["page"]["has_more"] is True
    assert (await get(trigger="schedule"))["page"]["total"] == 0
    summary = (await get(include_summary="true"))["meta"]["summary"]
    assert summary["total"] == 15 and summary["by_status"] == {"completed": 14, "failed": 1}
    assert summary["success_rate"] == pytest.approx(14 / 15, abs=1e-6)
    assert set(summary["avg_duration_ms_by_job"]) == set(STEP_NAMES)
    assert "summary" not in (await get())["meta"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await get(since=future))["page"]["total"] == 0
    for bad in ({"sort": "portfolio"}, {"status": "done"}, {"job": "lunch"}, {"limit": 0}, {"trigger": "cron"}):
        resp = await env.client.get("/api/v1/admin/batch/history", params=bad, headers=headers)
        assert resp.status_code == 422, bad


async def test_schedule_lists_the_seeded_schedules_with_next_firing(env: Env) -> None:
    await seed_schedules(env.ctx.db)
    await seed_schedules(env.ctx.db)  # idempotent
    r = await env.client.get("/api/v1/admin/batch/schedule", headers=token(ADMIN))
    assert r.status_code == 200
    body = r.json()
    assert body["page"]["total"] == 4
    items = {i["name"]: i for i in body["data"]}
    daily = items["daily_run"]
    assert daily["cron"] == "30 16 * * 1-5" and daily["timezone"] == "America/New_York"
    assert daily["trading_days_only"] is True and daily["enabled"] is True and daily["job_name"] == "run_all"
    nxt = datetime.fromisoformat(daily["next_run_at"].replace("Z", "+00:00"))
    assert nxt > datetime.now(UTC) and nxt.minute == 30 and nxt.hour in (20, 21)
    assert daily["last_run_at"] is None and daily["last_status"] is None
    assert items["housekeeping"]["cron"] == "0 3 * * *"
    assert items["history_backfill"]["cron"] == "0 2 * * 0"
    assert items["data_quality_check"]["cron"] == "0 19 * * 1-5"
