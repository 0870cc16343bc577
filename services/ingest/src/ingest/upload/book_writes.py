"""What importing a clean file writes into the book: the portfolio (new, or its cash), the closed
positions of `mode=replace`, and the file's positions with their tag links (COPY).

Everything runs inside the one import transaction of `ingest.upload.commit`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.formatting import round_money
from ingest.csv_format import Row
from ingest.upload.bulk import driver_connection

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
        # No close on or before the exit date: the position's last known price.
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
