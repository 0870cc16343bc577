"""Run bookkeeping: step reports become batch_job_run rows; runs settle and mirror into their job.

Every pipeline event's `step` block (and the market_data step itself) is recorded idempotently;
after each report the state machine (`batch_compute.evaluate_run`) decides whether the run is
finished. The run's status, progress and per-step view are mirrored into its job row so
`/api/v1/jobs/mkt_<run_id>` shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common import metrics
from common.events import StepInfo
from common.formatting import iso_datetime, utcnow
from common.uow import Work
from marketdata import batch_repository as repo
from marketdata.batch_compute import (
    FINAL_JOB_RUN_STATUSES,
    MARKET_WIDE_STEPS,
    STEP_SERVICE,
    TERMINAL_RUN_STATUSES,
    RunOutcome,
    aggregate_steps,
    evaluate_run,
    expected_row_count,
    job_type_for,
)
from marketdata.context import MarketDataContext

log = logging.getLogger(__name__)

SERVICE = "marketdata"


def last_success_gauge() -> Any:
    """sigmasight_marketdata_batch_run_last_success_timestamp_seconds (api.md #6)."""
    return metrics.gauge(
        SERVICE,
        "batch_run_last_success_timestamp_seconds",
        "Unix time at which the latest batch run completed successfully",
    )


@dataclass(frozen=True)
class StepReport:
    """One step outcome to record (from an event's `step` block or the market_data step)."""

    job: str
    portfolio_id: UUID | None
    status: str  # batch_job_run status
    started_at: datetime | None
    finished_at: datetime | None
    records_processed: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    details: dict[str, Any] | None = None
    service: str | None = None


def report_from_step(step: StepInfo, portfolio_id: UUID | None, producer: str = "") -> StepReport:
    """A StepReport from an event's step block; `partial` is recorded as completed + details.partial."""
    status = "failed" if step.status == "failed" else "completed"
    details = {"partial": True} if step.status == "partial" else None
    return StepReport(
        job=step.name,
        portfolio_id=None if step.name in MARKET_WIDE_STEPS else portfolio_id,
        status=status,
        started_at=step.started_at,
        finished_at=step.finished_at,
        records_processed=step.records_processed,
        error_code=step.error.code if step.error else None,
        error_message=step.error.message[:1000] if step.error else None,
        details=details,
        service=STEP_SERVICE.get(step.name) or producer or "unknown",
    )


def job_run_values(run: Mapping[str, Any], report: StepReport, *, event_id: UUID | None) -> dict[str, Any]:
    """The batch_job_run row a step report writes for `run`."""
    duration = None
    if report.started_at is not None and report.finished_at is not None:
        duration = max(0, int((report.finished_at - report.started_at).total_seconds() * 1000))
    final = report.status in FINAL_JOB_RUN_STATUSES
    return {
        "run_id": run["id"],
        "job": report.job,
        "service": report.service or STEP_SERVICE.get(report.job, "unknown"),
        "portfolio_id": report.portfolio_id,
        "as_of_date": run["as_of_date"],
        "trigger": run["trigger"],
        "status": report.status,
        "started_at": report.started_at,
        "finished_at": report.finished_at if final else None,
        "duration_ms": duration if final else None,
        "records_processed": report.records_processed,
        "error_code": report.error_code,
        "error_message": report.error_message,
        "details": report.details,
        "last_event_id": event_id,
    }


async def record_step(
    session: AsyncSession, run: Mapping[str, Any], report: StepReport, *, event_id: UUID | None
) -> bool:
    """Upsert the step row of `report` for `run` (idempotent, never regresses a completed row)."""
    return await repo.upsert_job_run(session, **job_run_values(run, report, event_id=event_id))


@dataclass(frozen=True)
class Settled:
    """Result of settling a run after a change: its outcome and whether it just finished."""

    run_id: UUID
    outcome: RunOutcome
    finished_now: bool
    status: str
    finished_at: datetime | None
    job_type: str = ""  # set when the run finished now (its job row's type, e.g. batch.run_all)
    duration_seconds: float | None = None


async def settle_run(
    ctx: MarketDataContext,
    session: AsyncSession,
    run: dict[str, Any],
    now: datetime,
    *,
    allow_missing: bool = False,
) -> Settled:
    """Re-evaluate a (locked) run from its step rows; finish it when every planned step reported."""
    rows = await repo.step_rows(session, run_id=run["id"])
    scope = list(run["portfolio_ids"] or [])
    outcome = evaluate_run(run["steps"], scope, rows, allow_missing=allow_missing)
    if run["status"] in TERMINAL_RUN_STATUSES:
        return Settled(run["id"], outcome, False, run["status"], run["finished_at"])
    started_at = run["started_at"] or now
    if outcome.done:
        status = outcome.status
        duration = max(0, int((now - started_at).total_seconds() * 1000))
        await repo.update_run(
            session,
            run_id=run["id"],
            status=status,
            started_at=started_at,
            finished_at=now,
            duration_ms=duration,
            error_summary=outcome.error_summary,
        )
        run.update(status=status, started_at=started_at, finished_at=now, duration_ms=duration)
        agg = aggregate_steps(run["steps"], scope, rows, run_finished=True)
        await mirror_job(ctx, session, run, outcome, agg, now)
        await repo.mark_schedule_runs(session, run_id=run["id"], status=status)
        log.info("run %s finished: %s (%s)", run["id"], status, outcome.error_summary or "no failures")
        return Settled(run["id"], outcome, True, status, now, job_type_for(run["job_name"]), duration / 1000)
    if run["status"] == "queued":
        await repo.update_run(session, run_id=run["id"], status="running", started_at=started_at)
        run.update(status="running", started_at=started_at)
        await repo.mark_schedule_runs(session, run_id=run["id"], status="running")
    agg = aggregate_steps(run["steps"], scope, rows, run_finished=False)
    await mirror_job(ctx, session, run, outcome, agg, now)
    return Settled(run["id"], outcome, False, run["status"], None)


def after_commit(settled: Settled) -> None:
    """Side effects once the transaction committed: the last-success gauge, and the run's duration in
    sigmasight_marketdata_job_duration_seconds (api.md #6; a run is the job behind run-all / triggers)."""
    if settled.finished_now and settled.duration_seconds is not None:
        metrics.job_duration("marketdata").labels(settled.job_type, settled.status).observe(settled.duration_seconds)
    if settled.finished_now and settled.status == "completed" and settled.finished_at is not None:
        last_success_gauge().set(settled.finished_at.timestamp())


async def mirror_job(
    ctx: MarketDataContext,
    session: AsyncSession,
    run: Mapping[str, Any],
    outcome: RunOutcome,
    agg: list[dict[str, Any]],
    now: datetime,
) -> None:
    ledger = ctx.plumbing.ledger
    values: dict[str, Any] = {
        "steps": steps_to_api(agg),
        "progress_pct": outcome.progress_pct,
        "progress_step": outcome.current_step or (run["steps"][-1] if run["steps"] else ""),
        "heartbeat_at": now,
        "started_at": run["started_at"],
    }
    status = run["status"]
    scope = run["portfolio_ids"] or []
    if status in TERMINAL_RUN_STATUSES:
        values.update(
            status=status,
            finished_at=run["finished_at"] or now,
            progress_pct=100,
            progress_message=outcome.error_summary or "",
            result={"portfolios": len(scope), "failed": len(outcome.portfolios_failed)},
        )
        if status == "failed":
            values.update(error_code="STEPS_FAILED", error_message=(outcome.error_summary or "")[:1000], retryable=True)
        else:
            values.update(error_code=None, error_message=None, retryable=None)
    else:
        # A restart may have marked the job interrupted while the run went on: the run is the truth.
        values.update(status=status, finished_at=None, error_code=None, error_message=None, retryable=None)
        values["progress_message"] = f"waiting for {outcome.current_step}" if outcome.current_step else ""
    await ledger.update(session, run["id"], **values)


# One step block of a batch of pipeline events: (run_id, step, portfolio_id, producer, event_id).
StepEvent = tuple[UUID, StepInfo, UUID | None, str, UUID | None]


def step_row(step: StepInfo, portfolio_id: UUID | None, producer: str, event_id: UUID | None) -> tuple[Any, ...]:
    """The batch_job_run row (in `repo.STEP_ROW_KEYS` order: the run's id, as-of date and trigger
    come from the locked run row) of one event's step block: the values of
    `job_run_values(run, report_from_step(step, portfolio_id, producer), event_id=event_id)` without
    building the report and the dict in between (a 1,000-portfolio run records ~7,000 of them)."""
    name = step.name
    error = step.error
    started, finished = step.started_at, step.finished_at
    duration = None
    if started is not None and finished is not None:
        duration = max(0, int((finished - started).total_seconds() * 1000))
    # A step block is `completed`, `partial` or `failed`: recorded as `completed` or `failed`, both
    # final, so finished_at and duration_ms are always kept (job_run_values drops them otherwise).
    return (
        name,
        STEP_SERVICE.get(name) or producer or "unknown",
        None if name in MARKET_WIDE_STEPS else portfolio_id,
        "failed" if step.status == "failed" else "completed",
        started,
        finished,
        duration,
        step.records_processed,
        error.code if error else None,
        error.message[:1000] if error else None,
        {"partial": True} if step.status == "partial" else None,
        event_id,
    )


async def apply_step_reports(
    ctx: MarketDataContext,
    work: Work,
    reports: Sequence[StepEvent],
    now: datetime | None = None,
) -> list[Settled]:
    """Record many step blocks at once: one bulk upsert and one settlement per run.

    Runs are locked in id order so concurrent batches never deadlock; settling once per batch keeps
    a cycle over many portfolios from re-reading every step row for every single report.
    """
    by_run: dict[UUID, list[StepEvent]] = {}
    for report in reports:
        by_run.setdefault(report[0], []).append(report)
    settled: list[Settled] = []
    for run_id in sorted(by_run, key=str):
        rows = [step_row(step, pid, producer, event_id) for _, step, pid, producer, event_id in by_run[run_id]]
        written = await repo.lock_run_and_write_steps(work.session, run_id=run_id, rows=rows)
        if written is None:
            log.info("%d step report(s) for unknown run %s ignored", len(by_run[run_id]), run_id)
            continue
        head = written.head
        when = now or utcnow()
        if head["status"] == "running":
            needed = await _needed_rows(work.session, run_id)
            # The run finishes only when every expected step row is final. `job_run_rows` (rows ever
            # inserted for the run) bounds its final rows from above: while it is below the need the
            # run cannot be complete and the count is skipped; from there the final rows are counted.
            final: int | None = None
            if head["job_run_rows"] + written.inserted >= needed:
                final = await repo.final_step_row_count(work.session, run_id=run_id)
            if final is None or final < needed:
                # Refresh the job's progress cheaply, at most once a second. The per-step aggregate
                # is computed on read by GET /admin/batch/status and written to the job when the run
                # finishes, so a cycle over 1,000 portfolios (≈ 8,000 reports) does not re-read every
                # row for every batch.
                if _progress_due(run_id, when):
                    if final is None:
                        final = await repo.final_step_row_count(work.session, run_id=run_id)
                    await _write_progress(ctx, work.session, run_id, final, needed, when)
                continue
        run = await repo.get_run(work.session, run_id=run_id)  # locked above
        assert run is not None
        settled.append(await settle_run(ctx, work.session, run, when))
    return settled


# Final step rows each run needs (its planned steps and scope never change once it is created).
_needed: dict[UUID, int] = {}
# When each run's job progress was last written (this process).
_last_progress: dict[UUID, datetime] = {}
PROGRESS_INTERVAL_SECONDS = 1.0


def _remember(cache: dict[UUID, Any], key: UUID, value: Any) -> None:
    cache[key] = value
    if len(cache) > 1000:  # bounded: forget the oldest runs
        for old in list(cache)[:500]:
            del cache[old]


async def _needed_rows(session: AsyncSession, run_id: UUID) -> int:
    """`expected_row_count` of a run, read once per process (its scope is ~1,000 ids to decode)."""
    needed = _needed.get(run_id)
    if needed is None:
        run = await repo.get_run(session, run_id=run_id)
        assert run is not None
        needed = expected_row_count(run["steps"], list(run["portfolio_ids"] or []))
        _remember(_needed, run_id, needed)
    return needed


def _progress_due(run_id: UUID, now: datetime) -> bool:
    last = _last_progress.get(run_id)
    return last is None or (now - last).total_seconds() >= PROGRESS_INTERVAL_SECONDS


async def _write_progress(
    ctx: MarketDataContext, session: AsyncSession, run_id: UUID, final: int, needed: int, now: datetime
) -> None:
    _remember(_last_progress, run_id, now)
    pct = min(99, int(100 * final / needed)) if needed else 0
    await ctx.plumbing.ledger.update(session, run_id, progress_pct=pct, heartbeat_at=now)


async def skip_portfolio(ctx: MarketDataContext, work: Work, *, portfolio_id: UUID, reason: str) -> list[Settled]:
    """A portfolio left mid-run (removed/archived): its unreported steps become `skipped`."""
    now = utcnow()
    out: list[Settled] = []
    for run in await repo.runs_containing_portfolio(work.session, portfolio_id=portfolio_id):
        rows = await repo.step_rows(work.session, run_id=run["id"])
        reported = {r.job for r in rows if r.portfolio_id == portfolio_id and r.status in FINAL_JOB_RUN_STATUSES}
        for step in run["steps"]:
            if step in MARKET_WIDE_STEPS or step in reported:
                continue
            await record_step(
                work.session,
                run,
                StepReport(
                    job=step,
                    portfolio_id=portfolio_id,
                    status="skipped",
                    started_at=now,
                    finished_at=now,
                    error_code="PORTFOLIO_" + reason.upper(),
                    error_message=f"portfolio {reason} during the run",
                ),
                event_id=None,
            )
        out.append(await settle_run(ctx, work.session, run, now))
    return out


# --- views -------------------------------------------------------------------------------------


def steps_to_api(agg: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Aggregated steps with datetimes rendered (api.md §2.7)."""
    out = []
    for s in agg:
        item = dict(s)
        item["started_at"] = iso_datetime(s.get("started_at"))
        item["finished_at"] = iso_datetime(s.get("finished_at"))
        out.append(item)
    return out
