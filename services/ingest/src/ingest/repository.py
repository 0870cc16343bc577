"""Portfolio reads of the `aggregations` step and shared tag/portfolio writes.

The valuation itself (one read, one vectorised valuation, one write) is `ingest.valuation_batch`.

Reads of other services go only through their `api_*` views (docs/contracts.md); optional views
are consulted only when they exist (`ingest.catalog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import ValidationFailed
from ingest import catalog
from ingest.compute import NA
from ingest.tag_rules import MAX_TAGS_PER_USER, ParsedTag, lock_user


def to_cents(value: Decimal | None) -> int:
    """NUMERIC(20,2) → integer cents (NA for NULL)."""
    return NA if value is None else int(value.scaleb(2).to_integral_value())


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> Sequence[sa.Row[Any]]:
    return (await session.execute(sa.text(sql), params)).all()


async def trading_days_before(session: AsyncSession, as_of: date, present: frozenset[str]) -> list[date]:
    """Up to 12 NYSE trading days strictly before `as_of` (empty when no calendar is stored)."""
    if catalog.TRADING_DAY not in present:
        return []
    rows = await _rows(
        session,
        "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date < :t "
        "ORDER BY trading_date DESC LIMIT 12",
        {"t": as_of},
    )
    return [r.trading_date for r in rows]


async def live_portfolio_ids(session: AsyncSession, portfolio_ids: list[UUID]) -> set[UUID]:
    """Those of `portfolio_ids` that are live (not soft-deleted) portfolios."""
    rows = await session.execute(
        sa.text("SELECT id FROM ingest.portfolio WHERE id = ANY(:ids) AND deleted_at IS NULL"), {"ids": portfolio_ids}
    )
    return {r[0] for r in rows}


async def portfolio_exists(session: AsyncSession, portfolio_id: UUID) -> bool:
    """A live portfolio with this id."""
    row = await session.execute(
        sa.text("SELECT 1 FROM ingest.portfolio WHERE id = :pid AND deleted_at IS NULL"), {"pid": portfolio_id}
    )
    return row.first() is not None


async def active_portfolio_ids(session: AsyncSession) -> list[UUID]:
    """Every live, active portfolio (daily run scope)."""
    rows = await _rows(
        session, "SELECT id FROM ingest.portfolio WHERE status = 'active' AND deleted_at IS NULL ORDER BY id", {}
    )
    return [r.id for r in rows]


async def portfolio_symbols(session: AsyncSession, portfolio_id: UUID) -> list[str]:
    """Distinct symbols and underlyings of a portfolio's open positions."""
    rows = await _rows(
        session,
        "SELECT symbol FROM ingest.position WHERE portfolio_id = :pid AND status = 'open' "
        "UNION SELECT underlying_symbol FROM ingest.position WHERE portfolio_id = :pid AND status = 'open' "
        "ORDER BY 1",
        {"pid": portfolio_id},
    )
    return [r[0] for r in rows]


# ---------------------------------------------------------------------------------------------
# Tags shared with the upload commit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagRow:
    """A live tag of a user."""

    id: UUID
    name: str
    tag_type: str
    color: str
    created: bool = False


async def live_tags(session: AsyncSession, user_id: UUID) -> dict[str, TagRow]:
    """The user's live tags keyed by `name_key`."""
    rows = await _rows(
        session,
        "SELECT id, name, name_key, tag_type, color FROM ingest.tag WHERE user_id = :u AND deleted_at IS NULL",
        {"u": user_id},
    )
    return {r.name_key: TagRow(r.id, r.name, r.tag_type, r.color.strip()) for r in rows}


async def ensure_tags(
    session: AsyncSession,
    user_id: UUID,
    wanted: Sequence[ParsedTag],
    *,
    create_missing: bool = True,
    limit: int = MAX_TAGS_PER_USER,
) -> dict[str, TagRow]:
    """Find the user's tags by name (case-insensitive) and create the missing ones.

    Takes the per-user tag lock; an existing tag keeps its type (csv-format.md §3.5 rule 7).
    Returns `name_key → TagRow` for every wanted name. Missing names without `create_missing`
    raise 422; exceeding `limit` live tags raises 409 TAG_LIMIT_REACHED (callers may translate).
    """
    from ingest.errors import TagLimitReached

    await lock_user(session, "tags", user_id)
    existing = await live_tags(session, user_id)
    out: dict[str, TagRow] = {}
    to_create: dict[str, ParsedTag] = {}
    for tag in wanted:
        hit = existing.get(tag.key)
        if hit is not None:
            out[tag.key] = hit
        else:
            to_create.setdefault(tag.key, tag)
    if to_create and not create_missing:
        names = sorted(t.name for t in to_create.values())
        raise ValidationFailed(
            "Unknown tag names",
            code="VALIDATION_ERROR",
            details=[{"field": "body.tag_names", "issue": "unknown tag", "value": n} for n in names],
        )
    if len(existing) + len(to_create) > limit:
        raise TagLimitReached(len(existing) + len(to_create), limit)
    for key, tag in to_create.items():
        row = (
            await session.execute(
                sa.text(
                    "INSERT INTO ingest.tag (user_id, name, tag_type) VALUES (:u, :n, :t) "
                    "RETURNING id, name, tag_type, color"
                ),
                {"u": user_id, "n": tag.name, "t": tag.tag_type},
            )
        ).one()
        out[key] = TagRow(row.id, row.name, row.tag_type, row.color.strip(), created=True)
    return out
