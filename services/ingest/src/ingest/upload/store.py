"""The `ingest.upload` rows: accepting, tracking, finishing and forgetting uploads.

Writes run inside the caller's SQLAlchemy transaction; API reads use the pool. The raw file stays
in `content` until `purge_after` (7 days after the upload finished) so an interrupted job can be
resumed from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from common.db import Database
from ingest.csv_format import CheckResult
from ingest.upload.bulk import from_json, to_json

UPLOAD_COLUMNS = (
    "id, user_id, portfolio_id, mode, target_portfolio_name, file_name, file_size_bytes, upload_date, status, "
    "phase, rows_total, rows_processed, rows_valid, rows_invalid, error_count, warning_count, positions_created, "
    "positions_closed, header_map, ignored_columns, cash_balance, auto_complete, error_code, error_message, "
    "retryable, outcome, created_at, started_at, finished_at"
)
PURGE_AFTER = "now() + interval '7 days'"
UNFINISHED = "status IN ('queued','processing')"
_JSON_COLUMNS = ("header_map", "outcome")


def file_digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


async def _count(session: AsyncSession, sql: str, user_id: UUID) -> int:
    return int((await session.execute(sa.text(sql), {"u": user_id})).scalar_one())


async def count_pending_new_uploads(session: AsyncSession, user_id: UUID) -> int:
    """Uploads of `user_id` that will create a portfolio and have not finished yet."""
    return await _count(
        session, f"SELECT count(*) FROM ingest.upload WHERE user_id = :u AND mode = 'new' AND {UNFINISHED}", user_id
    )


async def live_portfolio_count(session: AsyncSession, user_id: UUID) -> int:
    return await _count(
        session, "SELECT count(*) FROM ingest.portfolio WHERE user_id = :u AND deleted_at IS NULL", user_id
    )


async def portfolio_name_taken(session: AsyncSession, user_id: UUID, name: str) -> bool:
    """A live portfolio, or a pending new upload, already uses `name` (case-insensitive)."""
    sql = f"""
        SELECT EXISTS (SELECT 1 FROM ingest.portfolio
                       WHERE user_id = :u AND deleted_at IS NULL AND lower(name) = lower(:n))
            OR EXISTS (SELECT 1 FROM ingest.upload
                       WHERE user_id = :u AND mode = 'new' AND {UNFINISHED}
                         AND lower(target_portfolio_name) = lower(:n))
    """
    return bool((await session.execute(sa.text(sql), {"u": user_id, "n": name})).scalar_one())


async def active_upload_for_portfolio(session: AsyncSession, portfolio_id: UUID) -> UUID | None:
    sql = f"SELECT id FROM ingest.upload WHERE portfolio_id = :p AND {UNFINISHED} LIMIT 1"
    value = (await session.execute(sa.text(sql), {"p": portfolio_id})).scalar_one_or_none()
    return value if value is None else UUID(str(value))


@dataclass(frozen=True)
class NewUpload:
    """What the upload endpoint stores before answering 202."""

    id: UUID
    user_id: UUID
    portfolio_id: UUID | None
    mode: str
    target_portfolio_name: str | None
    file_name: str
    content: bytes
    upload_date: date
    cash_balance: Decimal | None
    auto_complete: bool


async def insert_upload(session: AsyncSession, new: NewUpload) -> None:
    """Store a queued upload with its raw content and digest."""
    sql = """
        INSERT INTO ingest.upload (id, user_id, portfolio_id, mode, target_portfolio_name, file_name,
            file_size_bytes, file_sha256, content, upload_date, status, cash_balance, auto_complete)
        VALUES (:id, :user_id, :portfolio_id, :mode, :name, :file_name, :size, :sha, :content, :upload_date,
            'queued', :cash, :auto)
    """
    await session.execute(
        sa.text(sql),
        {
            "id": new.id,
            "user_id": new.user_id,
            "portfolio_id": new.portfolio_id,
            "mode": new.mode,
            "name": new.target_portfolio_name,
            "file_name": new.file_name,
            "size": len(new.content),
            "sha": file_digest(new.content),
            "content": new.content,
            "upload_date": new.upload_date,
            "cash": new.cash_balance,
            "auto": new.auto_complete,
        },
    )


async def get_upload(db: Database, upload_id: UUID) -> dict[str, Any] | None:
    """An upload's row without its content (API reads)."""
    row = await db.fetchrow(f"SELECT {UPLOAD_COLUMNS} FROM ingest.upload WHERE id = $1", upload_id)
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS:
        out[key] = from_json(out.get(key))
    return out


async def load_for_processing(session: AsyncSession, upload_id: UUID) -> dict[str, Any] | None:
    """The upload row with its content, locked for the processing job."""
    sql = f"SELECT {UPLOAD_COLUMNS}, content FROM ingest.upload WHERE id = :id FOR UPDATE"
    row = (await session.execute(sa.text(sql), {"id": upload_id})).mappings().first()
    return dict(row) if row is not None else None


async def update_upload(session: AsyncSession, upload_id: UUID, **values: Any) -> None:
    """Set columns of one upload (`outcome`/`header_map` as JSON; `sa.text` values as SQL)."""
    if not values:
        return
    params: dict[str, Any] = {"id": upload_id}
    sets: list[str] = []
    for key, value in values.items():
        if key in _JSON_COLUMNS:
            sets.append(f"{key} = CAST(:{key} AS jsonb)")
            params[key] = None if value is None else to_json(value)
        elif isinstance(value, TextClause):
            sets.append(f"{key} = {value.text}")
        else:
            sets.append(f"{key} = :{key}")
            params[key] = value
    await session.execute(sa.text(f"UPDATE ingest.upload SET {', '.join(sets)} WHERE id = :id"), params)


async def merge_outcome(session: AsyncSession, upload_id: UUID, key: str, value: Any) -> None:
    """Add one key to a finished upload's `outcome` block."""
    await session.execute(
        sa.text(
            "UPDATE ingest.upload SET outcome = COALESCE(outcome, '{}'::jsonb) || "
            "jsonb_build_object(CAST(:k AS text), CAST(:v AS jsonb)) WHERE id = :id"
        ),
        {"k": key, "v": to_json(value), "id": upload_id},
    )


def _finished() -> dict[str, Any]:
    """Columns every finished upload sets, whatever its status (the purge clock starts now)."""
    return {"phase": None, "finished_at": sa.text("now()"), "purge_after": sa.text(PURGE_AFTER)}


async def finish_upload(session: AsyncSession, upload_id: UUID, result: CheckResult, **values: Any) -> None:
    """Record a finished check (completed or rejected): counts, header map, timestamps."""
    summary = result.summary()
    await update_upload(
        session,
        upload_id,
        rows_total=summary["rows_total"],
        rows_processed=summary["rows_total"],
        rows_valid=summary["rows_valid"],
        rows_invalid=summary["rows_invalid"],
        error_count=summary["errors"],
        warning_count=summary["warnings"],
        header_map=result.header_map,
        ignored_columns=result.ignored_columns,
        **_finished(),
        **values,
    )


async def fail_upload(session: AsyncSession, upload_id: UUID, code: str, message: str, retryable: bool) -> None:
    await update_upload(
        session,
        upload_id,
        status="failed",
        error_code=code,
        error_message=message[:1000],
        retryable=retryable,
        **_finished(),
    )


async def delete_for_user(session: AsyncSession, user_id: UUID) -> None:
    """Demo reset: forget a user's uploads (rows and issues cascade) and onboarding progress."""
    await session.execute(
        sa.text(
            "DELETE FROM ingest.onboarding_step WHERE portfolio_id IN "
            "(SELECT id FROM ingest.portfolio WHERE user_id = :u)"
        ),
        {"u": user_id},
    )
    await session.execute(sa.text("DELETE FROM ingest.upload WHERE user_id = :u"), {"u": user_id})


async def purge_expired(session: AsyncSession) -> int:
    """Drop raw content and staged rows of uploads finished more than 7 days ago (data-model.md §11)."""
    await session.execute(
        sa.text(
            "DELETE FROM ingest.upload_row r USING ingest.upload u "
            "WHERE r.upload_id = u.id AND u.purge_after IS NOT NULL AND u.purge_after < now()"
        )
    )
    result = await session.execute(
        sa.text(
            "UPDATE ingest.upload SET content = NULL "
            "WHERE purge_after IS NOT NULL AND purge_after < now() AND content IS NOT NULL"
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
