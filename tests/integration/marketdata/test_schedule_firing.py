"""Schedules on PostgreSQL: seed, firing by the in-process scheduler, housekeeping, data quality."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from test_batch_support import AS_OF, Env, close_env, make_env, simulate_pipeline

from common.ids import SYSTEM_USER_ID
from marketdata.backfill import wait_for_run
from marketdata.market_data import collect_market_data
from marketdata.scheduler import run_schedule, seed_schedules, tick

pytestmark = pytest.mark.integration


@pytest.fixture
async def env(batch_db_url: str) -> AsyncIterator[Env]:
    e = await make_env(batch_db_url)
    await seed_schedules(e.ctx.db)
    yield e
    await close_env(e)


async def schedule(env: Env, name: str) -> dict:
    return (await env.rows("SELECT * FROM marketdata.batch_schedule WHERE name = :n", n=name))[0]


async def test_seed_is_idempotent_and_keeps_operator_choices(env: Env) -> None:
    await env.execute("UPDATE marketdata.batch_schedule SET enabled = false WHERE name = 'housekeeping'")
    before = await schedule(env, "daily_run")
    assert await seed_schedules(env.ctx.db) == 4
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_schedule") == 4
    assert (await schedule(env, "housekeeping"))["enabled"] is False
    after = await schedule(env, "daily_run")
    assert after["next_run_at"] == before["next_run_at"] and after["next_run_at"] > datetime.now(UTC)


async def test_due_daily_run_fires_once_as_a_schedule_run_and_records_its_outcome(env: Env) -> None:
    await env.portfolio()
    simulate_pipeline(env.bus)
    now = datetime.now(UTC)
    await env.execute(
        "UPDATE marketdata.batch_schedule SET next_run_at = :t WHERE name = 'daily_run'", t=now - timedelta(minutes=1)
    )
    assert await tick(env.ctx, now) == ["daily_run"]
    assert await tick(env.ctx, now) == []  # claimed: fires once
    run = (await env.rows("SELECT * FROM marketdata.batch_run"))[0]
    assert run["trigger"] == "schedule" and run["job_name"] == "run_all" and run["as_of_date"] == AS_OF
    assert run["requested_by"] == SYSTEM_USER_ID
    assert await env.scalar("SELECT requested_by FROM marketdata.job WHERE id = :r", r=run["id"]) == SYSTEM_USER_ID
    row = await schedule(env, "daily_run")
    assert row["last_run_id"] == run["id"] and row["last_status"] == "queued"
    assert row["next_run_at"] > now
    await env.bus.start()
    assert await wait_for_run(env.ctx, run["id"], 60) == "completed"
    assert (await schedule(env, "daily_run"))["last_status"] == "completed"
    # The next day's firing for the same as-of date is idempotent: the completed run is reused.
    again = await run_schedule(env.ctx, "daily_run")
    assert again["run_id"] == str(run["id"]) and again["deduplicated"] is True


async def test_firing_missed_by_more_than_the_grace_period_is_skipped(env: Env) -> None:
    now = datetime.now(UTC)
    await env.execute(
        "UPDATE marketdata.batch_schedule SET next_run_at = :t WHERE name = 'daily_run'", t=now - timedelta(hours=13)
    )
    assert await tick(env.ctx, now) == []
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 0
    assert (await schedule(env, "daily_run"))["next_run_at"] > now


async def test_history_backfill_schedule_starts_a_market_data_run_with_long_lookback(env: Env) -> None:
    result = await run_schedule(env.ctx, "history_backfill")
    run = (await env.rows("SELECT * FROM marketdata.batch_run WHERE id = :r", r=uuid.UUID(result["run_id"])))[0]
    assert run["job_name"] == "market_data" and run["cascade"] is False and run["steps"] == ["market_data"]
    assert run["params"] == {"lookback_days": 756} and run["trigger"] == "schedule"


async def test_housekeeping_purges_only_expired_rows(env: Env) -> None:
    old, fresh = uuid.uuid4(), uuid.uuid4()
    for ident, expires in ((old, "now() - interval '1 day'"), (fresh, "now() + interval '29 days'")):
        await env.execute(
            "INSERT INTO marketdata.job (id, job_type, status, requested_by, dedupe_key, expires_at) "
            f"VALUES (:i, 'batch.greeks', 'completed', :u, :k, {expires})",
            i=ident,
            u=SYSTEM_USER_ID,
            k=f"k{ident}",
        )
    run_id = uuid.uuid4()
    await env.execute(
        "INSERT INTO marketdata.batch_run (id, job_name, trigger, as_of_date, cascade, force, include_correlations, "
        "steps, scope_hash, status) VALUES (:i, 'greeks', 'manual', :d, false, false, true, ARRAY['greeks'], "
        "'\\x00', 'completed')",
        i=run_id,
        d=AS_OF,
    )
    for days in (200, 10):
        await env.execute(
            "INSERT INTO marketdata.batch_job_run (run_id, job, service, portfolio_id, as_of_date, status, started_at) "
            f"VALUES (:r, 'greeks', 'greeks', gen_random_uuid(), :d, 'completed', now() - interval '{days} days')",
            r=run_id,
            d=AS_OF,
        )
    result = await run_schedule(env.ctx, "housekeeping")
    assert result["status"] == "completed"
    assert result["purged"]["jobs"] == 1 and result["purged"]["batch_job_runs"] == 1
    assert await env.scalar("SELECT count(*) FROM marketdata.job WHERE id = :i", i=fresh) == 1
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_job_run") == 1
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_run") == 1  # runs are kept
    row = await schedule(env, "housekeeping")
    assert row["last_status"] == "completed" and row["last_run_at"] is not None and row["last_run_id"] is None


async def test_data_quality_check_reports_missing_closes_and_suspect_moves(env: Env) -> None:
    await collect_market_data(env.ctx, as_of=AS_OF, symbols=["AAPL", "MSFT"], lookback_days=5)
    await env.execute("DELETE FROM marketdata.daily_price WHERE symbol = 'MSFT' AND price_date = :d", d=AS_OF)
    await env.execute(
        "UPDATE marketdata.daily_price SET close = close * 3, adj_close = adj_close * 3, high = NULL, low = NULL, "
        "open = NULL WHERE symbol = 'AAPL' AND price_date = :d",
        d=AS_OF,
    )
    result = await run_schedule(env.ctx, "data_quality_check")
    assert result["status"] == "partial" and result["as_of_date"] == AS_OF.isoformat()
    assert "MSFT" in result["missing_close"] and "AAPL" not in result["missing_close"]
    assert [s["symbol"] for s in result["suspect_moves"]] == ["AAPL"]
    assert 1.5 < result["suspect_moves"][0]["return"] < 2.5  # about +200 %: three times the previous close
    job = (await env.rows("SELECT job_type, status, result FROM marketdata.job WHERE job_type LIKE 'batch.data%'"))[0]
    assert job["status"] == "partial" and job["result"]["suspect_moves"][0]["symbol"] == "AAPL"
    assert (await schedule(env, "data_quality_check"))["last_status"] == "partial"
