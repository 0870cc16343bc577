"""`batch_run.job_run_rows` (migration marketdata_0003) and the count it lets step batches skip.

* the step-row upsert adds exactly the rows it inserts to their run's counter (updates, repeats,
  retries and several runs in one statement included), so it always equals the run's row count;
* a batch of step reports counts the run's final rows only once the run has as many rows as it
  needs, and the run completes exactly when its last expected row becomes final (a non-final row
  keeps it open although the counter reached the need);
* the migration backfills the counter of existing runs and its downgrade drops it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from test_batch_support import ADMIN, AS_OF, Env, create_batch_database, step

from common.db import Database
from common.events import GreeksComputed
from common.migrations import alembic_config, upgrade
from common.testing import drop_database
from marketdata import batch_bookkeeping, batch_handlers
from marketdata import batch_repository as repo
from marketdata.batch_service import start_run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


async def greeks_run(env: Env, portfolios: int) -> tuple[dict[str, Any], list[uuid.UUID]]:
    """A queued single-step greeks run over `portfolios` new portfolios (3 rows needed for 3)."""
    pids = sorted([await env.portfolio() for _ in range(portfolios)])
    run, _, _ = await start_run(
        env.ctx,
        job_name="greeks",
        trigger="manual",
        requested_by=ADMIN.user_id,
        as_of_date=AS_OF,
        portfolio_ids=pids,
        cascade=False,
        force=True,
    )
    return run, pids


def report(run_id: uuid.UUID, pid: uuid.UUID, status: str, event: uuid.UUID, job: str = "greeks") -> dict[str, Any]:
    final = status != "running"
    return {
        "run_id": run_id,
        "job": job,
        "service": "greeks",
        "portfolio_id": pid,
        "as_of_date": AS_OF,
        "trigger": "manual",
        "status": status,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2) if final else None,
        "duration_ms": 2000 if final else None,
        "records_processed": 1,
        "error_code": "BOOM" if status == "failed" else None,
        "error_message": None,
        "details": None,
        "last_event_id": event,
    }


async def counters(env: Env, *run_ids: uuid.UUID) -> list[tuple[int, int]]:
    """(job_run_rows, actual row count) per run."""
    out = []
    for run_id in run_ids:
        kept = await env.scalar("SELECT job_run_rows FROM marketdata.batch_run WHERE id = :r", r=run_id)
        actual = await env.scalar("SELECT count(*) FROM marketdata.batch_job_run WHERE run_id = :r", r=run_id)
        out.append((kept, actual))
    return out


async def test_the_upsert_counts_exactly_the_rows_it_inserts(env: Env) -> None:
    (one, pids), (two, _) = await greeks_run(env, 3), await greeks_run(env, 1)
    a, b, c = pids
    e = [uuid.uuid4() for _ in range(8)]
    steps: list[tuple[list[dict[str, Any]], int, dict[uuid.UUID, int]]] = [
        # two new rows, one of them reported twice in the list (the last report wins)
        (
            [
                report(one["id"], a, "running", e[0]),
                report(one["id"], b, "failed", e[1]),
                report(one["id"], a, "running", e[2]),
            ],
            2,
            {one["id"]: 2},
        ),
        # updates only: running → completed, failed → completed (a retry); nothing inserted
        ([report(one["id"], a, "completed", e[3]), report(one["id"], b, "completed", e[4])], 2, {one["id"]: 0}),
        # repeats and a late report for a completed row change nothing
        ([report(one["id"], a, "completed", e[3]), report(one["id"], b, "failed", e[5])], 0, {}),
        # two runs in one statement, a new row and an update of a market-wide (NULL portfolio) row
        (
            [report(one["id"], c, "completed", e[6]), report(two["id"], None, "running", e[7], "market_data")],
            2,
            {one["id"]: 1, two["id"]: 1},
        ),  # type: ignore[arg-type]
        ([report(two["id"], None, "completed", e[0], "market_data")], 1, {two["id"]: 0}),  # type: ignore[arg-type]
    ]
    for rows, changed, inserted in steps:
        async with env.ctx.db.transaction() as s:
            keys = tuple(rows[0])
            written = await repo.write_job_runs(s, keys, [tuple(r[k] for k in keys) for r in rows])
        assert written.changed == changed
        assert written.inserted == inserted
        assert all(kept == actual for kept, actual in await counters(env, one["id"], two["id"]))
    assert await counters(env, one["id"], two["id"]) == [(3, 3), (1, 1)]
    attempts = await env.rows(
        "SELECT portfolio_id, status, attempt FROM marketdata.batch_job_run WHERE run_id = :r", r=one["id"]
    )
    # running → completed is a first attempt; failed → completed a retry
    assert {r["portfolio_id"]: (r["status"], r["attempt"]) for r in attempts} == {
        a: ("completed", 1),
        b: ("completed", 2),
        c: ("completed", 1),
    }


def greeks_event(run_id: uuid.UUID, pid: uuid.UUID) -> GreeksComputed:
    return GreeksComputed(
        run_id=run_id, as_of=AS_OF, portfolio_id=pid, cascade=False, producer="greeks", step=step("greeks")
    )


@pytest.fixture
def final_counts(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    """Runs whose final rows a step batch counted (progress refreshes switched off)."""
    counted: list[uuid.UUID] = []
    count = repo.final_step_row_count

    async def counting(session: Any, *, run_id: uuid.UUID) -> int:
        counted.append(run_id)
        return await count(session, run_id=run_id)

    monkeypatch.setattr(repo, "final_step_row_count", counting)
    monkeypatch.setattr(batch_bookkeeping, "_progress_due", lambda run_id, now: False)
    return counted


async def test_final_rows_are_counted_only_once_the_run_can_be_complete(
    env: Env, final_counts: list[uuid.UUID]
) -> None:
    run, (a, b, c) = await greeks_run(env, 3)
    status = "SELECT status FROM marketdata.batch_run WHERE id = :r"
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], a)])  # queued → running
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], b)])
    assert final_counts == [] and await env.scalar(status, r=run["id"]) == "running"
    last = greeks_event(run["id"], c)
    await batch_handlers.on_step_events(env.ctx, [last])
    assert final_counts == [run["id"]] and await env.scalar(status, r=run["id"]) == "completed"
    await batch_handlers.on_step_events(env.ctx, [last])  # a repeated delivery changes nothing
    assert final_counts == [run["id"]] and await counters(env, run["id"]) == [(3, 3)]


async def test_a_run_with_every_row_but_one_not_final_stays_open(env: Env, final_counts: list[uuid.UUID]) -> None:
    run, (a, b, c) = await greeks_run(env, 3)
    async with env.ctx.db.transaction() as s:  # c's step started: its row exists, not final
        await repo.upsert_job_run(s, **report(run["id"], c, "running", uuid.uuid4()))
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], a)])  # queued → running
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], b)])
    # Three rows exist, so the batch counts: two final of three needed, the run goes on.
    assert final_counts == [run["id"]]
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "running"
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], c)])
    assert await env.scalar("SELECT status FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == "completed"


async def test_progress_is_the_share_of_final_rows(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    run, (a, b, _) = await greeks_run(env, 3)
    monkeypatch.setattr(batch_bookkeeping, "_last_progress", {})
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], a)])  # queued → running
    await batch_handlers.on_step_events(env.ctx, [greeks_event(run["id"], b)])
    assert await env.scalar("SELECT progress_pct FROM marketdata.job WHERE id = :r", r=run["id"]) == 66


async def test_migration_backfills_the_counter_and_its_downgrade_drops_it(pg_admin_url: str) -> None:
    name = f"sigmasight_mdbatch_mig_{uuid.uuid4().hex[:8]}"
    url = await create_batch_database(pg_admin_url, name)
    config = alembic_config("marketdata", url)
    try:
        await asyncio.to_thread(command.downgrade, config, "marketdata_0002")
        db = Database(url, pool_size=1)
        runs = [uuid.uuid4() for _ in range(3)]
        async with db.transaction() as s:
            for n, run_id in enumerate(runs):
                await s.execute(
                    sa.text(
                        "INSERT INTO marketdata.batch_run (id, job_name, trigger, as_of_date, cascade, force, "
                        "include_correlations, steps, scope_hash, status) VALUES "
                        "(:id, 'greeks', 'manual', :d, false, false, true, '{greeks}', :h, 'completed')"
                    ),
                    {"id": run_id, "d": AS_OF, "h": run_id.bytes},
                )
                for _ in range(n * 2):  # 0, 2 and 4 rows
                    await s.execute(
                        sa.text(
                            "INSERT INTO marketdata.batch_job_run (run_id, job, service, portfolio_id, as_of_date, "
                            "status) VALUES (:r, 'greeks', 'greeks', :p, :d, 'completed')"
                        ),
                        {"r": run_id, "p": uuid.uuid4(), "d": AS_OF},
                    )
        await db.close()
        await asyncio.to_thread(upgrade, "marketdata", url)
        db = Database(url, pool_size=1)
        async with db.session() as s:
            kept = (
                await s.execute(
                    sa.text("SELECT id, job_run_rows FROM marketdata.batch_run WHERE id = ANY(:ids)"), {"ids": runs}
                )
            ).all()
        await db.close()
        assert {r.id: r.job_run_rows for r in kept} == {runs[0]: 0, runs[1]: 2, runs[2]: 4}
        await asyncio.to_thread(command.downgrade, config, "marketdata_0002")
        db = Database(url, pool_size=1)
        async with db.session() as s:
            columns = (
                await s.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = 'marketdata' AND table_name = 'batch_run'"
                    )
                )
            ).scalars()
            assert "job_run_rows" not in set(columns)
        await db.close()
    finally:
        await drop_database(pg_admin_url, name)
