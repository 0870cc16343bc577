"""Job ledger: every async job is a row in `<schema>.job`, readable through `/api/v1/jobs/{id}`.

The row is committed before the 202 is sent (api.md §2.9). `JobRunner` executes jobs in the
background of the service that accepted them, enforces the 15-minute limit, and lets a request
wait for a result (`Prefer: wait=N`). Jobs left `queued`/`running` by a crashed process are
marked failed (`retryable: true`) at start-up unless the service registered a resumer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common import metrics
from common.db import Database
from common.errors import ApiError
from common.formatting import iso_datetime, json_default
from common.ids import JOB_PREFIXES, job_id
from common.tables import PlumbingTables

log = logging.getLogger(__name__)

JOB_TIMEOUT_SECONDS = 15 * 60
HEARTBEAT_SECONDS = 20.0
# A queued/running job whose runner has not beaten for this long belongs to a dead process.
ORPHAN_AFTER_SECONDS = 90.0
TERMINAL = {"completed", "partial", "failed", "cancelled"}


@dataclass
class JobOutcome:
    """What a job function returns: final status, a small summary and where the result lives."""

    status: str = "completed"
    result: dict[str, Any] | None = None
    result_url: str | None = None


class JobFailed(ApiError):
    """Raise inside a job to fail it with a specific code."""

    status, code = 500, "JOB_FAILED"


def dedupe_key(job_type: str, scope: dict[str, Any]) -> str:
    """job_type + canonical scope (+ as_of_date) → key used to deduplicate running jobs."""
    canonical = orjson.dumps(scope, option=orjson.OPT_SORT_KEYS, default=json_default)
    return f"{job_type}:{hashlib.sha256(canonical).hexdigest()[:32]}"


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=json_default)) if value is not None else None


# The job columns `JobLedger.to_api` reads (not request, dedupe_key, run_id, runner_id, ...).
_API_COLUMNS = (
    "id",
    "job_type",
    "status",
    "requested_by",
    "scope",
    "progress_pct",
    "progress_step",
    "progress_message",
    "result",
    "result_url",
    "error_code",
    "error_message",
    "retryable",
    "steps",
    "created_at",
    "started_at",
    "finished_at",
)
_API_JSON_COLUMNS = ("scope", "result", "steps")


class JobLedger:
    """Reads and writes one schema's job table."""

    def __init__(self, service: str, tables: PlumbingTables) -> None:
        self.service = service
        self.prefix = JOB_PREFIXES[service]
        self.table = tables.job
        self._api_sql = f"SELECT {', '.join(_API_COLUMNS)} FROM {self.table.schema}.{self.table.name} WHERE id = $1"

    def public_id(self, ident: UUID) -> str:
        return job_id(self.service, ident)

    async def create(
        self,
        session: AsyncSession,
        *,
        job_type: str,
        requested_by: UUID,
        scope: dict[str, Any],
        request: dict[str, Any] | None = None,
        ident: UUID | None = None,
        result_url: str | None = None,
        run_id: UUID | None = None,
        steps: list[dict[str, Any]] | None = None,
        dedupe: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """Insert a queued job, or return the identical queued/running one (deduplicated=True)."""
        key = dedupe_key(job_type, scope) if dedupe else f"{job_type}:{uuid.uuid4().hex}"
        if dedupe:
            existing = (
                (
                    await session.execute(
                        sa.select(self.table).where(
                            self.table.c.dedupe_key == key, self.table.c.status.in_(("queued", "running"))
                        )
                    )
                )
                .mappings()
                .first()
            )
            if existing is not None:
                return dict(existing), True
        ident = ident or uuid.uuid4()
        stmt = (
            pg.insert(self.table)
            .values(
                id=ident,
                job_type=job_type,
                status="queued",
                requested_by=requested_by,
                scope=_jsonable(scope),
                request=_jsonable(request),
                dedupe_key=key,
                result_url=result_url,
                run_id=run_id,
                steps=_jsonable(steps),
            )
            .on_conflict_do_nothing()
            .returning(self.table)
        )
        row = (await session.execute(stmt)).mappings().first()
        if row is None:  # lost a race with an identical job
            existing = (
                (
                    await session.execute(
                        sa.select(self.table)
                        .where(self.table.c.dedupe_key == key)
                        .order_by(self.table.c.created_at.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
            if existing is None:
                raise RuntimeError("job insert conflicted but no job found")
            return dict(existing), True
        return dict(row), False

    async def get(self, session: AsyncSession, ident: UUID) -> dict[str, Any] | None:
        row = (await session.execute(sa.select(self.table).where(self.table.c.id == ident))).mappings().first()
        return dict(row) if row else None

    async def read(self, db: Database, ident: UUID) -> dict[str, Any] | None:
        """The columns of one job that `to_api` uses, with the values `get` gives them.

        `GET /api/v1/jobs/{id}` is polled by every client waiting for a job or a run: it is read on
        the raw asyncpg pool with one prepared statement, where a SQLAlchemy session and Core select
        cost several times the read itself. The raw pool has no jsonb codec, so the jsonb columns
        arrive as text and are decoded here, as SQLAlchemy's asyncpg dialect does."""
        row = await db.fetchrow(self._api_sql, ident)
        if row is None:
            return None
        job = dict(row)
        for column in _API_JSON_COLUMNS:
            if job[column] is not None:
                job[column] = json.loads(job[column])
        return job

    async def api_job(self, db: Database, ident: UUID) -> dict[str, Any] | None:
        """The Job schema of one job (`jobs_router`'s loader), None when there is no such job."""
        row = await self.read(db, ident)
        return self.to_api(row) if row is not None else None

    async def update(self, session: AsyncSession, ident: UUID, **values: Any) -> None:
        if "result" in values:
            values["result"] = _jsonable(values["result"])
        if "steps" in values:
            values["steps"] = _jsonable(values["steps"])
        await session.execute(sa.update(self.table).where(self.table.c.id == ident).values(**values))

    async def mark_running(self, session: AsyncSession, ident: UUID) -> None:
        await self.update(session, ident, status="running", started_at=sa.func.now())

    async def progress(self, session: AsyncSession, ident: UUID, pct: int, step: str, message: str = "") -> None:
        await self.update(
            session, ident, progress_pct=max(0, min(100, pct)), progress_step=step, progress_message=message
        )

    async def finish(self, session: AsyncSession, ident: UUID, outcome: JobOutcome) -> None:
        values: dict[str, Any] = {
            "status": outcome.status,
            "finished_at": sa.func.now(),
            "progress_pct": 100,
            "result": outcome.result,
        }
        if outcome.result_url is not None:
            values["result_url"] = outcome.result_url
        await self.update(session, ident, **values)

    async def fail(self, session: AsyncSession, ident: UUID, code: str, message: str, retryable: bool) -> None:
        await self.update(
            session,
            ident,
            status="failed",
            finished_at=sa.func.now(),
            error_code=code,
            error_message=message[:1000],
            retryable=retryable,
        )

    def to_api(self, row: dict[str, Any]) -> dict[str, Any]:
        """The Job schema of api.md §3.5."""
        error = None
        if row.get("error_code"):
            error = {
                "code": row["error_code"],
                "message": row.get("error_message") or "",
                "retryable": bool(row.get("retryable")),
            }
        return {
            "job_id": self.public_id(row["id"]),
            "job_type": row["job_type"],
            "status": row["status"],
            "progress": {
                "pct": int(row.get("progress_pct") or 0),
                "step": row.get("progress_step") or "",
                "message": row.get("progress_message") or "",
            },
            "scope": row.get("scope") or {},
            "requested_by": str(row["requested_by"]),
            "created_at": iso_datetime(row.get("created_at")),
            "started_at": iso_datetime(row.get("started_at")),
            "finished_at": iso_datetime(row.get("finished_at")),
            "result": row.get("result"),
            "result_url": row.get("result_url"),
            "error": error,
            "steps": row.get("steps") or [],
        }

    def accepted(self, row: dict[str, Any], deduplicated: bool, **extra: Any) -> dict[str, Any]:
        """The JobAccepted body (api.md §3.6)."""
        public = self.public_id(row["id"])
        body = {
            "job_id": public,
            "job_type": row["job_type"],
            "status": row["status"],
            "deduplicated": deduplicated,
            "status_url": f"/api/v1/jobs/{public}",
            "result_url": row.get("result_url"),
        }
        body.update(extra)
        return body


JobFn = Callable[[UUID], Awaitable[JobOutcome]]


class JobRunner:
    """Runs accepted jobs in the background and records their outcome in the ledger."""

    def __init__(self, db: Database, ledger: JobLedger, *, timeout: float = JOB_TIMEOUT_SECONDS) -> None:
        self.db = db
        self.ledger = ledger
        self.timeout = timeout
        self.tasks: dict[UUID, asyncio.Task[None]] = {}
        self._done: dict[UUID, asyncio.Event] = {}
        self.resumers: dict[str, Callable[[dict[str, Any]], JobFn]] = {}
        self.runner_id = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None

    def submit(self, ident: UUID, job_type: str, fn: JobFn) -> None:
        """Start `fn(job_id)` in the background (after the job row was committed)."""
        if ident in self.tasks and not self.tasks[ident].done():
            return
        self._done.setdefault(ident, asyncio.Event())
        self.tasks[ident] = asyncio.create_task(self._run(ident, job_type, fn))

    async def _run(self, ident: UUID, job_type: str, fn: JobFn) -> None:
        started = time.perf_counter()
        status = "failed"
        try:
            async with self.db.transaction() as session:
                await self.ledger.update(
                    session,
                    ident,
                    status="running",
                    started_at=sa.func.now(),
                    runner_id=self.runner_id,
                    heartbeat_at=sa.func.now(),
                )
            outcome = await asyncio.wait_for(fn(ident), self.timeout)
            async with self.db.transaction() as session:
                await self.ledger.finish(session, ident, outcome)
            status = outcome.status
        except TimeoutError:
            await self._fail(ident, "JOB_TIMEOUT", f"job exceeded {int(self.timeout)} s", True)
        except ApiError as exc:
            await self._fail(ident, exc.code, exc.message, exc.retryable)
        except Exception as exc:
            log.exception("job %s (%s) failed", ident, job_type)
            await self._fail(ident, "INTERNAL_ERROR", str(exc) or type(exc).__name__, False)
        finally:
            metrics.job_duration(self.ledger.service).labels(job_type, status).observe(time.perf_counter() - started)
            self._done.setdefault(ident, asyncio.Event()).set()
            self.tasks.pop(ident, None)

    async def _fail(self, ident: UUID, code: str, message: str, retryable: bool) -> None:
        try:
            async with self.db.transaction() as session:
                await self.ledger.fail(session, ident, code, message, retryable)
        except Exception:
            log.exception("could not record failure of job %s", ident)

    async def wait(self, ident: UUID, seconds: float) -> bool:
        """Wait up to `seconds` for a job started here; True when it finished."""
        event = self._done.get(ident)
        if event is None:
            return False
        try:
            await asyncio.wait_for(event.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def recover(self) -> int:
        """Resume or fail jobs whose runner died (no heartbeat for ORPHAN_AFTER_SECONDS)."""
        table = self.ledger.table
        stale = sa.func.now() - sa.text(f"interval '{int(ORPHAN_AFTER_SECONDS)} seconds'")
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(table)
                        .where(
                            table.c.status.in_(("queued", "running")),
                            sa.func.coalesce(table.c.heartbeat_at, table.c.created_at) < stale,
                        )
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            to_resume: list[dict[str, Any]] = []
            for row in rows:
                if row["job_type"] in self.resumers:
                    to_resume.append(dict(row))
                else:
                    await self.ledger.fail(
                        session,
                        row["id"],
                        "JOB_INTERRUPTED",
                        "the service restarted while the job ran; submit it again",
                        True,
                    )
        for job in to_resume:
            self.submit(job["id"], job["job_type"], self.resumers[job["job_type"]](job))
        return len(rows)

    def start_heartbeat(self) -> None:
        """Beat for running jobs and adopt orphans of dead processes, in the background."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        table = self.ledger.table
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if self.tasks:
                    async with self.db.transaction() as session:
                        await session.execute(
                            sa.update(table).where(table.c.id.in_(list(self.tasks))).values(heartbeat_at=sa.func.now())
                        )
                await self.recover()
            except Exception as exc:
                log.warning("job heartbeat failed: %s", exc)

    async def shutdown(self) -> None:
        """Cancel running jobs (they will be recovered or failed at next start)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)


def prefer_wait_seconds(prefer: str | None) -> float:
    """Parse `Prefer: wait=N` (N <= 10); 0 when absent or malformed."""
    if not prefer:
        return 0.0
    for part in prefer.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "wait":
            try:
                return max(0.0, min(10.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 0.0


def is_stale(row: dict[str, Any], now: datetime) -> bool:
    """True when a job's 30-day retention has passed."""
    expires = row.get("expires_at")
    return bool(expires and expires < now)
