"""Idempotent seed of the three demo books (demo.md §2-§3, data-model.md §10).

Rows carry the deterministic ids of docs/contracts.md, so `seed()` upserts on them: running it
twice leaves 3 portfolios, 63 positions and 9 tags. `restore_book()` is the stronger form used
by the demo reset: it also puts back status, default flag, open state and the exact tag links.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from ingest.demo_data import DEMO_BOOKS, DemoBook
from ingest.instruments import parse_occ, position_type

log = logging.getLogger(__name__)

_PORTFOLIO_SQL = """
INSERT INTO ingest.portfolio (id, user_id, name, cash_balance, is_default, status, is_demo_seed, source, onboarded_at)
SELECT :id, :user_id, :name, :cash, NOT EXISTS (
           SELECT 1 FROM ingest.portfolio o
           WHERE o.user_id = :user_id AND o.is_default AND o.deleted_at IS NULL AND o.id <> :id),
       'active', true, 'seed', now()
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, cash_balance = EXCLUDED.cash_balance, is_demo_seed = true, source = 'seed',
    user_id = EXCLUDED.user_id {restore}
"""
_PORTFOLIO_RESTORE = """,
    status = 'active', is_default = true, deleted_at = NULL, description = NULL,
    onboarded_at = COALESCE(ingest.portfolio.onboarded_at, now()), updated_at = now()"""

_POSITION_SQL = """
INSERT INTO ingest.position (id, portfolio_id, symbol, instrument_type, position_type, quantity, multiplier,
    underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, source)
VALUES (:id, :portfolio_id, :symbol, :instrument_type, :position_type, :quantity, :multiplier,
    :underlying_symbol, :option_type, :strike_price, :expiration_date, :entry_price, :entry_date, 'seed')
ON CONFLICT (id) DO UPDATE SET
    symbol = EXCLUDED.symbol, instrument_type = EXCLUDED.instrument_type, position_type = EXCLUDED.position_type,
    quantity = EXCLUDED.quantity, multiplier = EXCLUDED.multiplier, underlying_symbol = EXCLUDED.underlying_symbol,
    option_type = EXCLUDED.option_type, strike_price = EXCLUDED.strike_price,
    expiration_date = EXCLUDED.expiration_date, entry_price = EXCLUDED.entry_price,
    entry_date = EXCLUDED.entry_date, source = 'seed' {restore}
RETURNING id, (xmax = 0) AS inserted
"""
_POSITION_RESTORE = """,
    status = 'open', closed_at = NULL, closed_reason = NULL, exit_price = NULL, exit_date = NULL,
    realized_pnl = NULL, upload_id = NULL, updated_at = now()"""

_TAG_SQL = """
INSERT INTO ingest.tag (id, user_id, name, tag_type)
VALUES (:id, :user_id, :name, :tag_type)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tag_type = EXCLUDED.tag_type {restore}
"""
_TAG_RESTORE = """,
    deleted_at = NULL, color = '#6B7280', description = NULL, updated_at = now()"""

_LINK_SQL = """
INSERT INTO ingest.position_tag (position_id, tag_id, source) VALUES (:position_id, :tag_id, 'seed')
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class SeedCounts:
    """What the seed left in place."""

    portfolios: int
    positions: int
    tags: int

    def as_dict(self) -> dict[str, int]:
        return {"portfolios": self.portfolios, "positions": self.positions, "tags": self.tags}


def position_rows(book: DemoBook) -> list[dict[str, Any]]:
    """Insert parameters of a book's positions (option fields from the OCC symbol)."""
    rows = []
    for pos in book.positions:
        occ = parse_occ(pos.symbol)
        rows.append(
            {
                "id": book.position_id(pos),
                "portfolio_id": book.portfolio_id,
                "symbol": pos.symbol,
                "instrument_type": "option" if occ else "stock",
                "position_type": position_type(pos.quantity, occ.option_type if occ else None),
                "quantity": pos.quantity,
                "multiplier": 100 if occ else 1,
                "underlying_symbol": occ.underlying if occ else pos.symbol,
                "option_type": occ.option_type if occ else None,
                "strike_price": occ.strike_price if occ else None,
                "expiration_date": occ.expiration_date if occ else None,
                "entry_price": pos.entry_price,
                "entry_date": pos.entry_date,
            }
        )
    return rows


def link_rows(book: DemoBook) -> list[dict[str, UUID]]:
    """(position, tag) pairs of a book."""
    return [
        {"position_id": book.position_id(pos), "tag_id": book.tag_id(name)}
        for pos in book.positions
        for name in pos.tags
    ]


async def upsert_book(session: AsyncSession, book: DemoBook, *, restore: bool) -> None:
    """Write one demo book; `restore` also resets state (demo reset) instead of only the facts."""
    await session.execute(
        sa.text(_PORTFOLIO_SQL.format(restore=_PORTFOLIO_RESTORE if restore else "")),
        {"id": book.portfolio_id, "user_id": book.user_id, "name": book.portfolio_name, "cash": book.cash_balance},
    )
    for name in book.tag_names:
        await session.execute(
            sa.text(_TAG_SQL.format(restore=_TAG_RESTORE if restore else "")),
            {
                "id": book.tag_id(name),
                "user_id": book.user_id,
                "name": name,
                "tag_type": "strategy" if name in book.strategy_tags else "regular",
            },
        )
    inserted: set[UUID] = set()
    sql = sa.text(_POSITION_SQL.format(restore=_POSITION_RESTORE if restore else ""))
    for params in position_rows(book):
        row = (await session.execute(sql, params)).one()
        if row.inserted:
            inserted.add(row.id)
    links = link_rows(book)
    if restore:
        ids = [book.position_id(p) for p in book.positions]
        await session.execute(
            sa.text("DELETE FROM ingest.position_tag WHERE position_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
        )
    else:
        # A re-seed never re-adds links a user changed (that could give a position two strategies).
        links = [link for link in links if link["position_id"] in inserted]
    if links:
        await session.execute(sa.text(_LINK_SQL), links)


async def counts(session: AsyncSession) -> SeedCounts:
    """Seeded rows present now."""
    books = DEMO_BOOKS
    row = (
        await session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM ingest.portfolio WHERE id = ANY(CAST(:pf AS uuid[])) "
                "AND deleted_at IS NULL) AS portfolios, "
                "(SELECT count(*) FROM ingest.position WHERE id = ANY(CAST(:pos AS uuid[]))) AS positions, "
                "(SELECT count(*) FROM ingest.tag WHERE id = ANY(CAST(:tags AS uuid[])) AND deleted_at IS NULL) AS tags"
            ),
            {
                "pf": [b.portfolio_id for b in books],
                "pos": [b.position_id(p) for b in books for p in b.positions],
                "tags": [b.tag_id(n) for b in books for n in b.tag_names],
            },
        )
    ).one()
    return SeedCounts(row.portfolios, row.positions, row.tags)


async def seed(db: Database, settings: Any = None) -> dict[str, int]:
    """Seed the demo portfolios, positions and tags (idempotent)."""
    async with db.transaction() as session:
        for book in DEMO_BOOKS:
            await upsert_book(session, book, restore=False)
        result = await counts(session)
    log.info("ingest seed: %s portfolios, %s positions, %s tags", result.portfolios, result.positions, result.tags)
    return result.as_dict()
