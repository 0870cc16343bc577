"""Reads of the portfolio being onboarded: its open positions and the upload that created it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.onboarding.model import Holding
from ingest.upload.bulk import driver_connection, from_json

HOLDING_COLUMNS = (
    "p.id, p.portfolio_id, p.symbol, p.instrument_type, p.position_type, p.quantity, p.multiplier, "
    "p.underlying_symbol, p.option_type, p.strike_price, p.expiration_date, p.entry_price, p.entry_date, "
    "p.cost_basis, p.status, p.realized_pnl, p.created_at, p.updated_at"
)


async def holdings(conn: asyncpg.Connection, portfolio_id: UUID, *, with_tags: bool = True) -> list[dict[str, Any]]:
    """Open positions of a portfolio (with their live tags as TagRef dicts), ordered by symbol."""
    if not with_tags:
        rows = await conn.fetch(
            f"SELECT {HOLDING_COLUMNS} FROM ingest.position p WHERE p.portfolio_id = $1 AND p.status = 'open' "
            "ORDER BY p.symbol, p.entry_date, p.id",
            portfolio_id,
        )
        return [dict(r) for r in rows]
    rows = await conn.fetch(
        f"""
        SELECT {HOLDING_COLUMNS}, COALESCE(t.tags, '[]') AS tags
        FROM ingest.position p
        LEFT JOIN (
            SELECT pt.position_id,
                   json_agg(json_build_object('id', tg.id, 'name', tg.name, 'tag_type', tg.tag_type,
                                              'color', tg.color) ORDER BY tg.name) AS tags
            FROM ingest.position_tag pt
            JOIN ingest.position pp ON pp.id = pt.position_id AND pp.portfolio_id = $1 AND pp.status = 'open'
            JOIN ingest.tag tg ON tg.id = pt.tag_id AND tg.deleted_at IS NULL
            GROUP BY pt.position_id
        ) t ON t.position_id = p.id
        WHERE p.portfolio_id = $1 AND p.status = 'open'
        ORDER BY p.symbol, p.entry_date, p.id
        """,
        portfolio_id,
    )
    return [{**dict(r), "tags": from_json(r["tags"])} for r in rows]


def to_holding(row: dict[str, Any]) -> Holding:
    return Holding(
        id=str(row["id"]),
        symbol=row["symbol"],
        instrument_type=row["instrument_type"],
        position_type=row["position_type"],
        quantity=Decimal(row["quantity"]),
        multiplier=int(row["multiplier"]),
        underlying_symbol=row["underlying_symbol"],
        entry_price=Decimal(row["entry_price"]),
        entry_date=row["entry_date"],
        option_type=row["option_type"],
        strike_price=row["strike_price"],
        expiration_date=row["expiration_date"],
    )


async def session_holdings(session: AsyncSession, portfolio_id: UUID) -> list[Holding]:
    """Open positions as Holdings inside a SQLAlchemy transaction (upload commit)."""
    conn = await driver_connection(session)
    return [to_holding(r) for r in await holdings(conn, portfolio_id, with_tags=False)]


async def creating_upload(conn: asyncpg.Connection, portfolio_id: UUID) -> dict[str, Any] | None:
    """The latest completed upload into this portfolio (preview's `upload_id` and tag summary)."""
    row = await conn.fetchrow(
        "SELECT id, outcome FROM ingest.upload WHERE portfolio_id = $1 AND status = 'completed' "
        "ORDER BY finished_at DESC NULLS LAST, created_at DESC LIMIT 1",
        portfolio_id,
    )
    if row is None:
        return None
    return {"id": row["id"], "outcome": from_json(row["outcome"]) or {}}
