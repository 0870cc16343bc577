"""Batch runs: validation and creation with deduplication (bookkeeping: batch_bookkeeping.py).

A run is a `batch_run` row, a job row in `marketdata.job` with the same id (`mkt_<run_id>`) and a
`cycle.started` event, all written in one unit of work (the event leaves through the outbox after
commit). "All active portfolios" is resolved to an explicit list here, so every consumer of the
run sees the same scope.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFound, ValidationFailed
from common.events import CycleStarted
from common.formatting import json_default, utcnow
from common.ids import SYSTEM_USER_ID, job_id
from common.logging import request_id_var
from common.uow import Work
from marketdata import batch_repository as repo
from marketdata.batch_bookkeeping import SERVICE, steps_to_api
from marketdata.batch_compute import aggregate_steps, job_type_for, planned_steps, scope_hash
from marketdata.calendar import CalendarRangeError, is_trading_day, latest_completed_trading_day
from marketdata.context import MarketDataContext
from marketdata.market_data import default_as_of

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=json_default))


def status_url(run_id: UUID) -> str:
    """The run's job status URL."""
    return f"/api/v1/jobs/{job_id(SERVICE, run_id)}"


def result_url(run_id: UUID) -> str:
    """Where a run's full status lives (api.md #18 for that run)."""
    return f"/api/v1/admin/batch/status?run_id={run_id}"


# --- validation --------------------------------------------------------------------------------


async def resolve_as_of(
    ctx: MarketDataContext, as_of: date | None, now: datetime, *, field: str = "body.as_of_date"
) -> date:
    """The run's business date: default latest completed trading day with data; 422 when invalid."""
    latest = default_as_of(ctx, now)
    if as_of is None:
        return latest
    if as_of > now.astimezone(NEW_YORK).date():
        raise ValidationFailed.field(field, "must not be in the future", as_of.isoformat())
    try:
        trading = is_trading_day(as_of)
    except CalendarRangeError as exc:
        raise ValidationFailed.field(field, str(exc), as_of.isoformat()) from exc
    if not trading:
        raise ValidationFailed.field(field, "must be an NYSE trading day", as_of.isoformat())
    completed = latest_completed_trading_day(now)
    if as_of > completed:
        raise ValidationFailed.field(
            field, f"the trading day has not closed yet (latest completed: {completed.isoformat()})", as_of.isoformat()
        )
    if as_of > latest:
        raise ValidationFailed.field(
            field,
            f"no market data after {latest.isoformat()} from provider {ctx.provider.name}",
            as_of.isoformat(),
        )
    return as_of


async def resolve_portfolios(
    session: AsyncSession, portfolio_ids: Sequence[UUID] | None, *, field: str = "body.portfolio_ids"
) -> list[UUID]:
    """Explicit ids (404 PORTFOLIO_NOT_FOUND for any unknown one) or every active portfolio."""
    if portfolio_ids is None:
        return await repo.active_portfolio_ids(session)
    wanted = list(dict.fromkeys(portfolio_ids))
    found = await repo.portfolios_by_id(session, ids=wanted)
    missing = [p for p in wanted if p not in found]
    if missing:
        raise NotFound(
            "PORTFOLIO",
            f"Portfolio {missing[0]} not found",
            details=[{"field": field, "issue": "unknown portfolio", "value": str(p)} for p in missing],
        )
    return sorted(wanted, key=str)


# --- run creation ------------------------------------------------------------------------------


class StartedRun(NamedTuple):
    """What `start_run` returns: the run row, its job row, and whether an existing run was reused."""

    run: dict[str, Any]
    job: dict[str, Any]
    deduplicated: bool


async def start_run(
    ctx: MarketDataContext,
    *,
    job_name: str,
    trigger: str,
    requested_by: UUID | None,
    as_of_date: date | None,
    portfolio_ids: Sequence[UUID] | None,
    cascade: bool,
    force: bool,
    params: Mapping[str, Any] | None = None,
    include_correlations: bool = True,
    request: Mapping[str, Any] | None = None,
    work: Work | None = None,
    now: datetime | None = None,
) -> StartedRun:
    """Create a run (batch_run + job row + cycle.started in one unit of work) or reuse an identical one.

    An identical queued/running run is returned with `deduplicated` true; so is an identical
    completed run unless `force` (this makes the daily trigger idempotent per as-of date).
    """
    now = now or utcnow()
    spec = _RunSpec(
        job_name=job_name,
        trigger=trigger,
        requested_by=requested_by or SYSTEM_USER_ID,
        as_of=await resolve_as_of(ctx, as_of_date, now),
        portfolio_ids=portfolio_ids,
        cascade=cascade,
        force=force,
        params=dict(params or {}),
        include_correlations=include_correlations,
        request=dict(request) if request is not None else None,
        now=now,
    )
    if work is not None:
        return await _start_run_in(ctx, work, spec)
    async with ctx.plumbing.uow.begin() as new_work:
        return await _start_run_in(ctx, new_work, spec)


@dataclass(frozen=True)
class _RunSpec:
    job_name: str
    trigger: str
    requested_by: UUID
    as_of: date
    portfolio_ids: Sequence[UUID] | None
    cascade: bool
    force: bool
    params: dict[str, Any]
    include_correlations: bool
    request: dict[str, Any] | None
    now: datetime


async def _start_run_in(ctx: MarketDataContext, work: Work, spec: _RunSpec) -> StartedRun:
    session = work.session
    ledger = ctx.plumbing.ledger
    job_name, as_of, cascade = spec.job_name, spec.as_of, spec.cascade
    scope = await resolve_portfolios(session, spec.portfolio_ids)
    run_params = _jsonable(spec.params)
    if job_name == "run_all":
        run_params.setdefault("include_correlations", spec.include_correlations)
        cascade = True
    plan = planned_steps(job_name, cascade=cascade, include_correlations=spec.include_correlations)
    digest = scope_hash(job_name, as_of, scope, run_params, plan)

    existing = await repo.find_active_run(session, scope_hash=digest)
    if existing is None and not spec.force:
        existing = await repo.find_completed_run(session, scope_hash=digest, job_table=ledger.table)
    if existing is not None:
        job = await ledger.get(session, existing["id"])
        if job is not None:
            return StartedRun(existing, job, True)

    run_id = uuid.uuid4()
    run = await repo.insert_run(
        session,
        id=run_id,
        job_name=job_name,
        trigger=spec.trigger,
        requested_by=spec.requested_by,
        as_of_date=as_of,
        portfolio_ids=scope,
        cascade=cascade,
        force=spec.force,
        include_correlations=spec.include_correlations,
        params=run_params,
        steps=plan,
        scope_hash=digest,
        status="queued",
    )
    if run is None:  # an identical run was created concurrently
        raced = await repo.find_active_run(session, scope_hash=digest)
        if raced is not None:
            job = await ledger.get(session, raced["id"])
            if job is not None:
                return StartedRun(raced, job, True)
        raise RuntimeError("run insert conflicted but no active run was found")

    request = spec.request or {
        "job_name": job_name,
        "trigger": spec.trigger,
        "cascade": cascade,
        "force": spec.force,
        "params": run_params,
    }
    # batch_run.scope_hash is the deduplication authority; the job row only mirrors the run.
    job, _ = await ledger.create(
        session,
        job_type=job_type_for(job_name),
        requested_by=spec.requested_by,
        scope={"portfolio_ids": [str(p) for p in scope], "as_of_date": as_of.isoformat()},
        request=_jsonable(request),
        ident=run_id,
        result_url=result_url(run_id),
        run_id=run_id,
        steps=steps_to_api(aggregate_steps(plan, scope, [], run_finished=False)),
        dedupe=False,
    )
    await ledger.update(session, run_id, heartbeat_at=spec.now, progress_step=plan[0] if plan else "")
    job = await ledger.get(session, run_id) or job
    work.emit(
        CycleStarted(
            event_id=uuid.uuid5(run_id, "cycle.started"),
            run_id=run_id,
            as_of=as_of,
            trigger=spec.trigger,
            steps=plan,
            portfolio_ids=scope,
            params=run_params,
            cascade=cascade,
            correlation_id=request_id_var.get(),
        )
    )
    log.info("run %s created: %s %s steps=%s portfolios=%d", run_id, job_name, as_of, plan, len(scope))
    return StartedRun(run, job, False)
