"""Rows of the ProForma sessions: modeling_session and modeling_trade (writes inside the caller's transaction).

Ownership is part of every read: a session of another user is not found (api.md §2.6, no existence
leak); an admin may read any. A session is `active` until 24 h pass without activity; the expiry is
applied lazily by `expire_due` (on every access to a user's sessions) and by the hourly sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Principal
from ingest.modeling.book import BasePosition, BookedTrade, Instrument
from ingest.modeling.tables import modeling_session, modeling_trade
from ingest.tag_rules import advisory_key

SESSION_TTL = timedelta(hours=24)
MAX_ACTIVE_SESSIONS = 10
MAX_TRADES = 200
_EXPIRES = sa.func.now() + sa.text("interval '24 hours'")

BASE_POSITIONS_SQL = """
SELECT id, symbol, instrument_type, underlying_symbol, multiplier, option_type, strike_price, expiration_date,
       quantity, last_price, price_source, underlying_price, market_value, dollar_exposure, notional
FROM ingest.position WHERE portfolio_id = :p AND status = 'open' ORDER BY symbol, entry_date, id
"""


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def instrument_of(row: Any) -> Instrument:
    """The instrument of a position or trade row (`symbol` or `ticker`)."""
    symbol = row["symbol"] if "symbol" in row else row["ticker"]
    return Instrument(
        symbol=symbol,
        instrument_type=row["instrument_type"],
        underlying=row["underlying_symbol"],
        multiplier=int(row["multiplier"]),
        option_type=row["option_type"],
        strike=_dec(row["strike_price"]),
        expiry=row["expiration_date"],
    )


def base_to_json(row: Any) -> dict[str, Any]:
    """A position row as stored in `base_positions` (decimals as strings, dates ISO)."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, Decimal | UUID):
            value = str(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[key] = value
    return out


def base_from_json(item: dict[str, Any]) -> BasePosition:
    """A BasePosition from one `base_positions` element."""
    expiry = item.get("expiration_date")
    row = {**item, "expiration_date": date.fromisoformat(expiry) if expiry else None}
    return BasePosition(
        id=UUID(item["id"]),
        instrument=instrument_of(row),
        quantity=Decimal(item["quantity"]),
        last_price=_dec(item.get("last_price")),
        price_source=item.get("price_source"),
        underlying_price=_dec(item.get("underlying_price")),
        market_value=_dec(item.get("market_value")),
        dollar_exposure=_dec(item.get("dollar_exposure")),
        notional=_dec(item.get("notional")),
    )


def trade_from_row(row: Any) -> BookedTrade:
    """A stored trade as the book logic sees it."""
    return BookedTrade(
        instrument=instrument_of(row),
        side=row["side"],
        quantity=row["quantity"],
        price=row["price"],
        price_source=row["price_source"],
        quantity_before=row["quantity_before"],
        quantity_after=row["quantity_after"],
        action=row["action"],
        position_ref=row["position_ref"],
        requested_amount=row["requested_amount"],
        tags=tuple(row["tags"] or ()),
        note=row["note"],
    )


async def lock_user(session: AsyncSession, user_id: UUID) -> None:
    """Serialise a user's session creations (the 10-active-session limit)."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("modeling", user_id)})


async def expire_due(session: AsyncSession, *, user_id: UUID | None = None) -> int:
    """Mark active sessions past `expires_at` expired (one user's, or all); returns how many."""
    t = modeling_session
    stmt = sa.update(t).where(t.c.status == "active", t.c.expires_at <= sa.func.now())
    if user_id is not None:
        stmt = stmt.where(t.c.user_id == user_id)
    result = await session.execute(stmt.values(status="expired", updated_at=sa.func.now()))
    return int(getattr(result, "rowcount", 0) or 0)


async def active_count(session: AsyncSession, user_id: UUID) -> int:
    t = modeling_session
    stmt = sa.select(sa.func.count()).where(t.c.user_id == user_id, t.c.status == "active")
    return int((await session.execute(stmt)).scalar_one())


async def base_positions(session: AsyncSession, portfolio_id: UUID) -> list[dict[str, Any]]:
    """The portfolio's open positions with their current valuation, as stored in a new session."""
    rows = (await session.execute(sa.text(BASE_POSITIONS_SQL), {"p": portfolio_id})).mappings().all()
    return [base_to_json(r) for r in rows]


async def insert_session(session: AsyncSession, **values: Any) -> dict[str, Any]:
    stmt = sa.insert(modeling_session).values(**values, expires_at=_EXPIRES).returning(modeling_session)
    return dict((await session.execute(stmt)).mappings().one())


async def get_session(
    session: AsyncSession, principal: Principal, session_id: UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The caller's session (any session for an admin); None when missing or someone else's."""
    t = modeling_session
    stmt = sa.select(t).where(t.c.id == session_id)
    if not principal.is_admin:
        stmt = stmt.where(t.c.user_id == principal.user_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def update_session(
    session: AsyncSession, session_id: UUID, *, touch: bool = True, **values: Any
) -> dict[str, Any]:
    """Update a session; `touch` records activity (and, while active, pushes `expires_at` 24 h out)."""
    t = modeling_session
    if touch:
        values.setdefault("last_activity_at", sa.func.now())
        values.setdefault("expires_at", sa.case((t.c.status == "active", _EXPIRES), else_=t.c.expires_at))
    stmt = sa.update(t).where(t.c.id == session_id).values(updated_at=sa.func.now(), **values).returning(t)
    return dict((await session.execute(stmt)).mappings().one())


async def list_sessions(
    session: AsyncSession,
    *,
    user_id: UUID,
    portfolio_id: UUID | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A user's sessions, newest first (without the frozen positions), each with its trade count; and the total."""
    t, tr = modeling_session, modeling_trade
    where = [t.c.user_id == user_id]
    if portfolio_id is not None:
        where.append(t.c.portfolio_id == portfolio_id)
    if statuses:
        where.append(t.c.status.in_(list(statuses)))
    trades = sa.select(sa.func.count()).where(tr.c.session_id == t.c.id).scalar_subquery()
    columns = [c for c in t.c if c.name != "base_positions"]
    stmt = (
        sa.select(*columns, trades.label("trade_count"))
        .where(*where)
        .order_by(t.c.created_at.desc(), t.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
    total = (await session.execute(sa.select(sa.func.count()).select_from(t).where(*where))).scalar_one()
    return rows, int(total)


async def list_trades(session: AsyncSession, session_id: UUID) -> list[dict[str, Any]]:
    t = modeling_trade
    rows = (await session.execute(sa.select(t).where(t.c.session_id == session_id).order_by(t.c.seq))).mappings()
    return [dict(r) for r in rows]


def _trade_values(session_id: UUID, seq: int, trade: BookedTrade) -> dict[str, Any]:
    i = trade.instrument
    return {
        "session_id": session_id,
        "seq": seq,
        "ticker": i.symbol,
        "instrument_type": i.instrument_type,
        "underlying_symbol": i.underlying,
        "option_type": i.option_type,
        "strike_price": i.strike,
        "expiration_date": i.expiry,
        "multiplier": i.multiplier,
        "side": trade.side,
        "position_ref": trade.position_ref,
        "action": trade.action,
        "quantity": trade.quantity,
        "requested_amount": trade.requested_amount,
        "price": trade.price,
        "price_source": trade.price_source,
        "quantity_before": trade.quantity_before,
        "quantity_after": trade.quantity_after,
        "tags": list(trade.tags),
        "note": trade.note,
    }


async def insert_trades(
    session: AsyncSession, session_id: UUID, first_seq: int, trades: Sequence[BookedTrade]
) -> list[dict[str, Any]]:
    """Insert `trades` numbered from `first_seq`; returns the rows in order."""
    if not trades:
        return []
    values = [_trade_values(session_id, first_seq + k, t) for k, t in enumerate(trades)]
    stmt = sa.insert(modeling_trade).values(values).returning(modeling_trade)
    rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
    return sorted(rows, key=lambda r: r["seq"])


async def delete_trade(session: AsyncSession, session_id: UUID, trade_id: UUID) -> bool:
    t = modeling_trade
    result = await session.execute(sa.delete(t).where(t.c.session_id == session_id, t.c.id == trade_id))
    return bool(getattr(result, "rowcount", 0))


async def rewrite_positions(
    session: AsyncSession, rows: Sequence[dict[str, Any]], trades: Sequence[BookedTrade]
) -> None:
    """Store the re-booked size and net positions of the remaining trades (after a removal)."""
    t = modeling_trade
    for row, trade in zip(rows, trades, strict=True):
        await session.execute(
            sa.update(t)
            .where(t.c.id == row["id"])
            .values(quantity=trade.quantity, quantity_before=trade.quantity_before, quantity_after=trade.quantity_after)
        )


async def delete_for_user(session: AsyncSession, user_id: UUID) -> int:
    """Remove every session of `user_id` (demo reset); trades cascade."""
    t = modeling_session
    result = await session.execute(sa.delete(t).where(t.c.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
