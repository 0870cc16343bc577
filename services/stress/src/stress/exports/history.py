"""Export history (`stress.export`, api.md #70): trade files and report downloads of each user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.formatting import iso_datetime
from stress.exports.tables import export


def download_url(export_id: UUID) -> str:
    """#71 URL of an export."""
    return f"/api/v1/export/{export_id}/download"


async def record(session: AsyncSession, **values: Any) -> dict[str, Any]:
    """Insert an export row; returns it."""
    row = (await session.execute(sa.insert(export).values(**values).returning(export))).mappings().one()
    return dict(row)


async def get(session: AsyncSession, export_id: UUID) -> dict[str, Any] | None:
    """One export row."""
    row = (await session.execute(sa.select(export).where(export.c.id == export_id))).mappings().first()
    return None if row is None else dict(row)


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of #70 (all optional)."""

    user_id: UUID
    export_types: list[str]
    formats: list[str]
    portfolio_id: UUID | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


async def page(session: AsyncSession, query: HistoryQuery) -> tuple[list[dict[str, Any]], int]:
    """The caller's exports, newest first (id as tiebreaker), and the total matching count."""
    conditions: list[sa.ColumnElement[bool]] = [export.c.user_id == query.user_id]
    if query.export_types:
        conditions.append(export.c.export_type.in_(query.export_types))
    if query.formats:
        conditions.append(export.c.format.in_(query.formats))
    if query.portfolio_id is not None:
        conditions.append(export.c.portfolio_id == query.portfolio_id)
    if query.since is not None:
        conditions.append(export.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(export.c.created_at <= query.until)
    where = sa.and_(*conditions)
    total = int((await session.execute(sa.select(sa.func.count()).select_from(export).where(where))).scalar_one())
    rows = (
        await session.execute(
            sa.select(export)
            .where(where)
            .order_by(export.c.created_at.desc(), export.c.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    ).mappings()
    return [dict(r) for r in rows], total


def item(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An export row as the #70 item (`download_url` null once the file has expired)."""
    alive = row["stored_file_id"] is not None and row["expires_at"] > now
    return {
        "export_id": str(row["id"]),
        "export_type": row["export_type"],
        "format": row["format"],
        "file_name": row["file_name"],
        "size_bytes": row["size_bytes"],
        "trade_count": row["trade_count"],
        "portfolio_id": None if row["portfolio_id"] is None else str(row["portfolio_id"]),
        "session_id": None if row["session_id"] is None else str(row["session_id"]),
        "report_id": None if row["report_id"] is None else str(row["report_id"]),
        "created_at": iso_datetime(row["created_at"]),
        "expires_at": iso_datetime(row["expires_at"]),
        "download_url": download_url(row["id"]) if alive else None,
    }
