"""Read models of the admin batch endpoints: status (#18), history (#19), schedule (#20)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFound
from common.events import STEP_NAMES
from common.formatting import iso_date, iso_datetime
from common.ids import job_id
from marketdata import batch_repository as repo
from marketdata.batch_bookkeeping import SERVICE, steps_to_api
from marketdata.batch_compute import TERMINAL_RUN_STATUSES, aggregate_steps, evaluate_run
from marketdata.context import MarketDataContext
from marketdata.models_batch import batch_job_run
from marketdata.scheduler import schedule_next_run

HISTORY_SORTS: dict[str, Any] = {
    "started_at": batch_job_run.c.started_at,
    "duration_ms": batch_job_run.c.duration_ms,
    "job": batch_job_run.c.job,
}


async def run_view(
    session: AsyncSession, run: Mapping[str, Any], *, portfolio_id: UUID | None = None
) -> dict[str, Any]:
    """The `run` object of api.md #18: the run and its steps aggregated per step across portfolios."""
    rows = await repo.step_rows(session, run_id=run["id"])
    scope = list(run["portfolio_ids"] or [])
    outcome = evaluate_run(run["steps"], scope, rows)
    if portfolio_id is not None:
        rows = [r for r in rows if r.portfolio_id is None or r.portfolio_id == portfolio_id]
    finished = run["status"] in TERMINAL_RUN_STATUSES
    agg = aggregate_steps(run["steps"], scope, rows, run_finished=finished, only_portfolio=portfolio_id)
    return {
        "run_id": str(run["id"]),
        "job_id": job_id(SERVICE, run["id"]),
        "job_name": run["job_name"],
        "trigger": run["trigger"],
        "as_of_date": iso_date(run["as_of_date"]),
        "status": run["status"],
        "cascade": run["cascade"],
        "force": run["force"],
        "params": run["params"] or {},
        "portfolios": len(scope),
        "portfolio_ids": [str(p) for p in scope],
        "portfolios_failed": [str(p) for p in outcome.portfolios_failed],
        "requested_by": str(run["requested_by"]) if run["requested_by"] else None,
        "created_at": iso_datetime(run["created_at"]),
        "started_at": iso_datetime(run["started_at"]),
        "finished_at": iso_datetime(run["finished_at"]),
        "duration_ms": run["duration_ms"],
        "progress_pct": 100 if finished else outcome.progress_pct,
        "error_summary": run["error_summary"],
        "steps": steps_to_api(agg),
    }


def scheduler_state(ctx: MarketDataContext, daily: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """`scheduler` block of #18: whether the daily run fires, and when next."""
    # Distributed mode: a Kubernetes CronJob fires the schedule, so the in-process switch is moot.
    firing = ctx.settings.scheduler_on or ctx.settings.mode == "distributed"
    if daily is None or not daily["enabled"] or not firing:
        return {"state": "disabled", "next_run_at": None}
    return {"state": "enabled", "next_run_at": iso_datetime(schedule_next_run(dict(daily), now))}


async def status_payload(
    ctx: MarketDataContext, *, run_id: UUID | None, portfolio_id: UUID | None, now: datetime
) -> dict[str, Any]:
    """api.md #18: scheduler state, the requested (or running, else latest) run, running steps, last successes."""
    async with ctx.db.session() as session:
        if run_id is not None:
            run = await repo.get_run(session, run_id=run_id)
            if run is None:
                raise NotFound("JOB", f"Batch run {run_id} not found")
        else:
            run = await repo.current_run(session)
        run_block = await run_view(session, run, portfolio_id=portfolio_id) if run is not None else None
        running: list[dict[str, Any]] = []
        for active in await repo.active_runs(session):
            view = (
                run_block if run_block and run_block["run_id"] == str(active["id"]) and portfolio_id is None else None
            )
            if view is None:
                view = await run_view(session, active)
            running.extend(
                {
                    "run_id": view["run_id"],
                    "job_id": view["job_id"],
                    "job": step["job"],
                    "service": step["service"],
                    "status": step["status"],
                    "trigger": view["trigger"],
                    "as_of_date": view["as_of_date"],
                    "portfolios_total": step["portfolios_total"],
                    "portfolios_completed": step["portfolios_completed"],
                    "portfolios_failed": step["portfolios_failed"],
                    "started_at": step["started_at"],
                }
                for step in view["steps"]
                if step["status"] in ("running", "queued")
            )
        last = await repo.last_completed_by_step(session)
        daily = await repo.get_schedule(session, name="daily_run")
    return {
        "scheduler": scheduler_state(ctx, daily, now),
        "run": run_block,
        "running_jobs": running,
        "last_completed": {step: iso_datetime(last.get(step)) for step in STEP_NAMES},
    }


@dataclass(frozen=True)
class HistoryQuery:
    """Filters, sort and page of #19 (already validated)."""

    jobs: Sequence[str] = ()
    statuses: Sequence[str] = ()
    triggers: Sequence[str] = ()
    portfolio_id: UUID | None = None
    run_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: Sequence[tuple[str, bool]] = (("started_at", True),)
    limit: int = 50
    offset: int = 0


def _history_filters(q: HistoryQuery) -> list[Any]:
    t = batch_job_run.c
    conds: list[Any] = []
    if q.jobs:
        conds.append(t.job.in_(list(q.jobs)))
    if q.statuses:
        conds.append(t.status.in_(list(q.statuses)))
    if q.triggers:
        conds.append(t.trigger.in_(list(q.triggers)))
    if q.portfolio_id is not None:
        conds.append(t.portfolio_id == q.portfolio_id)
    if q.run_id is not None:
        conds.append(t.run_id == q.run_id)
    if q.since is not None:
        conds.append(t.started_at >= q.since)
    if q.until is not None:
        conds.append(t.started_at <= q.until)
    return conds


def history_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One #19 item."""
    error = None
    if row["error_code"] or row["error_message"]:
        error = {"code": row["error_code"] or "FAILED", "message": row["error_message"] or ""}
    return {
        "job_run_id": str(row["id"]),
        "run_id": str(row["run_id"]),
        "job_id": job_id(SERVICE, row["run_id"]),
        "job": row["job"],
        "service": row["service"],
        "portfolio_id": str(row["portfolio_id"]) if row["portfolio_id"] else None,
        "status": row["status"],
        "trigger": row["trigger"],
        "attempt": row["attempt"],
        "as_of_date": iso_date(row["as_of_date"]),
        "started_at": iso_datetime(row["started_at"]),
        "finished_at": iso_datetime(row["finished_at"]),
        "duration_ms": row["duration_ms"],
        "records_processed": row["records_processed"],
        "error": error,
        "details": row["details"],
    }


async def history(
    ctx: MarketDataContext, q: HistoryQuery, *, with_summary: bool
) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]:
    """#19 rows (one per step × portfolio), total over the filters, and the optional summary."""
    t = batch_job_run.c
    conds = _history_filters(q)
    order: list[Any] = []
    for name, desc in q.sort:
        col = HISTORY_SORTS[name]
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    order.append(t.id.asc())
    async with ctx.db.session() as session:
        total = (
            await session.execute(sa.select(sa.func.count()).select_from(batch_job_run).where(*conds))
        ).scalar_one()
        rows = (
            (
                await session.execute(
                    sa.select(batch_job_run).where(*conds).order_by(*order).limit(q.limit).offset(q.offset)
                )
            )
            .mappings()
            .all()
        )
        summary = None
        if with_summary:
            by_status = {
                r[0]: int(r[1])
                for r in await session.execute(
                    sa.select(t.status, sa.func.count()).select_from(batch_job_run).where(*conds).group_by(t.status)
                )
            }
            avg_by_job = {
                r[0]: round(float(r[1]), 1)
                for r in await session.execute(
                    sa.select(t.job, sa.func.avg(t.duration_ms))
                    .select_from(batch_job_run)
                    .where(*conds, t.duration_ms.is_not(None))
                    .group_by(t.job)
                )
                if r[1] is not None
            }
            decided = by_status.get("completed", 0) + by_status.get("failed", 0)
            summary = {
                "total": int(total),
                "by_status": by_status,
                "success_rate": round(by_status.get("completed", 0) / decided, 6) if decided else None,
                "avg_duration_ms_by_job": avg_by_job,
            }
    return [history_item(r) for r in rows], int(total), summary


async def schedule_items(ctx: MarketDataContext, now: datetime) -> list[dict[str, Any]]:
    """#20 items: definitions with the next firing (cron + timezone + NYSE trading days)."""
    async with ctx.db.session() as session:
        rows = await repo.schedules(session)
    out = []
    for row in rows:
        nxt = schedule_next_run(row, now) if row["enabled"] else None
        out.append(
            {
                "name": row["name"],
                "description": row["description"],
                "job_name": row["job_name"],
                "cron": row["cron"],
                "timezone": row["timezone"],
                "trading_days_only": row["trading_days_only"],
                "enabled": row["enabled"],
                "params": row["params"] or {},
                "next_run_at": iso_datetime(nxt),
                "last_run_at": iso_datetime(row["last_run_at"]),
                "last_run_id": str(row["last_run_id"]) if row["last_run_id"] else None,
                "last_status": row["last_status"],
            }
        )
    return out
