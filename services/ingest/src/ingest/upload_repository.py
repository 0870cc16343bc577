"""Storage of uploads (ingest.upload, upload_row, upload_issue) and the bulk import of a clean file.

Writes run inside the caller's SQLAlchemy transaction. Bulk rows (10,000 positions, their tag
links, staged rows and issues) go through PostgreSQL COPY on the transaction's own asyncpg
connection: one round trip per table, never one per row. Reads of other services' data use only
their published views (marketdata.api_security, api_symbol_alias, api_daily_price).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from common.db import Database
from common.errors import TransientError
from common.formatting import round_money
from ingest.csv_format import CheckResult, ExistingTag, Row, Security, SecurityLookup

UPLOAD_COLUMNS = (
    "id, user_id, portfolio_id, mode, target_portfolio_name, file_name, file_size_bytes, upload_date, status, "
    "phase, rows_total, rows_processed, rows_valid, rows_invalid, error_count, warning_count, positions_created, "
    "positions_closed, header_map, ignored_columns, cash_balance, auto_complete, error_code, error_message, "
    "retryable, outcome, created_at, started_at, finished_at"
)
PURGE_AFTER = "now() + interval '7 days'"

POSITION_COPY_COLUMNS = (
    "id",
    "portfolio_id",
    "symbol",
    "instrument_type",
    "position_type",
    "quantity",
    "multiplier",
    "underlying_symbol",
    "option_type",
    "strike_price",
    "expiration_date",
    "entry_price",
    "entry_date",
    "status",
    "source",
    "upload_id",
)
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


class MarketDataUnavailable(TransientError):
    """The security master or prices could not be read (market data service or its schema down)."""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, already inside its transaction (for COPY)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the transaction lazily, at the first statement.
        await session.execute(sa.text("SELECT 1"))
    if not driver.is_in_transaction():
        raise RuntimeError("bulk writes must run inside the session's transaction")
    return driver


# --------------------------------------------------------------------------------------------
# Upload rows


def file_digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


async def count_pending_new_uploads(session: AsyncSession, user_id: UUID) -> int:
    """Uploads of `user_id` that will create a portfolio and have not finished yet."""
    sql = "SELECT count(*) FROM ingest.upload WHERE user_id = :u AND mode = 'new' AND status IN ('queued','processing')"
    return int((await session.execute(sa.text(sql), {"u": user_id})).scalar_one())


async def live_portfolio_count(session: AsyncSession, user_id: UUID) -> int:
    sql = "SELECT count(*) FROM ingest.portfolio WHERE user_id = :u AND deleted_at IS NULL"
    return int((await session.execute(sa.text(sql), {"u": user_id})).scalar_one())


async def portfolio_name_taken(session: AsyncSession, user_id: UUID, name: str) -> bool:
    """A live portfolio, or a pending new upload, already uses `name` (case-insensitive)."""
    sql = """
        SELECT EXISTS (SELECT 1 FROM ingest.portfolio
                       WHERE user_id = :u AND deleted_at IS NULL AND lower(name) = lower(:n))
            OR EXISTS (SELECT 1 FROM ingest.upload
                       WHERE user_id = :u AND mode = 'new' AND status IN ('queued','processing')
                         AND lower(target_portfolio_name) = lower(:n))
    """
    return bool((await session.execute(sa.text(sql), {"u": user_id, "n": name})).scalar_one())


async def active_upload_for_portfolio(session: AsyncSession, portfolio_id: UUID) -> UUID | None:
    sql = "SELECT id FROM ingest.upload WHERE portfolio_id = :p AND status IN ('queued','processing') LIMIT 1"
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
    return _upload_dict(row) if row is not None else None


def _upload_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("header_map", "outcome"):
        if isinstance(out.get(key), str):
            out[key] = orjson.loads(out[key])
    return out


async def load_for_processing(session: AsyncSession, upload_id: UUID) -> dict[str, Any] | None:
    """The upload row with its content, locked for the processing job."""
    sql = f"SELECT {UPLOAD_COLUMNS}, content FROM ingest.upload WHERE id = :id FOR UPDATE"
    row = (await session.execute(sa.text(sql), {"id": upload_id})).mappings().first()
    return dict(row) if row is not None else None


async def update_upload(session: AsyncSession, upload_id: UUID, **values: Any) -> None:
    """Set columns of one upload (`outcome`/`header_map` as JSON)."""
    if not values:
        return
    params: dict[str, Any] = {"id": upload_id}
    sets: list[str] = []
    for key, value in values.items():
        if key in ("outcome", "header_map"):
            sets.append(f"{key} = CAST(:{key} AS jsonb)")
            params[key] = None if value is None else _json(value)
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
        {"k": key, "v": _json(value), "id": upload_id},
    )


async def finish_upload(session: AsyncSession, upload_id: UUID, result: CheckResult, **values: Any) -> None:
    """Record a finished check (completed or rejected): counts, header map, timestamps."""
    summary = result.summary()
    await update_upload(
        session,
        upload_id,
        phase=None,
        rows_total=summary["rows_total"],
        rows_processed=summary["rows_total"],
        rows_valid=summary["rows_valid"],
        rows_invalid=summary["rows_invalid"],
        error_count=summary["errors"],
        warning_count=summary["warnings"],
        header_map=result.header_map,
        ignored_columns=result.ignored_columns,
        finished_at=sa.text("now()"),
        purge_after=sa.text(PURGE_AFTER),
        **values,
    )


async def fail_upload(session: AsyncSession, upload_id: UUID, code: str, message: str, retryable: bool) -> None:
    await update_upload(
        session,
        upload_id,
        status="failed",
        phase=None,
        error_code=code,
        error_message=message[:1000],
        retryable=retryable,
        finished_at=sa.text("now()"),
        purge_after=sa.text(PURGE_AFTER),
    )


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
            _json(r.raw),
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
            _json(r.tags_json()) if r.tags else None,
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


# --------------------------------------------------------------------------------------------
# Inputs of the check


async def existing_tags(session: AsyncSession, user_id: UUID) -> list[ExistingTag]:
    sql = "SELECT name, tag_type FROM ingest.tag WHERE user_id = :u AND deleted_at IS NULL"
    rows = (await session.execute(sa.text(sql), {"u": user_id})).all()
    return [ExistingTag(r.name, r.tag_type) for r in rows]


async def open_position_keys(session: AsyncSession, portfolio_id: UUID) -> frozenset[tuple[str, date]]:
    sql = "SELECT symbol, entry_date FROM ingest.position WHERE portfolio_id = :p AND status = 'open'"
    rows = (await session.execute(sa.text(sql), {"p": portfolio_id})).all()
    return frozenset((r.symbol, r.entry_date) for r in rows)


async def security_lookup(db: Database, symbols: Iterable[str]) -> SecurityLookup:
    """Security-master rows, aliases and price presence for `symbols` (marketdata views only)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return SecurityLookup({}, {}, frozenset())
    try:
        pool = await db.pool()
        async with pool.acquire() as conn:
            alias_rows = await conn.fetch(
                "SELECT alias, symbol FROM marketdata.api_symbol_alias WHERE alias = ANY($1::text[])", wanted
            )
            aliases = {r["alias"]: r["symbol"] for r in alias_rows}
            sec_rows = await conn.fetch(
                "SELECT symbol, security_type, sector, industry FROM marketdata.api_security "
                "WHERE symbol = ANY($1::text[])",
                sorted(set(wanted) | set(aliases.values())),
            )
            securities = {
                r["symbol"]: Security(r["symbol"], r["security_type"], r["sector"], r["industry"]) for r in sec_rows
            }
            # Option contracts without a master row may still have quotes (NO_OPTION_DATA otherwise).
            unlisted = [s for s in wanted if s not in securities and len(s) > 12]
            priced: set[str] = set()
            if unlisted:
                priced_rows = await conn.fetch(
                    "SELECT s FROM unnest($1::text[]) AS s WHERE EXISTS "
                    "(SELECT 1 FROM marketdata.api_daily_price p WHERE p.symbol = s)",
                    unlisted,
                )
                priced = {r["s"] for r in priced_rows}
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
        raise MarketDataUnavailable(f"security master could not be read: {exc}") from exc
    return SecurityLookup(securities, aliases, frozenset(priced))


# --------------------------------------------------------------------------------------------
# Import of a clean file (one transaction, run by the caller)


async def create_portfolio(
    session: AsyncSession, *, user_id: UUID, name: str, cash_balance: Decimal | None
) -> tuple[UUID, bool]:
    """A new portfolio in `onboarding`; default when the user has no live default yet."""
    sql = """
        INSERT INTO ingest.portfolio (user_id, name, status, cash_balance, is_default, source)
        VALUES (:u, :n, 'onboarding', :cash,
                NOT EXISTS (SELECT 1 FROM ingest.portfolio
                            WHERE user_id = :u AND is_default AND deleted_at IS NULL),
                'csv')
        RETURNING id, is_default
    """
    row = (await session.execute(sa.text(sql), {"u": user_id, "n": name, "cash": cash_balance or Decimal("0")})).one()
    return UUID(str(row.id)), bool(row.is_default)


async def lock_portfolio(session: AsyncSession, portfolio_id: UUID) -> dict[str, Any] | None:
    sql = "SELECT id, user_id, status, name FROM ingest.portfolio WHERE id = :p AND deleted_at IS NULL FOR UPDATE"
    row = (await session.execute(sa.text(sql), {"p": portfolio_id})).mappings().first()
    return dict(row) if row is not None else None


async def set_cash(session: AsyncSession, portfolio_id: UUID, cash_balance: Decimal) -> None:
    await session.execute(
        sa.text("UPDATE ingest.portfolio SET cash_balance = :c, updated_at = now() WHERE id = :p"),
        {"c": cash_balance, "p": portfolio_id},
    )


async def close_open_positions(session: AsyncSession, portfolio_id: UUID, exit_date: date) -> int:
    """mode=replace: close every open position at the latest close (reason `replaced`)."""
    sql = """
        SELECT p.id, p.symbol, p.quantity, p.multiplier, p.entry_price, p.last_price, px.close
        FROM ingest.position p
        LEFT JOIN LATERAL (
            SELECT close FROM marketdata.api_daily_price d
            WHERE d.symbol = p.symbol AND d.price_date <= :d
            ORDER BY d.price_date DESC LIMIT 1
        ) px ON true
        WHERE p.portfolio_id = :p AND p.status = 'open'
        FOR UPDATE OF p
    """
    rows = (await session.execute(sa.text(sql), {"p": portfolio_id, "d": exit_date})).all()
    if not rows:
        return 0
    ids: list[UUID] = []
    exits: list[Decimal | None] = []
    pnls: list[Decimal | None] = []
    for r in rows:
        exit_price = r.close if r.close is not None else r.last_price
        ids.append(r.id)
        exits.append(exit_price)
        pnls.append(
            None
            if exit_price is None
            else round_money(Decimal(r.quantity) * (Decimal(exit_price) - Decimal(r.entry_price)) * r.multiplier)
        )
    conn = await driver_connection(session)
    await conn.execute(
        """
        UPDATE ingest.position AS p
        SET status = 'closed', closed_at = now(), closed_reason = 'replaced', exit_price = v.exit_price,
            realized_pnl = v.realized_pnl, exit_date = $4, updated_at = now()
        FROM unnest($1::uuid[], $2::numeric[], $3::numeric[]) AS v(id, exit_price, realized_pnl)
        WHERE p.id = v.id
        """,
        ids,
        exits,
        pnls,
        exit_date,
    )
    return len(ids)


async def insert_positions(
    session: AsyncSession, *, portfolio_id: UUID, upload_id: UUID, rows: Sequence[Row], tag_ids: dict[str, UUID]
) -> list[UUID]:
    """COPY the file's positions (source `csv`) and their tag links; returns the new position ids."""
    conn = await driver_connection(session)
    ids = [uuid.uuid4() for _ in rows]
    records = [
        (
            pid,
            portfolio_id,
            r.symbol,
            r.instrument_type,
            r.position_type,
            r.quantity,
            r.multiplier,
            r.underlying_symbol,
            r.option_type,
            r.strike_price,
            r.expiration_date,
            r.entry_price,
            r.entry_date,
            "open",
            "csv",
            upload_id,
        )
        for pid, r in zip(ids, rows, strict=True)
    ]
    await conn.copy_records_to_table("position", schema_name="ingest", columns=POSITION_COPY_COLUMNS, records=records)
    links = [(pid, tag_ids[t.name.lower()], "csv") for pid, r in zip(ids, rows, strict=True) for t in r.tags]
    if links:
        await conn.copy_records_to_table(
            "position_tag", schema_name="ingest", columns=("position_id", "tag_id", "source"), records=links
        )
    return ids


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
