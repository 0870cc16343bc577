"""Report rows (`stress.report`, `stress.report_file`): create, progress, complete, fail, list, purge.
Writes run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from stress import bulk_upsert
from stress.exports import files
from stress.exports.tables import export, report, report_file, stored_file


async def create(session: AsyncSession, **values: Any) -> dict[str, Any]:
    """Insert a queued report; returns the row."""
    row = (await session.execute(sa.insert(report).values(status="queued", **values).returning(report))).mappings()
    return dict(row.one())


async def get(session: AsyncSession, report_id: UUID, now: datetime) -> dict[str, Any] | None:
    """One report with `visible_status` (what readers see at `now`)."""
    stmt = sa.select(report, status_expr(now).label("visible_status")).where(report.c.id == report_id)
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else dict(row)


async def update(session: AsyncSession, report_id: UUID, **values: Any) -> None:
    await session.execute(sa.update(report).where(report.c.id == report_id).values(**values))


async def file_rows(session: AsyncSession, report_ids: Sequence[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """The files of each report, in md, json, csv, pdf order."""
    order = sa.case({"md": 0, "json": 1, "csv": 2, "pdf": 3}, value=report_file.c.format)
    rows = (
        await session.execute(
            sa.select(report_file)
            .where(report_file.c.report_id.in_(list(report_ids)))
            .order_by(report_file.c.report_id, order)
        )
    ).mappings()
    out: dict[UUID, list[dict[str, Any]]] = {rid: [] for rid in report_ids}
    for r in rows:
        out[r["report_id"]].append(dict(r))
    return out


async def attach_files(session: AsyncSession, report_id: UUID, stored: Sequence[tuple[str, files.StoredFile]]) -> None:
    """Record the report's files (format, stored file and its metadata), replacing earlier ones."""
    await drop_files(session, [report_id])
    if stored:
        await session.execute(
            sa.insert(report_file).values(
                [
                    {
                        "report_id": report_id,
                        "format": fmt,
                        "stored_file_id": f.id,
                        "file_name": f.file_name,
                        "content_type": f.content_type,
                        "size_bytes": f.size_bytes,
                        "sha256": f.sha256,
                    }
                    for fmt, f in stored
                ]
            )
        )


async def drop_files(session: AsyncSession, report_ids: Sequence[UUID]) -> None:
    """Delete the files of `report_ids` (bytes and rows)."""
    if not report_ids:
        return
    ids = list(report_ids)
    await _delete_stored(session, sa.select(report_file.c.stored_file_id).where(report_file.c.report_id.in_(ids)))
    await session.execute(sa.delete(report_file).where(report_file.c.report_id.in_(ids)))


async def _delete_stored(session: AsyncSession, stored_ids: sa.Select[Any]) -> None:
    """Delete the stored files whose ids `stored_ids` selects, by primary key.

    The ids are read first: as one `DELETE … WHERE id IN (subquery)` the planner, with statistics
    taken before the day's files existed, chose a semi-join that walks the whole stored_file index
    for every report rebuilt (time quadratic in the files kept; a 1,000-portfolio re-run took minutes)."""
    file_ids = [i for i in (await session.execute(stored_ids)).scalars() if i is not None]
    if file_ids:
        await session.execute(sa.delete(stored_file).where(stored_file.c.id.in_(file_ids)))


async def upsert_batch(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[UUID, UUID]:
    """Insert or replace the daily (`batch`) report of each (portfolio, date); returns portfolio → report id.
    A re-run of the day keeps the report id and replaces its files."""
    # One statement from one JSON document (bulk_upsert): a multi-row VALUES would be recompiled by
    # SQLAlchemy for every batch of snapshot.created.
    written = await bulk_upsert.upsert_rows(
        session,
        report,
        rows,
        ("portfolio_id", "as_of_date"),
        index_where="trigger = 'batch'",
        keep=("trigger",),
        returning=("portfolio_id", "id"),
    )
    return {r.portfolio_id: r.id for r in written}


@dataclass(frozen=True)
class ListQuery:
    """Filters of #75."""

    portfolio_ids: list[UUID]
    statuses: list[str]
    trigger: str | None
    as_of_date: date | None
    since: datetime | None
    until: datetime | None
    order: list[tuple[str, bool]]
    limit: int
    offset: int


def status_expr(now: datetime) -> sa.ColumnElement[str]:
    """The status a reader sees: a completed report past its expiry is `expired` (before the purge runs)."""
    return sa.case(
        (sa.and_(report.c.status == "completed", report.c.expires_at < now), sa.literal("expired")),
        else_=report.c.status,
    )


async def page(session: AsyncSession, query: ListQuery, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Reports of the given portfolios matching the filters, ordered, with the total count."""
    status = status_expr(now)
    conditions: list[sa.ColumnElement[bool]] = [report.c.portfolio_id.in_(query.portfolio_ids)]
    if query.statuses:
        conditions.append(status.in_(query.statuses))
    if query.trigger is not None:
        conditions.append(report.c.trigger == query.trigger)
    if query.as_of_date is not None:
        conditions.append(report.c.as_of_date == query.as_of_date)
    if query.since is not None:
        conditions.append(report.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(report.c.created_at <= query.until)
    where = sa.and_(*conditions)
    total = int((await session.execute(sa.select(sa.func.count()).select_from(report).where(where))).scalar_one())
    columns = {"created_at": report.c.created_at, "as_of_date": report.c.as_of_date}
    order = [columns[f].desc() if desc else columns[f].asc() for f, desc in query.order] + [report.c.id.desc()]
    rows = (
        await session.execute(
            sa.select(report, status.label("visible_status"))
            .where(where)
            .order_by(*order)
            .limit(query.limit)
            .offset(query.offset)
        )
    ).mappings()
    return [dict(r) for r in rows], total


async def delete_portfolio(session: AsyncSession, portfolio_id: UUID) -> int:
    """Purge a removed portfolio's reports (files included) and exports."""
    ids = [r.id for r in await session.execute(sa.select(report.c.id).where(report.c.portfolio_id == portfolio_id))]
    await drop_files(session, ids)
    # A report download's export row shares the report's stored file; only trade files are the export's own.
    exported = sa.select(export.c.stored_file_id).where(
        export.c.portfolio_id == portfolio_id, export.c.export_type == "trades"
    )
    await _delete_stored(session, exported)
    gone = await session.execute(sa.delete(export).where(export.c.portfolio_id == portfolio_id))
    await session.execute(sa.delete(report).where(report.c.id.in_(ids)))
    return len(ids) + int(gone.rowcount or 0)  # type: ignore[attr-defined]


async def delete_user_made(session: AsyncSession, user_id: UUID) -> int:
    """Delete what a (demo) user made: their on-demand reports and every export (demo reset, api.md #74)."""
    ids = [
        r.id
        for r in await session.execute(
            sa.select(report.c.id).where(report.c.user_id == user_id, report.c.trigger == "api")
        )
    ]
    await drop_files(session, ids)
    exported = sa.select(export.c.stored_file_id).where(export.c.user_id == user_id, export.c.export_type == "trades")
    await _delete_stored(session, exported)
    gone = await session.execute(sa.delete(export).where(export.c.user_id == user_id))
    await session.execute(sa.delete(report).where(report.c.id.in_(ids)))
    return len(ids) + int(gone.rowcount or 0)  # type: ignore[attr-defined]


async def owned_portfolio_ids(session: AsyncSession, user_id: UUID) -> list[UUID]:
    """The user's live portfolios (ingest.api_portfolio) and any portfolio their reports still name."""
    live = await session.execute(sa.text("SELECT id FROM ingest.api_portfolio WHERE user_id = :u"), {"u": user_id})
    reported = await session.execute(sa.select(report.c.portfolio_id).where(report.c.user_id == user_id).distinct())
    return sorted({r.id for r in live} | {r.portfolio_id for r in reported})


async def portfolio_owner(session: AsyncSession, portfolio_id: UUID) -> UUID | None:
    """The owner of a live portfolio."""
    row = (
        await session.execute(sa.text("SELECT user_id FROM ingest.api_portfolio WHERE id = :p"), {"p": portfolio_id})
    ).first()
    return None if row is None else row.user_id


async def run_in_progress(session: AsyncSession, run_id: UUID | None) -> bool:
    """True while batch run `run_id`, or a run started after it, is queued or running
    (marketdata.api_batch_run); False for an unknown or absent run."""
    if run_id is None:
        return False
    value = (
        await session.execute(
            sa.text(
                """
                WITH own AS (SELECT status, created_at FROM marketdata.api_batch_run WHERE id = :run)
                SELECT coalesce((SELECT status IN ('queued', 'running') FROM own), false)
                    OR EXISTS (SELECT 1 FROM marketdata.api_batch_run r, own
                               WHERE r.status IN ('queued', 'running') AND r.created_at > own.created_at)
                """
            ),
            {"run": run_id},
        )
    ).scalar()
    return bool(value)


def _claimable(stale_before: datetime) -> sa.ColumnElement[bool]:
    """Queued daily reports, or ones claimed before `stale_before` by a worker that never finished."""
    return sa.and_(
        report.c.trigger == "batch",
        sa.or_(report.c.status == "queued", sa.and_(report.c.status == "running", report.c.started_at < stale_before)),
    )


async def pending_batch(session: AsyncSession, stale_before: datetime, limit: int) -> list[dict[str, Any]]:
    """The oldest claimable daily reports."""
    stmt = (
        sa.select(report.c.id, report.c.portfolio_id, report.c.as_of_date, report.c.run_id, report.c.created_at)
        .where(_claimable(stale_before))
        .order_by(report.c.created_at, report.c.id)
        .limit(limit)
    )
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def claim(
    session: AsyncSession, ids: Sequence[UUID], now: datetime, stale_before: datetime
) -> list[dict[str, Any]]:
    """Mark claimable reports among `ids` running (rows another worker holds are skipped)."""
    if not ids:
        return []
    locked = (
        sa.select(report.c.id)
        .where(report.c.id.in_(list(ids)), _claimable(stale_before))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        sa.update(report)
        .where(report.c.id.in_(locked))
        .values(status="running", started_at=now, progress_step="rendering", progress_pct=40)
        .returning(report.c.id, report.c.portfolio_id, report.c.as_of_date, report.c.run_id)
    )
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def fail(session: AsyncSession, ids: Sequence[UUID], code: str, message: str) -> None:
    """Mark reports failed with `code` and `message`."""
    await session.execute(
        sa.update(report)
        .where(report.c.id.in_(list(ids)))
        .values(status="failed", error_code=code, error_message=message, progress_pct=100, progress_step="failed")
    )
