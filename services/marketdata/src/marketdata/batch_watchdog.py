"""Keeping runs honest: the 60-minute run limit, late step reports, job-row heartbeats, the gauge.

Called every few seconds by `scheduler.scheduler_loop` in every running mode.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from common.formatting import utcnow
from marketdata import batch_repository as repo
from marketdata.batch_bookkeeping import Settled, after_commit, last_success_gauge, mirror_job, settle_run
from marketdata.batch_compute import RUN_TIME_LIMIT_SECONDS, STRAGGLER_GRACE_SECONDS, aggregate_steps, evaluate_run
from marketdata.context import MarketDataContext
from marketdata.models_batch import batch_run

log = logging.getLogger(__name__)


async def fail_overdue_runs(ctx: MarketDataContext, now: datetime | None = None) -> list[UUID]:
    """Fail runs older than the 60-minute run limit with JOB_TIMEOUT (api.md §2.9)."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=RUN_TIME_LIMIT_SECONDS)
    failed: list[UUID] = []
    message = f"run exceeded {RUN_TIME_LIMIT_SECONDS // 60} min"
    async with ctx.plumbing.uow.begin() as work:
        session = work.session
        for run in await repo.overdue_runs(session, cutoff=cutoff):
            await repo.fail_open_job_runs(session, run_id=run["id"], code="JOB_TIMEOUT", message=message)
            rows = await repo.step_rows(session, run_id=run["id"])
            scope = list(run["portfolio_ids"] or [])
            started_at = run["started_at"] or run["created_at"]
            outcome = evaluate_run(run["steps"], scope, rows)
            summary = f"JOB_TIMEOUT: {message}" + (f"; {outcome.error_summary}" if outcome.error_summary else "")
            duration = max(0, int((now - started_at).total_seconds() * 1000))
            await repo.update_run(
                session,
                run_id=run["id"],
                status="failed",
                started_at=started_at,
                finished_at=now,
                duration_ms=duration,
                error_summary=summary[:1000],
            )
            run.update(status="failed", started_at=started_at, finished_at=now)
            agg = aggregate_steps(run["steps"], scope, rows, run_finished=True)
            await mirror_job(ctx, session, run, outcome, agg, now)
            await ctx.plumbing.ledger.update(
                session, run["id"], error_code="JOB_TIMEOUT", error_message=summary[:1000], retryable=True
            )
            await repo.mark_schedule_runs(session, run_id=run["id"], status="failed")
            failed.append(run["id"])
            log.warning("run %s failed: %s", run["id"], message)
    return failed


async def settle_stragglers(ctx: MarketDataContext, now: datetime | None = None) -> list[UUID]:
    """Finish runs whose terminal step reported everywhere but an earlier report never came.

    Reports of different steps can arrive out of order, so a run normally waits for all of them;
    after STRAGGLER_GRACE_SECONDS without any new report it finishes with what it has.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=STRAGGLER_GRACE_SECONDS)
    done: list[Settled] = []
    async with ctx.plumbing.uow.begin() as work:
        for run in await repo.active_runs(work.session, lock=True):
            rows = await repo.step_rows(work.session, run_id=run["id"])
            outcome = evaluate_run(run["steps"], list(run["portfolio_ids"] or []), rows)
            if outcome.done or not outcome.terminal_reported:
                continue
            last = await repo.last_step_update(work.session, run_id=run["id"])
            if last is not None and last > cutoff:
                continue
            log.warning("run %s: finishing without late step reports (%s)", run["id"], outcome.current_step)
            done.append(await settle_run(ctx, work.session, run, now, allow_missing=True))
    for settled in done:
        after_commit(settled)
    return [s.run_id for s in done]


async def heartbeat_active_jobs(ctx: MarketDataContext) -> int:
    """Keep the job rows of active runs fresh so the job runner never mistakes them for orphans."""
    job = ctx.plumbing.ledger.table
    async with ctx.db.transaction() as session:
        result = await session.execute(
            sa.update(job)
            .where(
                job.c.id.in_(sa.select(batch_run.c.id).where(batch_run.c.status.in_(("queued", "running")))),
            )
            .values(heartbeat_at=sa.func.now())
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def init_last_success_gauge(ctx: MarketDataContext) -> None:
    """Seed the last-success gauge from the database (process start)."""
    async with ctx.db.session() as session:
        finished = await repo.last_success_finished_at(session)
    gauge = last_success_gauge()  # exported from the start (0 = no success yet), not only after one
    if finished is not None:
        gauge.set(finished.timestamp())
