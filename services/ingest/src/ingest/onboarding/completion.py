"""Completing onboarding (api.md #62): activate the portfolio and follow its first run.

Activation, the job row, the step states and `portfolio.updated` (`change: "onboarded"`) are one
transaction; marketdata reacts to the event with a single-portfolio run. The `onboarding.complete`
job then polls that run until the first snapshot is in `stress.api_snapshot`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from common.db import Database
from common.errors import Conflict
from common.events import PortfolioUpdated
from common.formatting import iso_date
from common.jobs import JOB_TIMEOUT_SECONDS, JobOutcome
from common.service import Plumbing
from ingest.onboarding import market_reads, progress_store
from ingest.onboarding.jobs import COMPLETE_JOB, create_job, load_job, portfolio_url
from ingest.onboarding.model import MarketData

POLL_SECONDS = 2.0
# The completion job stops following the run before the runner's 15-minute limit would fail it.
DEADLINE_SECONDS = JOB_TIMEOUT_SECONDS - 60
RUN_STATUS_TO_STEP = {
    "queued": "running",
    "running": "running",
    "completed": "completed",
    "partial": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


async def start_completion(
    plumbing: Plumbing,
    portfolio_id: UUID,
    requested_by: UUID,
    symbols: list[str],
    market: MarketData,
    correlation_id: str | None,
) -> tuple[dict[str, Any], bool]:
    """Make the portfolio active and create the completion job (the caller starts it after commit)."""
    async with plumbing.uow.begin() as work:
        if not await progress_store.activate(work.session, portfolio_id):
            raise Conflict(
                "Portfolio is no longer in onboarding",
                details={"portfolio_id": str(portfolio_id)},
            )
        job, deduplicated = await create_job(
            plumbing,
            work.session,
            job_type=COMPLETE_JOB,
            requested_by=requested_by,
            portfolio_id=portfolio_id,
            request={"correlation_id": correlation_id, "symbols": symbols},
            result_url=portfolio_url(portfolio_id),
            steps=[{"name": "initial_run", "status": "running"}, {"name": "first_snapshot", "status": "pending"}],
        )
        await progress_store.set_step(work.session, portfolio_id, "initial_run", "running")
        await progress_store.set_step(work.session, portfolio_id, "first_snapshot", "pending")
        work.emit(
            PortfolioUpdated(
                as_of=market.reference_date,
                portfolio_id=portfolio_id,
                change="onboarded",
                symbols=symbols,
                trigger="onboarding",
                correlation_id=correlation_id,
            )
        )
    return job, deduplicated


async def follow_first_run(
    db: Database, plumbing: Plumbing, job_id: UUID, *, poll_seconds: float, deadline_seconds: float
) -> JobOutcome:
    """The onboarding.complete job: follow the initial run until the first snapshot exists.

    `partial` (the portfolio stays active) when the run fails or no snapshot arrives in time.
    """
    job, portfolio_id = await load_job(db, plumbing, job_id)
    since = job["created_at"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    last: tuple[str, str, str | None, str | None] | None = None
    pool = await db.pool()
    while True:
        async with pool.acquire() as conn:
            snapshot = await market_reads.first_snapshot_date(conn, portfolio_id)
            run = await market_reads.onboarding_run(conn, portfolio_id, since)
        run_step = "completed" if snapshot else RUN_STATUS_TO_STEP.get(run["status"], "running") if run else "running"
        snap_step = "completed" if snapshot else "pending"
        state = (
            run_step,
            snap_step,
            None if run is None else str(run["id"]),
            None if run is None else run["status"],
        )
        if state != last:  # write only changes: the poll runs every couple of seconds
            await _record(db, plumbing, job_id, portfolio_id, run_step, snap_step, run)
            last = state
        result = {
            "portfolio_id": str(portfolio_id),
            "status": "active",
            "run_id": None if run is None else str(run["id"]),
            "run_status": None if run is None else run["status"],
            "first_snapshot_date": iso_date(snapshot),
        }
        if snapshot is not None:
            return JobOutcome("completed", result, portfolio_url(portfolio_id))
        if run is not None and run_step == "failed":
            result["message"] = (
                f"the initial run {run['status']}; the portfolio is active and the next daily run "
                "will compute its analytics"
            )
            await _record(db, plumbing, job_id, portfolio_id, "failed", "pending", run, error=result["message"])
            return JobOutcome("partial", result, portfolio_url(portfolio_id))
        if loop.time() >= deadline:
            result["message"] = (
                f"no snapshot within {int(deadline_seconds // 60)} min; the portfolio is active and "
                "its first run continues in the background"
            )
            await _record(db, plumbing, job_id, portfolio_id, run_step, "pending", run, error=result["message"])
            return JobOutcome("partial", result, portfolio_url(portfolio_id))
        await asyncio.sleep(poll_seconds)


async def _record(
    db: Database,
    plumbing: Plumbing,
    job_id: UUID,
    portfolio_id: UUID,
    run_step: str,
    snap_step: str,
    run: dict[str, Any] | None,
    error: str | None = None,
) -> None:
    """Mirror the run's progress into the two onboarding steps and the job's steps/progress."""
    details = None if run is None else {"run_id": str(run["id"]), "run_status": run["status"]}
    pct = {"running": 30, "completed": 70, "failed": 90}.get(run_step, 30)
    async with db.transaction() as session:
        await progress_store.set_step(session, portfolio_id, "initial_run", run_step, details=details)
        await progress_store.set_step(session, portfolio_id, "first_snapshot", snap_step, last_error=error)
        await plumbing.ledger.update(
            session,
            job_id,
            steps=[{"name": "initial_run", "status": run_step}, {"name": "first_snapshot", "status": snap_step}],
            progress_pct=100 if snap_step == "completed" else pct,
            progress_step="first_snapshot" if run_step == "completed" else "initial_run",
            progress_message=error or "",
        )
