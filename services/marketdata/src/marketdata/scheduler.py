"""Schedules (data-model.md §5.9, api.md #20): seed, next firing, the in-process scheduler loop.

`scheduler_loop(ctx)` runs in the background of the marketdata service in every mode. It always
keeps active runs' job rows alive and enforces the 60-minute run limit; when
`settings.scheduler_on` (all-in-one default) it also fires due schedules. In distributed mode a
Kubernetes CronJob fires them instead by calling `run_schedule(ctx, name)` through the API, so
the firing logic lives in plain functions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from common.db import Database
from common.formatting import iso_date, iso_datetime, utcnow
from common.ids import SYSTEM_USER_ID
from common.jobs import JobOutcome
from marketdata import batch_repository as repo
from marketdata.batch_compute import PIPELINE_STEPS, next_fire, validate_cron
from marketdata.batch_service import start_run
from marketdata.batch_watchdog import (
    fail_overdue_runs,
    heartbeat_active_jobs,
    init_last_success_gauge,
    settle_stragglers,
)
from marketdata.calendar import CalendarRangeError, is_trading_day, previous_trading_day
from marketdata.context import MarketDataContext
from marketdata.cycle_gauges import refresh_cycle_gauges
from marketdata.market_data import default_as_of
from marketdata.models import daily_price, security
from marketdata.models_batch import batch_job_run, batch_schedule

log = logging.getLogger(__name__)

TIMEZONE = "America/New_York"
TICK_SECONDS = 15.0
# A firing missed by more than this (process down) is skipped rather than run late.
MISSED_FIRING_GRACE = timedelta(hours=12)
SUSPECT_RETURN = 0.5  # calculations.md §0.4: a single-day |r| > 50 % is a data-quality warning


@dataclass(frozen=True)
class ScheduleDef:
    """A seeded schedule."""

    name: str
    description: str
    job_name: str
    cron: str
    trading_days_only: bool
    params: dict[str, Any]
    timezone: str = TIMEZONE
    enabled: bool = True


DEFAULT_SCHEDULES: tuple[ScheduleDef, ...] = (
    ScheduleDef(
        "daily_run",
        "Daily batch run for every active portfolio and the trading day that just closed: "
        + " → ".join(PIPELINE_STEPS)
        + ". 16:30 New York time leaves time for end-of-day prices to settle.",
        "run_all",
        "30 16 * * 1-5",
        True,
        {},
    ),
    ScheduleDef(
        "data_quality_check",
        "Checks the stored prices of the latest completed trading day: active securities with recent "
        "history but no close, and single-day moves beyond ±50 % (kept, flagged). Result in a job row.",
        "data_quality_check",
        "0 19 * * 1-5",
        True,
        {"lookback_trading_days": 10},
    ),
    ScheduleDef(
        "history_backfill",
        "Weekly re-fetch of three years of daily price history for every held symbol and factor ETF "
        "(fills provider gaps and picks up late corrections); market data only, no downstream steps.",
        "market_data",
        "0 2 * * 0",
        False,
        {"lookback_days": 756},
    ),
    ScheduleDef(
        "housekeeping",
        "Purges marketdata's expired rows: job rows past their 30-day retention, batch step rows older "
        "than 180 days, published outbox rows and processed-event claims older than 30 days. Each service "
        "purges its own expired data (uploads, reports, sessions, idempotency keys).",
        "housekeeping",
        "0 3 * * *",
        False,
        {"job_run_retention_days": 180, "event_retention_days": 30},
    ),
)


def trading_day_predicate(d: date) -> bool:
    """is_trading_day, falling back to Monday–Friday outside the materialised calendar."""
    try:
        return is_trading_day(d)
    except CalendarRangeError:
        return d.weekday() < 5


def schedule_next_run(schedule: dict[str, Any] | ScheduleDef, after: datetime) -> datetime:
    """Next firing of a schedule strictly after `after` (UTC)."""
    if isinstance(schedule, ScheduleDef):
        cron, tz, tdo = schedule.cron, schedule.timezone, schedule.trading_days_only
    else:
        cron, tz, tdo = schedule["cron"], schedule["timezone"], schedule["trading_days_only"]
    return next_fire(cron, tz, after, trading_days_only=tdo, is_trading_day=trading_day_predicate)


async def seed_schedules(db: Database, *, now: datetime | None = None) -> int:
    """Upsert the four schedules of api.md #20 (idempotent; keeps `enabled` and last-run fields)."""
    now = now or utcnow()
    async with db.transaction() as session:
        for s in DEFAULT_SCHEDULES:
            validate_cron(s.cron)
            stmt = pg.insert(batch_schedule).values(
                name=s.name,
                description=s.description,
                job_name=s.job_name,
                cron=s.cron,
                timezone=s.timezone,
                trading_days_only=s.trading_days_only,
                enabled=s.enabled,
                params=s.params,
                next_run_at=schedule_next_run(s, now),
            )
            ex = stmt.excluded
            changed = sa.or_(
                batch_schedule.c.next_run_at.is_(None),
                batch_schedule.c.cron.is_distinct_from(ex.cron),
                batch_schedule.c.timezone.is_distinct_from(ex.timezone),
                batch_schedule.c.trading_days_only.is_distinct_from(ex.trading_days_only),
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        "description": ex.description,
                        "job_name": ex.job_name,
                        "cron": ex.cron,
                        "timezone": ex.timezone,
                        "trading_days_only": ex.trading_days_only,
                        "params": ex.params,
                        "next_run_at": sa.case((changed, ex.next_run_at), else_=batch_schedule.c.next_run_at),
                        "updated_at": sa.func.now(),
                    },
                )
            )
    return len(DEFAULT_SCHEDULES)


# --- firing ------------------------------------------------------------------------------------


async def run_schedule(ctx: MarketDataContext, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Fire schedule `name` now (scheduler loop, or the distributed CronJob through the API)."""
    now = now or utcnow()
    async with ctx.db.session() as session:
        schedule = await repo.get_schedule(session, name=name)
    if schedule is None:
        raise KeyError(f"unknown schedule {name!r}")
    params = dict(schedule["params"] or {})
    job_name = schedule["job_name"]
    try:
        if job_name == "housekeeping":
            result = await housekeeping(ctx, now=now, params=params)
            status, run_id = "completed", None
        elif job_name == "data_quality_check":
            result = await data_quality_check(ctx, now=now, params=params)
            status, run_id = result["status"], None
        else:
            include_correlations = bool(params.pop("include_correlations", True))
            cascade = job_name == "run_all" or bool(params.pop("cascade", False))
            started = await start_run(
                ctx,
                job_name=job_name,
                trigger="schedule",
                requested_by=SYSTEM_USER_ID,
                as_of_date=None,
                portfolio_ids=None,
                cascade=cascade,
                force=False,
                params=params,
                include_correlations=include_correlations,
                now=now,
            )
            run_id = started.run["id"]
            status = started.run["status"]
            result = {
                "run_id": str(run_id),
                "deduplicated": started.deduplicated,
                "as_of_date": iso_date(started.run["as_of_date"]),
            }
    except Exception:
        log.exception("schedule %s failed", name)
        async with ctx.db.transaction() as session:
            await repo.update_schedule(session, name=name, last_run_at=now, last_status="failed")
        raise
    async with ctx.db.transaction() as session:
        values: dict[str, Any] = {"last_run_at": now, "last_status": status}
        values["last_run_id"] = run_id
        await repo.update_schedule(session, name=name, **values)
    log.info("schedule %s fired: %s %s", name, status, result)
    return {"schedule": name, "status": status, **result}


async def tick(ctx: MarketDataContext, now: datetime) -> list[str]:
    """Fire every enabled schedule whose next_run_at has come (at most once across processes)."""
    async with ctx.db.session() as session:
        items = await repo.schedules(session)
    fired: list[str] = []
    for schedule in items:
        if not schedule["enabled"]:
            continue
        due: datetime | None = schedule["next_run_at"]
        if due is not None and due > now:
            continue
        upcoming = schedule_next_run(schedule, now)
        async with ctx.db.transaction() as session:
            claimed = await repo.claim_schedule_firing(session, name=schedule["name"], due=due, next_run_at=upcoming)
        if not claimed or due is None:
            continue
        if now - due > MISSED_FIRING_GRACE:
            log.warning("schedule %s missed its firing at %s; next at %s", schedule["name"], due, upcoming)
            continue
        try:
            await run_schedule(ctx, schedule["name"], now=now)
            fired.append(schedule["name"])
        except Exception as exc:  # recorded on the schedule by run_schedule; keep the loop alive
            log.warning("schedule %s did not fire: %s", schedule["name"], exc)
    return fired


async def scheduler_loop(ctx: MarketDataContext) -> None:
    """Background loop: job heartbeats, run limit and late reports always; schedule firings when enabled."""
    try:
        await init_last_success_gauge(ctx)
    except Exception as exc:
        log.warning("could not read the last successful run: %s", exc)
    while True:
        now = utcnow()
        try:
            await heartbeat_active_jobs(ctx)
            await fail_overdue_runs(ctx, now)
            await settle_stragglers(ctx, now)
            if ctx.settings.scheduler_on:
                await tick(ctx, now)
            await refresh_cycle_gauges(ctx, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler tick failed")
        await asyncio.sleep(TICK_SECONDS)


# --- housekeeping and data quality -------------------------------------------------------------


async def housekeeping(ctx: MarketDataContext, *, now: datetime, params: dict[str, Any]) -> dict[str, Any]:
    """Purge marketdata's expired rows (data-model.md §11); returns counts per table."""
    job = ctx.plumbing.tables.job
    outbox = ctx.plumbing.tables.outbox
    processed = ctx.plumbing.tables.processed_event
    step_cutoff = now - timedelta(days=int(params.get("job_run_retention_days", 180)))
    event_cutoff = now - timedelta(days=int(params.get("event_retention_days", 30)))
    async with ctx.db.transaction() as session:
        jobs = await session.execute(
            sa.delete(job).where(job.c.expires_at < now, job.c.status.notin_(("queued", "running")))
        )
        steps = await session.execute(
            sa.delete(batch_job_run).where(
                sa.func.coalesce(batch_job_run.c.started_at, batch_job_run.c.created_at) < step_cutoff
            )
        )
        sent = await session.execute(
            sa.delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < event_cutoff)
        )
        claims = await session.execute(sa.delete(processed).where(processed.c.processed_at < event_cutoff))
    counts = {
        "jobs": int(getattr(jobs, "rowcount", 0) or 0),
        "batch_job_runs": int(getattr(steps, "rowcount", 0) or 0),
        "outbox": int(getattr(sent, "rowcount", 0) or 0),
        "processed_events": int(getattr(claims, "rowcount", 0) or 0),
    }
    log.info("housekeeping purged %s", counts)
    return {"purged": counts}


async def data_quality_check(ctx: MarketDataContext, *, now: datetime, params: dict[str, Any]) -> dict[str, Any]:
    """Missing closes and suspect moves on the latest trading day; recorded as a job row (mkt_<id>)."""
    as_of = default_as_of(ctx, now)
    lookback = int(params.get("lookback_trading_days", 10))
    window_start = as_of
    for _ in range(lookback):
        window_start = previous_trading_day(window_start)
    prev = previous_trading_day(as_of)
    today = daily_price.alias("today")
    before = daily_price.alias("before")
    async with ctx.db.session() as session:
        recent = sa.select(daily_price.c.symbol).where(
            daily_price.c.price_date >= window_start, daily_price.c.price_date < as_of
        )
        missing_rows = await session.execute(
            sa.select(security.c.symbol)
            .where(
                security.c.is_active.is_(True),
                security.c.symbol.in_(recent),
                ~sa.exists().where(daily_price.c.symbol == security.c.symbol, daily_price.c.price_date == as_of),
                sa.or_(security.c.expiration_date.is_(None), security.c.expiration_date >= as_of),
            )
            .order_by(security.c.symbol)
        )
        missing = [r.symbol for r in missing_rows]
        ret = (
            sa.func.coalesce(today.c.adj_close, today.c.close) / sa.func.coalesce(before.c.adj_close, before.c.close)
            - 1
        )
        suspect_rows = await session.execute(
            sa.select(today.c.symbol, ret.label("ret"))
            .join(before, sa.and_(before.c.symbol == today.c.symbol, before.c.price_date == prev))
            .where(today.c.price_date == as_of, sa.func.abs(ret) > SUSPECT_RETURN)
            .order_by(today.c.symbol)
        )
        suspect = [{"symbol": r.symbol, "return": float(r.ret)} for r in suspect_rows]
    status = "partial" if missing or suspect else "completed"
    result = {"as_of_date": as_of.isoformat(), "missing_close": missing, "suspect_moves": suspect}
    ledger = ctx.plumbing.ledger
    async with ctx.db.transaction() as session:
        row, _ = await ledger.create(
            session,
            job_type="batch.data_quality_check",
            requested_by=SYSTEM_USER_ID,
            scope={"as_of_date": as_of.isoformat()},
            request=params,
            dedupe=False,
        )
        await ledger.update(session, row["id"], started_at=now, heartbeat_at=now)
        await ledger.finish(session, row["id"], JobOutcome(status=status, result=result))
    if status != "completed":
        log.warning("data quality check for %s: %d missing closes, %d suspect moves", as_of, len(missing), len(suspect))
    return {"status": status, "job_id": ledger.public_id(row["id"]), **result, "checked_at": iso_datetime(now)}
