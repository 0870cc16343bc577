"""Batch runs on PostgreSQL: atomic creation, deduplication, event-driven completion, time limit."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from test_batch_support import (
    ADMIN,
    AS_OF,
    Env,
    simulate_pipeline,
    step,
    token,
)

from common import metrics
from common.errors import NotFound, ValidationFailed
from common.events import STEP_NAMES, CycleStarted, GreeksComputed, PortfolioUpdated, PricesUpdated, SnapshotCreated
from common.ids import SYSTEM_USER_ID
from marketdata import batch_repository as repo
from marketdata.backfill import backfill, wait_for_run
from marketdata.batch_bookkeeping import last_success_gauge
from marketdata.batch_compute import PIPELINE_STEPS
from marketdata.batch_service import start_run
from marketdata.batch_watchdog import fail_overdue_runs, settle_stragglers

pytestmark = pytest.mark.integration


async def run_all(env: Env, **kw):
    args = {
        "job_name": "run_all",
        "trigger": "manual",
        "requested_by": ADMIN.user_id,
        "as_of_date": AS_OF,
        "portfolio_ids": None,
        "cascade": True,
        "force": False,
        "params": {"symbols": ["AAPL"]},
    }
    args.update(kw)
    return await start_run(env.ctx, **args)


async def test_start_run_writes_run_job_and_cycle_started_in_one_transaction(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    await env.portfolio(status="onboarding")
    run, job, dedup = await run_all(env)
    assert not dedup
    assert run["status"] == "queued"
    assert sorted(run["portfolio_ids"], key=str) == sorted([p1, p2], key=str)
    assert run["steps"] == list(PIPELINE_STEPS)
    assert job["id"] == run["id"] and job["job_type"] == "batch.run_all" and job["status"] == "queued"
    assert job["requested_by"] == ADMIN.user_id
    assert job["scope"]["as_of_date"] == "2026-11-24"
    assert [s["job"] for s in job["steps"]] == list(PIPELINE_STEPS)
    # The event is in the outbox with the resolved scope (the relay published it after commit).
    outbox = await env.rows("SELECT routing_key, body, published_at FROM marketdata.outbox")
    assert len(outbox) == 1 and outbox[0]["routing_key"] == "cycle.started"
    body = orjson.loads(bytes(outbox[0]["body"]))
    assert body["run_id"] == str(run["id"]) and body["steps"] == list(PIPELINE_STEPS)
    assert sorted(body["portfolio_ids"]) == sorted([str(p1), str(p2)])
    assert body["cascade"] is True and body["trigger"] == "manual" and body["producer"] == "marketdata"
    view = await env.rows("SELECT job_name, trigger, status, cascade, params FROM marketdata.api_batch_run")
    assert view == [
        {"job_name": "run_all", "trigger": "manual", "status": "queued", "cascade": True, "params": run["params"]}
    ]


async def test_failed_unit_of_work_leaves_no_run_job_or_event(env: Env) -> None:
    await env.portfolio()
    with pytest.raises(RuntimeError):
        async with env.ctx.plumbing.uow.begin() as work:
            await run_all(env, work=work)
            raise RuntimeError("crash before commit")
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 0
    assert await env.scalar("SELECT count(*) FROM marketdata.job") == 0
    assert await env.scalar("SELECT count(*) FROM marketdata.outbox") == 0


async def test_identical_queued_run_is_deduplicated_and_different_scope_is_not(env: Env) -> None:
    p1 = await env.portfolio()
    first = await run_all(env)
    again = await run_all(env)
    assert again.deduplicated and again.run["id"] == first.run["id"]
    # force never runs two identical copies at once.
    forced = await run_all(env, force=True)
    assert forced.deduplicated and forced.run["id"] == first.run["id"]
    other = await run_all(env, portfolio_ids=[p1], params={"symbols": ["MSFT"]})
    assert not other.deduplicated and other.run["id"] != first.run["id"]
    assert await env.scalar("SELECT count(*) FROM marketdata.outbox WHERE routing_key = 'cycle.started'") == 2


async def test_completed_run_is_returned_without_force_and_rerun_with_force(env: Env) -> None:
    await env.portfolio()
    simulate_pipeline(env.bus)
    await env.bus.start()
    first = await run_all(env)
    assert await wait_for_run(env.ctx, first.run["id"], 30) == "completed"
    again = await run_all(env)
    assert again.deduplicated and again.run["id"] == first.run["id"] and again.run["status"] == "completed"
    forced = await run_all(env, force=True)
    assert not forced.deduplicated and forced.run["id"] != first.run["id"]
    assert await wait_for_run(env.ctx, forced.run["id"], 30) == "completed"


async def test_simulated_pipeline_drives_run_to_completed(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio(symbols=("MSFT",))
    simulate_pipeline(env.bus)
    await env.bus.start()
    runs_observed = metrics.job_duration("marketdata").labels("batch.run_all", "completed")._sum.get()
    run, _, _ = await run_all(env)
    assert await wait_for_run(env.ctx, run["id"], 30) == "completed"
    await env.bus.drain()
    rows = await env.rows(
        "SELECT job, portfolio_id, status, attempt, trigger FROM marketdata.batch_job_run WHERE run_id = :r",
        r=run["id"],
    )
    assert len(rows) == 1 + 7 * 2
    assert {(r["job"], r["portfolio_id"]) for r in rows} == {("market_data", None)} | {
        (s, p) for s in STEP_NAMES[1:] for p in (p1, p2)
    }
    assert all(r["status"] == "completed" and r["attempt"] == 1 and r["trigger"] == "manual" for r in rows)
    final = (await env.rows("SELECT * FROM marketdata.batch_run WHERE id = :r", r=run["id"]))[0]
    assert final["finished_at"] is not None and final["duration_ms"] >= 0 and final["error_summary"] is None
    job = (await env.rows("SELECT * FROM marketdata.job WHERE id = :r", r=run["id"]))[0]
    assert job["status"] == "completed" and job["progress_pct"] == 100
    assert job["result"] == {"portfolios": 2, "failed": 0}
    assert [s["status"] for s in job["steps"]] == ["completed"] * len(STEP_NAMES)
    assert last_success_gauge()._value.get() == pytest.approx(final["finished_at"].timestamp())
    # The run's duration is observed once in sigmasight_marketdata_job_duration_seconds (api.md #6).
    observed = metrics.job_duration("marketdata").labels("batch.run_all", "completed")._sum.get() - runs_observed
    assert observed == pytest.approx(final["duration_ms"] / 1000)
    # prices.updated carried the run scope to greeks.
    prices = env.events(PricesUpdated)
    assert len(prices) == 1 and prices[0].run_id == run["id"]
    assert sorted(prices[0].portfolio_ids, key=str) == sorted([p1, p2], key=str)
    assert prices[0].trigger == "manual" and prices[0].cascade is True


async def test_failure_for_one_portfolio_makes_run_partial_with_error_recorded(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    simulate_pipeline(env.bus, fail=lambda s, p: s == "greeks" and p == p2)
    await env.bus.start()
    run, _, _ = await run_all(env)
    assert await wait_for_run(env.ctx, run["id"], 30) == "partial"
    failed = await env.rows(
        "SELECT job, portfolio_id, error_code FROM marketdata.batch_job_run WHERE run_id = :r AND status = 'failed'",
        r=run["id"],
    )
    assert [(f["job"], f["portfolio_id"], f["error_code"]) for f in failed] == [("greeks", p2, "SIMULATED")]
    # The later steps still ran for that portfolio and count.
    later = await env.scalar(
        "SELECT count(*) FROM marketdata.batch_job_run WHERE run_id = :r AND portfolio_id = :p "
        "AND status = 'completed'",
        r=run["id"],
        p=p2,
    )
    assert later == len(STEP_NAMES) - 2  # every step after greeks
    summary = await env.scalar("SELECT error_summary FROM marketdata.batch_run WHERE id = :r", r=run["id"])
    assert "greeks failed" in summary and str(p2) in summary
    job = (await env.rows("SELECT status, result, error_code FROM marketdata.job WHERE id = :r", r=run["id"]))[0]
    assert job["status"] == "partial" and job["result"] == {"portfolios": 2, "failed": 1} and job["error_code"] is None
    assert p1 != p2


async def test_run_fails_when_every_portfolio_fails_its_terminal_step(env: Env) -> None:
    await env.portfolio()
    simulate_pipeline(env.bus, fail=lambda s, p: s == "snapshots")
    await env.bus.start()
    run, _, _ = await run_all(env)
    assert await wait_for_run(env.ctx, run["id"], 30) == "failed"
    job = (await env.rows("SELECT status, error_code, retryable FROM marketdata.job WHERE id = :r", r=run["id"]))[0]
    assert job == {"status": "failed", "error_code": "STEPS_FAILED", "retryable": True}


async def test_duplicate_step_event_changes_nothing(env: Env) -> None:
    p1 = await env.portfolio()
    await env.bus.start()
    run, _, _ = await start_run(
        env.ctx,
        job_name="greeks",
        trigger="manual",
        requested_by=ADMIN.user_id,
        as_of_date=AS_OF,
        portfolio_ids=[p1],
        cascade=False,
        force=False,
    )
    evt = GreeksComputed(
        run_id=run["id"], as_of=AS_OF, portfolio_id=p1, cascade=False, producer="greeks", step=step("greeks", records=7)
    )
    for _ in range(3):
        await env.bus.publish(evt)
    await env.bus.drain()
    rows = await env.rows(
        "SELECT status, attempt, records_processed, last_event_id FROM marketdata.batch_job_run WHERE run_id = :r",
        r=run["id"],
    )
    assert rows == [{"status": "completed", "attempt": 1, "records_processed": 7, "last_event_id": evt.event_id}]
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "completed"
    # A late failure report for the same step never regresses the completed row.
    late = GreeksComputed(
        run_id=run["id"],
        as_of=AS_OF,
        portfolio_id=p1,
        cascade=False,
        producer="greeks",
        step=step("greeks", "failed", "late"),
    )
    await env.bus.publish(late)
    await env.bus.drain()
    assert await env.scalar("SELECT status FROM marketdata.batch_job_run WHERE run_id = :r", r=run["id"]) == "completed"


async def test_unknown_portfolio_is_404_and_bad_dates_are_422(env: Env) -> None:
    await env.portfolio()
    with pytest.raises(NotFound) as nf:
        await run_all(env, portfolio_ids=[uuid.uuid4()])
    assert nf.value.code == "PORTFOLIO_NOT_FOUND"
    with pytest.raises(ValidationFailed) as weekend:
        await run_all(env, as_of_date=AS_OF - timedelta(days=2))  # Sunday
    assert weekend.value.details[0]["field"] == "body.as_of_date"
    assert "trading day" in weekend.value.details[0]["issue"]
    with pytest.raises(ValidationFailed) as future:
        await run_all(env, as_of_date=datetime.now(UTC).date() + timedelta(days=30))
    assert "future" in future.value.details[0]["issue"]
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 0


async def test_run_over_the_time_limit_fails_with_job_timeout(env: Env) -> None:
    p1 = await env.portfolio()
    run, _, _ = await start_run(
        env.ctx, job_name="snapshots", trigger="manual", requested_by=None, as_of_date=AS_OF,
        portfolio_ids=[p1], cascade=False, force=False,
    )  # fmt: skip
    assert await fail_overdue_runs(env.ctx) == []
    await env.execute("UPDATE marketdata.batch_run SET created_at = now() - interval '61 minutes'")
    assert await fail_overdue_runs(env.ctx) == [run["id"]]
    final = (
        await env.rows(
            "SELECT status, error_summary, requested_by FROM marketdata.batch_run WHERE id = :r", r=run["id"]
        )
    )[0]
    assert final["status"] == "failed" and final["error_summary"].startswith("JOB_TIMEOUT")
    assert final["requested_by"] == SYSTEM_USER_ID
    job = (await env.rows("SELECT status, error_code, retryable FROM marketdata.job WHERE id = :r", r=run["id"]))[0]
    assert job == {"status": "failed", "error_code": "JOB_TIMEOUT", "retryable": True}


async def test_onboarded_portfolio_starts_a_single_portfolio_run(env: Env) -> None:
    pid = await env.portfolio(symbols=("AAPL", "MSFT"))
    other = await env.portfolio()
    simulate_pipeline(env.bus)
    await env.bus.start()
    await env.bus.publish(PortfolioUpdated(as_of=AS_OF, portfolio_id=pid, change="onboarded", producer="ingest"))
    await env.bus.drain()
    runs = await env.rows("SELECT * FROM marketdata.batch_run")
    assert len(runs) == 1
    run = runs[0]
    assert run["trigger"] == "onboarding" and run["job_name"] == "run_all" and run["portfolio_ids"] == [pid]
    assert run["params"]["symbols"] == ["AAPL", "MSFT"]
    assert await wait_for_run(env.ctx, run["id"], 30) == "completed"
    assert other not in run["portfolio_ids"]


async def test_positions_change_uses_event_trigger_and_ignores_inactive_portfolios(env: Env) -> None:
    active = await env.portfolio()
    onboarding = await env.portfolio(status="onboarding")
    await env.bus.start()
    await env.bus.publish(
        PortfolioUpdated(
            as_of=AS_OF,
            portfolio_id=active,
            change="positions",
            symbols=["nvda"],
            trigger="demo_reset",
            producer="ingest",
        )
    )
    await env.bus.publish(
        PortfolioUpdated(as_of=AS_OF, portfolio_id=onboarding, change="positions", symbols=["NVDA"], producer="ingest")
    )
    await env.bus.drain()
    runs = await env.rows("SELECT trigger, portfolio_ids, params, requested_by FROM marketdata.batch_run")
    assert len(runs) == 1
    assert runs[0]["trigger"] == "demo_reset" and runs[0]["portfolio_ids"] == [active]
    assert runs[0]["params"]["symbols"] == ["NVDA"]


async def test_removed_portfolio_mid_run_is_skipped_so_the_run_completes(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    await env.bus.start()
    run, _, _ = await start_run(
        env.ctx, job_name="greeks", trigger="manual", requested_by=ADMIN.user_id, as_of_date=AS_OF,
        portfolio_ids=None, cascade=False, force=False,
    )  # fmt: skip
    await env.bus.publish(
        GreeksComputed(
            run_id=run["id"], as_of=AS_OF, portfolio_id=p1, cascade=False, producer="greeks", step=step("greeks")
        )
    )
    await env.bus.drain()
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "running"
    await env.bus.publish(PortfolioUpdated(as_of=AS_OF, portfolio_id=p2, change="removed", producer="ingest"))
    await env.bus.drain()
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "completed"
    assert (
        await env.scalar(
            "SELECT status FROM marketdata.batch_job_run WHERE run_id = :r AND portfolio_id = :p", r=run["id"], p=p2
        )
        == "skipped"
    )


async def test_cycle_started_marks_run_running_for_steps_owned_elsewhere(env: Env) -> None:
    p1 = await env.portfolio()
    seen: list[CycleStarted] = []

    async def owner(evt: CycleStarted) -> None:
        seen.append(evt)

    env.bus.subscribe("greeks", CycleStarted, owner)
    await env.bus.start()
    run, _, _ = await start_run(
        env.ctx, job_name="greeks", trigger="manual", requested_by=ADMIN.user_id, as_of_date=AS_OF,
        portfolio_ids=[p1], cascade=True, force=False,
    )  # fmt: skip
    await env.bus.drain()
    assert [e.steps for e in seen] == [list(STEP_NAMES[1:])]
    assert seen[0].cascade is True and seen[0].portfolio_ids == [p1]
    row = (await env.rows("SELECT status, started_at FROM marketdata.batch_run WHERE id = :r", r=run["id"]))[0]
    assert row["status"] == "running" and row["started_at"] is not None
    assert await env.scalar("SELECT status FROM marketdata.job WHERE id = :r", r=run["id"]) == "running"


async def test_run_waits_for_late_earlier_step_reports_then_finishes_after_grace(env: Env) -> None:
    p1 = await env.portfolio()
    await env.bus.start()
    run, _, _ = await start_run(
        env.ctx, job_name="aggregations", trigger="manual", requested_by=ADMIN.user_id, as_of_date=AS_OF,
        portfolio_ids=[p1], cascade=True, force=False,
    )  # fmt: skip
    assert run["steps"] == list(STEP_NAMES[2:])
    snap = SnapshotCreated(
        run_id=run["id"], as_of=AS_OF, portfolio_id=p1, snapshot_date=AS_OF, producer="stress", step=step("snapshots")
    )
    await env.bus.publish(snap)
    await env.bus.drain()
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "running"
    assert await settle_stragglers(env.ctx) == []  # still inside the grace period
    await env.execute("UPDATE marketdata.batch_job_run SET updated_at = now() - interval '3 minutes'")
    assert await settle_stragglers(env.ctx) == [run["id"]]
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "completed"
    status = await env.client.get("/api/v1/admin/batch/status", params={"run_id": str(run["id"])}, headers=token(ADMIN))
    steps = {s["job"]: s["status"] for s in status.json()["data"]["run"]["steps"]}
    assert steps == {**dict.fromkeys(STEP_NAMES[2:-1], "skipped"), "snapshots": "completed"}


async def test_backfill_runs_each_past_trading_day_oldest_first_and_is_idempotent(env: Env) -> None:
    await env.portfolio()
    simulate_pipeline(env.bus)
    await env.bus.start()
    calls: list[tuple[int, int]] = []
    run_ids = await backfill(env.ctx, days=3, end=AS_OF, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    runs = {r["id"]: r for r in await env.rows("SELECT * FROM marketdata.batch_run")}
    assert [runs[i]["as_of_date"] for i in run_ids] == [date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 23)]
    for ident in run_ids:
        run = runs[ident]
        assert run["status"] == "completed" and run["trigger"] == "manual" and run["job_name"] == "greeks"
        assert run["steps"] == list(STEP_NAMES[1:]) and run["cascade"] is True
        assert run["params"] == {"backfill": True}
    # Price history covers the range (and the history margin before it).
    oldest = await env.scalar("SELECT min(price_date) FROM marketdata.daily_price WHERE symbol = 'AAPL'")
    assert oldest <= date(2025, 11, 19)
    # Re-running reuses the completed runs.
    assert await backfill(env.ctx, days=3, end=AS_OF) == run_ids
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 3


# -- the set-based step-report upsert equals the one-row upsert -----------------------------------

BULK_T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # step-report times of the bulk-upsert test


def job_run_report(
    run: dict[str, Any], pid: uuid.UUID, status: str, minute: int, event: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    final = status in ("completed", "failed")
    return {
        "run_id": run["id"],
        "job": "greeks",
        "service": "greeks",
        "portfolio_id": pid,
        "as_of_date": AS_OF,
        "trigger": "manual",
        "status": status,
        "started_at": BULK_T0 + timedelta(minutes=minute),
        "finished_at": BULK_T0 + timedelta(minutes=minute, seconds=3) if final else None,
        "duration_ms": 3000 if final else None,
        "records_processed": 7,
        "error_code": "GREEKS_FAILED" if status == "failed" else None,
        "error_message": "boom" if status == "failed" else None,
        "details": {"extra_steps": [], "note": "x"},
        "last_event_id": event,
        **extra,
    }


async def stored_job_runs(env: Env, run_id: uuid.UUID) -> list[dict[str, Any]]:
    async with env.ctx.db.transaction() as s:
        rows = await s.execute(
            sa.text(
                "SELECT portfolio_id, status, attempt, started_at, finished_at, duration_ms, records_processed, "
                "error_code, error_message, details, last_event_id FROM marketdata.batch_job_run "
                "WHERE run_id = :r AND job = 'greeks' ORDER BY portfolio_id"
            ),
            {"r": run_id},
        )
        return [dict(r) for r in rows.mappings()]


async def new_greeks_run(env: Env) -> dict[str, Any]:
    run, _, _ = await start_run(
        env.ctx,
        job_name="greeks",
        trigger="manual",
        requested_by=ADMIN.user_id,
        as_of_date=AS_OF,
        portfolio_ids=[await env.portfolio()],
        cascade=False,
        force=True,
    )
    return run


async def test_a_batch_of_reports_lands_as_the_same_rows_as_one_by_one(env: Env) -> None:
    pids = sorted(uuid.uuid4() for _ in range(3))
    events = [[uuid.uuid4() for _ in range(3)] for _ in pids]
    # Per portfolio: running, then failed, then completed (a retry: attempt 2), then a repeat of the
    # completed event (ignored), then a late failure (never regresses a completed row).
    sequences = [
        [("running", 0, e[0]), ("failed", 1, e[1]), ("completed", 2, e[2]), ("completed", 2, e[2]), ("failed", 3, e[0])]
        for e in events
    ]
    one_run, bulk_run = await new_greeks_run(env), await new_greeks_run(env)
    for n in range(5):
        async with env.ctx.db.transaction() as s:
            for pid, seq in zip(pids, sequences, strict=True):
                status, minute, event = seq[n]
                await repo.upsert_job_run(s, **job_run_report(one_run, pid, status, minute, event))
            changed = await repo.upsert_job_runs(
                s, [job_run_report(bulk_run, pid, *seq[n]) for pid, seq in zip(pids, sequences, strict=True)]
            )
        assert changed == (0 if n >= 3 else 3)
    one, bulk = await stored_job_runs(env, one_run["id"]), await stored_job_runs(env, bulk_run["id"])
    assert one == bulk
    assert [r["status"] for r in bulk] == ["completed"] * 3 and [r["attempt"] for r in bulk] == [2] * 3
    assert all(r["started_at"] == BULK_T0 for r in bulk)  # the first start is kept
    assert bulk[0]["details"] == {"extra_steps": [], "note": "x"}
