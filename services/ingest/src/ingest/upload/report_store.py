"""The validation report of a checked file: its parsed rows (`ingest.upload_row`) and issues
(`ingest.upload_issue`), written with COPY and paged back for the results endpoint (api.md #60).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from ingest.csv_format import CheckResult, Row
from ingest.upload.bulk import driver_connection, to_json

ROW_COPY_COLUMNS = (
    "upload_id",
    "row_number",
    "raw",
    "symbol",
    "instrument_type",
    "position_type",
    "quantity",
    "entry_price",
    "multiplier",
    "underlying_symbol",
    "option_type",
    "strike_price",
    "expiration_date",
    "entry_date",
    "tags",
    "is_valid",
)
ISSUE_COPY_COLUMNS = ("upload_id", "row_number", "column_name", "code", "severity", "message", "value", "seq")


async def stage_rows_and_issues(session: AsyncSession, upload_id: UUID, result: CheckResult) -> None:
    """COPY the parsed rows and every issue (report order in `seq`)."""
    conn = await driver_connection(session)
    await conn.copy_records_to_table(
        "upload_row", schema_name="ingest", columns=ROW_COPY_COLUMNS, records=_row_records(upload_id, result.rows)
    )
    issues = [
        (upload_id, i.row, i.column, i.code, i.severity, i.message, i.value, seq)
        for seq, i in enumerate(result.sorted_issues())
    ]
    if issues:
        await conn.copy_records_to_table(
            "upload_issue", schema_name="ingest", columns=ISSUE_COPY_COLUMNS, records=issues
        )


def _row_records(upload_id: UUID, rows: Sequence[Row]) -> Iterable[tuple[Any, ...]]:
    for r in rows:
        yield (
            upload_id,
            r.row_number,
            to_json(r.raw),
            r.symbol,
            r.instrument_type,
            r.position_type,
            r.quantity,
            r.entry_price,
            r.multiplier,
            r.underlying_symbol,
            r.option_type,
            r.strike_price,
            r.expiration_date,
            r.entry_date,
            to_json(r.tags_json()) if r.tags else None,
            r.is_valid,
        )


async def issue_page(
    db: Database, upload_id: UUID, severity: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of an upload's issues of one severity, in report order, and their total."""
    pool = await db.pool()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT row_number, column_name, code, message, value FROM ingest.upload_issue "
            "WHERE upload_id = $1 AND severity = $2 ORDER BY row_number, seq LIMIT $3 OFFSET $4",
            upload_id,
            severity,
            limit,
            offset,
        )
        total = await conn.fetchval(
            "SELECT count(*) FROM ingest.upload_issue WHERE upload_id = $1 AND severity = $2", upload_id, severity
        )
    page = [
        {
            "row": r["row_number"],
            "column": r["column_name"],
            "code": r["code"],
            "message": r["message"],
            "value": r["value"],
        }
        for r in rows
    ]
    return page, int(total or 0)
