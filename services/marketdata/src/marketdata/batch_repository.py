"""SQL for batch runs, step rows and schedules (SQLAlchemy Core inside the caller's session).

Reads of other services go only through their published views (`ingest.api_portfolio`,
`ingest.api_open_position`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import session_driver_connection
from marketdata.batch_compute import ACTIVE_RUN_STATUSES, FINAL_JOB_RUN_STATUSES, StepRow
from marketdata.models_batch import batch_job_run, batch_run, batch_schedule
from marketdata.repository import view_exists

api_portfolio = sa.table(
    "api_portfolio",
    sa.column("id", pg.UUID(as_uuid=True)),
    sa.column("user_id", pg.UUID(as_uuid=True)),
    sa.column("status", sa.Text),
    schema="ingest",
)
api_open_position = sa.table(
    "api_open_position",
    sa.column("portfolio_id", pg.UUID(as_uuid=True)),
    sa.column("symbol", sa.Text),
    sa.column("underlying_symbol", sa.Text),
    schema="ingest",
)


# --- portfolios (ingest views) -----------------------------------------------------------------


async def portfolios_by_id(session: AsyncSession, *, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    """id → {user_id, status} for the live portfolios among `ids` (none when ingest is not installed)."""
    if not ids or not await view_exists(session, "ingest.api_portfolio"):
        return {}
    rows = (
        await session.execute(
            sa.select(api_portfolio.c.id, api_portfolio.c.user_id, api_portfolio.c.status).where(
                api_portfolio.c.id.in_(list(ids))
            )
        )
    ).all()
    return {r.id: {"user_id": r.user_id, "status": r.status} for r in rows}


async def active_portfolio_ids(session: AsyncSession) -> list[UUID]:
    """Every active portfolio (the scope "all active portfolios"), ordered by id."""
    if not await view_exists(session, "ingest.api_portfolio"):
        return []
    rows = await session.execute(
        sa.select(api_portfolio.c.id).where(api_portfolio.c.status == "active").order_by(api_portfolio.c.id)
    )
    return [r.id for r in rows]


async def portfolio_symbols(session: AsyncSession, *, portfolio_id: UUID) -> list[str]:
    """Symbols and underlyings held open by one portfolio, sorted."""
    if not await view_exists(session, "ingest.api_open_position"):
        return []
    rows = await session.execute(
        sa.select(api_open_position.c.symbol, api_open_position.c.underlying_symbol).where(
            api_open_position.c.portfolio_id == portfolio_id
        )
    )
    out: set[str] = set()
    for r in rows:
        out.update(s for s in (r.symbol, r.underlying_symbol) if s)
    return sorted(out)


# --- runs ------------------------------------------------------------------------------------


async def find_active_run(session: AsyncSession, *, scope_hash: bytes) -> dict[str, Any] | None:
    """The queued/running run with this scope, if any."""
    row = (
        (
            await session.execute(
                sa.select(batch_run).where(
                    batch_run.c.scope_hash == scope_hash, batch_run.c.status.in_(ACTIVE_RUN_STATUSES)
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def find_completed_run(session: AsyncSession, *, scope_hash: bytes, job_table: sa.Table) -> dict[str, Any] | None:
    """The latest completed run with this scope whose job row still exists (not purged)."""
    row = (
        (
            await session.execute(
                sa.select(batch_run)
                .where(
                    batch_run.c.scope_hash == scope_hash,
                    batch_run.c.status == "completed",
                    sa.exists().where(job_table.c.id == batch_run.c.id),
                )
                .order_by(batch_run.c.created_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def insert_run(session: AsyncSession, **values: Any) -> dict[str, Any] | None:
    """Insert a queued run; None when an identical run is already queued/running (lost race)."""
    stmt = (
        pg.insert(batch_run)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["scope_hash"], index_where=sa.text("status IN ('queued','running')"))
        .returning(batch_run)
    )
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def get_run(session: AsyncSession, *, run_id: UUID, lock: bool = False) -> dict[str, Any] | None:
    """One run (optionally locked FOR UPDATE so concurrent step events serialise per run)."""
    stmt = sa.select(batch_run).where(batch_run.c.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def current_run(session: AsyncSession) -> dict[str, Any] | None:
    """The running run (oldest first), else the latest run."""
    row = (
        (
            await session.execute(
                sa.select(batch_run)
                .where(batch_run.c.status.in_(ACTIVE_RUN_STATUSES))
                .order_by(batch_run.c.created_at.asc(), batch_run.c.id)
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        row = (
            (
                await session.execute(
                    sa.select(batch_run).order_by(batch_run.c.created_at.desc(), batch_run.c.id.desc()).limit(1)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def active_runs(session: AsyncSession, *, lock: bool = False) -> list[dict[str, Any]]:
    """Every queued/running run, oldest first (optionally locked, skipping runs locked elsewhere)."""
    stmt = (
        sa.select(batch_run)
        .where(batch_run.c.status.in_(ACTIVE_RUN_STATUSES))
        .order_by(batch_run.c.created_at, batch_run.c.id)
    )
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = (await session.execute(stmt)).mappings().all()
    return [dict(r) for r in rows]


async def last_step_update(session: AsyncSession, *, run_id: UUID) -> datetime | None:
    """When a step row of the run last changed."""
    return (
        await session.execute(
            sa.select(sa.func.max(batch_job_run.c.updated_at)).where(batch_job_run.c.run_id == run_id)
        )
    ).scalar()


async def overdue_runs(session: AsyncSession, *, cutoff: datetime) -> list[dict[str, Any]]:
    """Active runs started (or created, if never started) before `cutoff`, locked, skipping busy ones."""
    rows = (
        (
            await session.execute(
                sa.select(batch_run)
                .where(
                    batch_run.c.status.in_(ACTIVE_RUN_STATUSES),
                    sa.func.coalesce(batch_run.c.started_at, batch_run.c.created_at) < cutoff,
                )
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def update_run(session: AsyncSession, *, run_id: UUID, **values: Any) -> None:
    """Set columns of one run (updated_at follows)."""
    values.setdefault("updated_at", sa.func.now())
    await session.execute(sa.update(batch_run).where(batch_run.c.id == run_id).values(**values))


async def runs_containing_portfolio(session: AsyncSession, *, portfolio_id: UUID) -> list[dict[str, Any]]:
    """Active runs whose scope lists `portfolio_id`, locked."""
    rows = (
        (
            await session.execute(
                sa.select(batch_run)
                .where(
                    batch_run.c.status.in_(ACTIVE_RUN_STATUSES),
                    sa.literal(portfolio_id).op("=")(sa.func.any(batch_run.c.portfolio_ids)),
                )
                .order_by(batch_run.c.id)
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def last_success_finished_at(session: AsyncSession) -> datetime | None:
    """finished_at of the latest completed run (seeds the last-success gauge at start-up)."""
    return (
        await session.execute(sa.select(sa.func.max(batch_run.c.finished_at)).where(batch_run.c.status == "completed"))
    ).scalar()


async def last_completed_cycle_as_of(session: AsyncSession) -> date | None:
    """as_of_date of the latest completed daily cycle (a run-all run; feeds the cycle-deadline alert)."""
    return (
        await session.execute(
            sa.select(sa.func.max(batch_run.c.as_of_date)).where(
                batch_run.c.job_name == "run_all", batch_run.c.status == "completed"
            )
        )
    ).scalar()


# --- step rows -------------------------------------------------------------------------------


# Every column a step report writes, in the order of the tuples `write_job_runs` takes.
JOB_RUN_KEYS: tuple[str, ...] = (
    "run_id",
    "job",
    "service",
    "portfolio_id",
    "as_of_date",
    "trigger",
    "status",
    "started_at",
    "finished_at",
    "duration_ms",
    "records_processed",
    "error_code",
    "error_message",
    "details",
    "last_event_id",
)
# What a later report of the same (run, job, portfolio) may change: all but the row's identity.
_UPDATABLE = tuple(k for k in JOB_RUN_KEYS if k not in ("run_id", "job", "portfolio_id", "as_of_date", "trigger"))


def _json_record(keys: Sequence[str]) -> str:
    """The column definitions of `json_to_recordset` for `keys` (their batch_job_run types)."""
    dialect = pg.dialect()
    return ", ".join(f"{k} {batch_job_run.c[k].type.compile(dialect=dialect)}" for k in keys)


def _upsert_sql(keys: Sequence[str], source: str) -> str:
    """INSERT … ON CONFLICT of the step rows `source` (a SELECT of `keys`) selects, RETURNING run_id
    and whether the row was inserted: the rules of `write_job_runs`."""
    updates = [f"{k} = excluded.{k}" for k in _UPDATABLE if k in keys and k != "started_at"]
    updates += [
        "updated_at = now()",
        "attempt = CASE WHEN j.status IN ('completed', 'failed') AND excluded.status IN ('completed', 'failed') "
        "THEN j.attempt + 1 ELSE j.attempt END",
        "started_at = coalesce(j.started_at, excluded.started_at)",
    ]
    return (
        f"INSERT INTO marketdata.batch_job_run AS j ({', '.join(keys)}) {source} "
        "ON CONFLICT ON CONSTRAINT batch_job_run_run_job_portfolio_uq DO UPDATE SET "
        + ", ".join(updates)
        + " WHERE j.status <> 'completed' AND j.last_event_id IS DISTINCT FROM excluded.last_event_id "
        "RETURNING j.run_id, j.xmax = 0 AS inserted"
    )


@functools.lru_cache(maxsize=8)
def _job_runs_upsert_sql(keys: tuple[str, ...]) -> str:
    """The upsert of `write_job_runs` as one asyncpg statement whose rows arrive as a single JSON
    document (fixed text whatever the batch size; serialised by orjson in C, where arrays bound per
    column cost asyncpg an isinstance test per element). A completed row is never updated; a
    repeated event id changes nothing; a final report after a final one is a retry (attempt + 1);
    the first start time is kept.

    The same statement adds the rows it inserted to their run's `job_run_rows` (an inserted row has
    no xmax; an ON CONFLICT update leaves the locking transaction's id there) and answers, per run,
    how many rows it changed and how many of those it inserted."""
    columns = ", ".join(keys)
    return (
        "WITH written AS ("
        + _upsert_sql(keys, f"SELECT {columns} FROM json_to_recordset($1::json) AS x({_json_record(keys)})")
        + "), per_run AS (SELECT run_id, count(*) AS changed, count(*) FILTER (WHERE inserted) AS inserted "
        "FROM written GROUP BY run_id), "
        "counted AS (UPDATE marketdata.batch_run r SET job_run_rows = r.job_run_rows + p.inserted "
        "FROM per_run p WHERE r.id = p.run_id AND p.inserted > 0) "
        "SELECT run_id, changed, inserted FROM per_run"
    )


@dataclass(frozen=True)
class JobRunsWritten:
    """What one `write_job_runs` did: rows changed (inserted or updated) and, per run, rows inserted."""

    changed: int
    inserted: dict[UUID, int]


_KEY_COLUMNS = ("run_id", "job", "portfolio_id")


async def write_job_runs(
    session: AsyncSession, keys: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> JobRunsWritten:
    """Upsert step rows given as tuples of `keys` (which must include run_id, job, portfolio_id):
    one statement, one row per (run_id, job, portfolio_id) — the last report wins within `rows`.

    Idempotent: the same event applied twice changes nothing (last_event_id), and a completed row
    is never regressed by a later report (a failed row may still become completed: a retry).
    Every insert into batch_job_run goes through here or `lock_run_and_write_steps` (the same upsert
    and count), which keeps `batch_run.job_run_rows` an upper bound of each run's step rows."""
    run_at, job_at, portfolio_at = (keys.index(k) for k in _KEY_COLUMNS)
    latest = {(row[run_at], row[job_at], row[portfolio_at]): row for row in rows}
    if not latest:
        return JobRunsWritten(0, {})
    document = orjson.dumps([dict(zip(keys, row, strict=True)) for row in latest.values()], default=str).decode()
    conn = await session_driver_connection(session)
    result = await conn.fetch(_job_runs_upsert_sql(keys), document)
    return JobRunsWritten(sum(r["changed"] for r in result), {r["run_id"]: r["inserted"] for r in result})


# The columns of a step row a batch of step reports sends; the run's id, as-of date and trigger
# come from the locked run row itself (`lock_run_and_write_steps`).
STEP_ROW_KEYS: tuple[str, ...] = tuple(k for k in JOB_RUN_KEYS if k not in ("run_id", "as_of_date", "trigger"))
_RUN_IDENTITY = ("run_id", "as_of_date", "trigger")


@functools.lru_cache(maxsize=1)
def _lock_and_write_steps_sql() -> str:
    """The run's lock (`get_run(lock=True)`, reading only the columns a batch needs) and
    `write_job_runs` of its step rows as a single statement.

    `head` locks the run row first: the rows to insert are joined to it, so the lock is taken
    before the first of them is written, and an unknown run writes nothing and answers no row. The
    answer is the run's head (job_run_rows before this statement) and the rows changed and
    inserted."""
    source = (
        f"SELECT h.id, h.as_of_date, h.trigger, {', '.join(f'x.{k}' for k in STEP_ROW_KEYS)} "
        f"FROM head h, json_to_recordset($2::json) AS x({_json_record(STEP_ROW_KEYS)})"
    )
    return (
        "WITH head AS (SELECT id, status, as_of_date, trigger, job_run_rows "
        "FROM marketdata.batch_run WHERE id = $1 FOR UPDATE), "
        f"written AS ({_upsert_sql(_RUN_IDENTITY + STEP_ROW_KEYS, source)}), "
        "tally AS (SELECT count(*) AS changed, count(*) FILTER (WHERE inserted) AS inserted FROM written), "
        "counted AS (UPDATE marketdata.batch_run r SET job_run_rows = r.job_run_rows + t.inserted "
        "FROM tally t WHERE r.id = $1 AND t.inserted > 0) "
        "SELECT h.id, h.status, h.as_of_date, h.trigger, h.job_run_rows, t.changed, t.inserted FROM head h, tally t"
    )


@dataclass(frozen=True)
class LockedRunWrite:
    """What `lock_run_and_write_steps` found and did: the run's head (id, status, as_of_date,
    trigger, `job_run_rows` before the write) and the step rows changed and inserted."""

    head: dict[str, Any]
    changed: int
    inserted: int


async def lock_run_and_write_steps(
    session: AsyncSession, *, run_id: UUID, rows: Sequence[tuple[Any, ...]]
) -> LockedRunWrite | None:
    """Lock one run (FOR UPDATE) and upsert its step rows, given as tuples of `STEP_ROW_KEYS`, in
    one statement: the lock, then `write_job_runs` (same rules, same `job_run_rows` count), without
    a round trip in between. None, and nothing written, when the run does not exist."""
    job_at, portfolio_at = STEP_ROW_KEYS.index("job"), STEP_ROW_KEYS.index("portfolio_id")
    latest = {(row[job_at], row[portfolio_at]): row for row in rows}
    document = orjson.dumps([dict(zip(STEP_ROW_KEYS, row, strict=True)) for row in latest.values()], default=str)
    conn = await session_driver_connection(session)
    found = await conn.fetchrow(_lock_and_write_steps_sql(), run_id, document.decode())
    if found is None:
        return None
    head = {k: found[k] for k in ("id", "status", "as_of_date", "trigger", "job_run_rows")}
    return LockedRunWrite(head, int(found["changed"]), int(found["inserted"]))


async def upsert_job_run(session: AsyncSession, **values: Any) -> bool:
    """Insert or update the row of (run_id, job, portfolio_id); True when something changed."""
    return await upsert_job_runs(session, [values]) > 0


async def upsert_job_runs(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """`write_job_runs` for rows given as dicts (same keys in every row). Returns rows changed."""
    if not rows:
        return 0
    keys = tuple(rows[0])
    return (await write_job_runs(session, keys, [tuple(row[k] for k in keys) for row in rows])).changed


async def final_step_row_count(session: AsyncSession, *, run_id: UUID) -> int:
    """Step rows of a run in a final status (cheap check before a full settlement)."""
    row = await session.execute(
        sa.select(sa.func.count())
        .select_from(batch_job_run)
        .where(batch_job_run.c.run_id == run_id, batch_job_run.c.status.in_(sorted(FINAL_JOB_RUN_STATUSES)))
    )
    return int(row.scalar_one())


async def step_rows(session: AsyncSession, *, run_id: UUID) -> list[StepRow]:
    """Every step row of a run, as the state machine sees them (read as asyncpg Records on the
    session's connection: a run's settlement reads ~7,000, and a SQLAlchemy Row each cost more than
    the state machine itself)."""
    conn = await session_driver_connection(session)
    records = await conn.fetch(
        "SELECT job, portfolio_id, status, started_at, finished_at, records_processed, error_code, error_message "
        "FROM marketdata.batch_job_run WHERE run_id = $1",
        run_id,
    )
    return [StepRow(*r) for r in records]


async def fail_open_job_runs(session: AsyncSession, *, run_id: UUID, code: str, message: str) -> None:
    """Mark a run's queued/running step rows failed (run time limit)."""
    await session.execute(
        sa.update(batch_job_run)
        .where(batch_job_run.c.run_id == run_id, batch_job_run.c.status.in_(("queued", "running")))
        .values(
            status="failed",
            finished_at=sa.func.now(),
            error_code=code,
            error_message=message[:1000],
            updated_at=sa.func.now(),
        )
    )


async def last_completed_by_step(session: AsyncSession) -> dict[str, datetime]:
    """Latest finished_at of a completed row per step (api.md #18 `last_completed`)."""
    rows = await session.execute(
        sa.select(batch_job_run.c.job, sa.func.max(batch_job_run.c.finished_at))
        .where(batch_job_run.c.status == "completed")
        .group_by(batch_job_run.c.job)
    )
    return {r[0]: r[1] for r in rows if r[1] is not None}


# --- schedules -------------------------------------------------------------------------------


async def schedules(session: AsyncSession) -> list[dict[str, Any]]:
    """Every schedule, by name."""
    rows = (await session.execute(sa.select(batch_schedule).order_by(batch_schedule.c.name))).mappings().all()
    return [dict(r) for r in rows]


async def get_schedule(session: AsyncSession, *, name: str) -> dict[str, Any] | None:
    """One schedule by name."""
    row = (await session.execute(sa.select(batch_schedule).where(batch_schedule.c.name == name))).mappings().first()
    return dict(row) if row else None


async def update_schedule(session: AsyncSession, *, name: str, **values: Any) -> None:
    """Set columns of one schedule."""
    values.setdefault("updated_at", sa.func.now())
    await session.execute(sa.update(batch_schedule).where(batch_schedule.c.name == name).values(**values))


async def claim_schedule_firing(
    session: AsyncSession, *, name: str, due: datetime | None, next_run_at: datetime
) -> bool:
    """Move a schedule's next_run_at from `due` to `next_run_at`; False if another process did first."""
    cond = batch_schedule.c.next_run_at.is_(None) if due is None else batch_schedule.c.next_run_at == due
    result = await session.execute(
        sa.update(batch_schedule)
        .where(batch_schedule.c.name == name, cond)
        .values(next_run_at=next_run_at, updated_at=sa.func.now())
        .returning(batch_schedule.c.name)
    )
    return result.first() is not None


async def mark_schedule_runs(session: AsyncSession, *, run_id: UUID, status: str) -> None:
    """Copy a run's status to the schedules whose last run it is."""
    await session.execute(
        sa.update(batch_schedule)
        .where(batch_schedule.c.last_run_id == run_id)
        .values(last_status=status, updated_at=sa.func.now())
    )
