"""Valuation I/O (the `aggregations` step) and shared tag/portfolio writes.

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

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import ValidationFailed
from ingest import catalog, compute
from ingest.compute import NA, ValuationInput, ValuationResult
from ingest.tag_rules import MAX_TAGS_PER_USER, ParsedTag, lock_user

CENT = Decimal("0.01")
E4 = Decimal("0.0001")


def to_e4(value: Decimal | None) -> int:
    """NUMERIC(18,4) → integer × 10^4 (NA for NULL)."""
    return NA if value is None else int(value.scaleb(4).to_integral_value())


def to_cents(value: Decimal | None) -> int:
    """NUMERIC(20,2) → integer cents (NA for NULL)."""
    return NA if value is None else int(value.scaleb(2).to_integral_value())


def cents_decimal(value: int) -> Decimal | None:
    """Integer cents → Decimal with 2 dp (None for NA)."""
    return None if value == NA else Decimal(value).scaleb(-2)


def e4_decimal(value: int) -> Decimal | None:
    """Integer × 10^4 → Decimal with 4 dp (None for NA)."""
    return None if value == NA else Decimal(value).scaleb(-4)


def _day(value: date | None) -> np.datetime64:
    return np.datetime64("NaT", "D") if value is None else np.datetime64(value, "D")


@dataclass(frozen=True)
class LoadedPositions:
    """Positions held at `as_of` plus the inputs compute needs."""

    ids: list[UUID]
    symbols: list[str]
    inputs: ValuationInput


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


async def _closes(
    session: AsyncSession, symbols: list[str], upto: date, since: date, present: frozenset[str]
) -> dict[str, tuple[date, Decimal]]:
    if catalog.DAILY_PRICE not in present or not symbols:
        return {}
    rows = await _rows(
        session,
        "SELECT DISTINCT ON (symbol) symbol, price_date, close FROM marketdata.api_daily_price "
        "WHERE symbol = ANY(CAST(:s AS text[])) AND price_date <= :upto AND price_date >= :since "
        "ORDER BY symbol, price_date DESC",
        {"s": symbols, "upto": upto, "since": since},
    )
    return {r.symbol: (r.price_date, r.close) for r in rows}


async def _greeks(
    session: AsyncSession, ids: list[UUID], days: tuple[date, date], present: frozenset[str]
) -> dict[tuple[UUID, date], Any]:
    if catalog.POSITION_GREEK not in present or not ids:
        return {}
    rows = await _rows(
        session,
        "SELECT position_id, calculation_date, status, delta, delta_ps, model_price, quantity "
        "FROM greeks.api_position_greek WHERE position_id = ANY(CAST(:ids AS uuid[])) "
        "AND calculation_date IN (:t, :p)",
        {"ids": ids, "t": days[0], "p": days[1]},
    )
    return {(r.position_id, r.calculation_date): r for r in rows}


def _per_share_delta(row: Any, quantity: Decimal, multiplier: int) -> float:
    """The per-share delta of a greeks row: 0 when expired, NaN without a usable delta."""
    if row is None or row.status in ("missing_inputs", "error"):
        return float("nan")
    if row.status == "expired":
        return 0.0
    if row.delta_ps is not None:
        return float(row.delta_ps)
    if row.delta is not None and quantity != 0:
        return float(row.delta) / (float(quantity) * multiplier)
    return float("nan")


async def load_valuation_inputs(
    session: AsyncSession, portfolio_id: UUID, as_of: date, stale_days: int, present: frozenset[str]
) -> LoadedPositions:
    """Positions held at `as_of` ("held at D" of docs/contracts.md) with prices and Greeks."""
    cal = compute.trading_calendar(await trading_days_before(session, as_of, present), as_of, stale_days)
    positions = await _rows(
        session,
        "SELECT id, symbol, instrument_type, quantity, multiplier, underlying_symbol, option_type, strike_price, "
        "expiration_date, entry_price, entry_date, cost_basis FROM ingest.position "
        "WHERE portfolio_id = :pid AND entry_date <= :t AND (status = 'open' OR exit_date > :t) ORDER BY id",
        {"pid": portfolio_id, "t": as_of},
    )
    symbols = sorted({r.symbol for r in positions} | {r.underlying_symbol for r in positions})
    close_t = await _closes(session, symbols, as_of, cal.window_t, present)
    close_p = await _closes(session, symbols, cal.prev_date, cal.window_p, present)
    option_ids = [r.id for r in positions if r.instrument_type == "option"]
    greeks = await _greeks(session, option_ids, (as_of, cal.prev_date), present)

    def close_of(table: dict[str, tuple[date, Decimal]], symbol: str) -> tuple[int, np.datetime64]:
        hit = table.get(symbol)
        return (NA, _day(None)) if hit is None else (to_e4(hit[1]), _day(hit[0]))

    def model(row: Any) -> float:
        return float("nan") if row is None or row.model_price is None else float(row.model_price)

    ct = [close_of(close_t, r.symbol) for r in positions]
    cp = [close_of(close_p, r.symbol) for r in positions]
    gt = [greeks.get((r.id, as_of)) for r in positions]
    gp = [greeks.get((r.id, cal.prev_date)) for r in positions]
    is_option = np.array([r.instrument_type == "option" for r in positions], dtype=bool)
    inputs = ValuationInput(
        as_of=as_of,
        prev_date=cal.prev_date,
        quantity=np.array([to_e4(r.quantity) for r in positions], dtype=np.int64),
        multiplier=np.array([r.multiplier for r in positions], dtype=np.int64),
        is_option=is_option,
        is_call=np.array([r.option_type == "C" for r in positions], dtype=bool),
        strike=np.array([to_e4(r.strike_price) if r.strike_price is not None else 0 for r in positions], np.int64),
        expiry=np.array([_day(r.expiration_date) for r in positions], dtype="datetime64[D]"),
        entry_price=np.array([to_e4(r.entry_price) for r in positions], dtype=np.int64),
        entry_date=np.array([_day(r.entry_date) for r in positions], dtype="datetime64[D]"),
        cost_basis=np.array([to_cents(r.cost_basis) for r in positions], dtype=np.int64),
        close_t=np.array([c[0] for c in ct], dtype=np.int64),
        close_t_date=np.array([c[1] for c in ct], dtype="datetime64[D]"),
        close_p=np.array([c[0] for c in cp], dtype=np.int64),
        close_p_date=np.array([c[1] for c in cp], dtype="datetime64[D]"),
        model_t=np.array([model(g) for g in gt], dtype=np.float64),
        model_p=np.array([model(g) for g in gp], dtype=np.float64),
        underlying_t=np.array(
            [close_of(close_t, r.underlying_symbol)[0] if o else NA for r, o in zip(positions, is_option, strict=True)],
            dtype=np.int64,
        ),
        delta_ps=np.array(
            [_per_share_delta(g, r.quantity, r.multiplier) for g, r in zip(gt, positions, strict=True)],
            dtype=np.float64,
        ),
    )
    return LoadedPositions([r.id for r in positions], [r.symbol for r in positions], inputs)


_UPSERT_VALUATION = """
INSERT INTO ingest.position_valuation AS v (position_id, valuation_date, portfolio_id, last_price, underlying_price,
    price_date, price_source, market_value, dollar_exposure, notional, unrealized_pnl, daily_pnl, quantity, delta,
    flags, run_id)
SELECT u.position_id, CAST(:t AS date), CAST(:pid AS uuid), u.last_price, u.underlying_price, u.price_date,
       u.price_source, u.market_value, u.dollar_exposure, u.notional, u.unrealized_pnl, u.daily_pnl, u.quantity,
       u.delta, string_to_array(u.flags, ','), CAST(:run_id AS uuid)
FROM unnest(CAST(:ids AS uuid[]), CAST(:last_price AS numeric[]), CAST(:underlying_price AS numeric[]),
            CAST(:price_date AS date[]), CAST(:price_source AS text[]), CAST(:market_value AS numeric[]),
            CAST(:dollar_exposure AS numeric[]), CAST(:notional AS numeric[]), CAST(:unrealized_pnl AS numeric[]),
            CAST(:daily_pnl AS numeric[]), CAST(:quantity AS numeric[]), CAST(:delta AS float8[]),
            CAST(:flags AS text[]))
  AS u(position_id, last_price, underlying_price, price_date, price_source, market_value, dollar_exposure, notional,
       unrealized_pnl, daily_pnl, quantity, delta, flags)
ON CONFLICT (position_id, valuation_date) DO UPDATE SET
    portfolio_id = EXCLUDED.portfolio_id, last_price = EXCLUDED.last_price,
    underlying_price = EXCLUDED.underlying_price, price_date = EXCLUDED.price_date,
    price_source = EXCLUDED.price_source, market_value = EXCLUDED.market_value,
    dollar_exposure = EXCLUDED.dollar_exposure, notional = EXCLUDED.notional,
    unrealized_pnl = EXCLUDED.unrealized_pnl, daily_pnl = EXCLUDED.daily_pnl, quantity = EXCLUDED.quantity,
    delta = EXCLUDED.delta, flags = EXCLUDED.flags, run_id = EXCLUDED.run_id, created_at = now()
"""

# Current columns follow the newest valuation only: a back-fill for an older date never overwrites them.
_UPDATE_CURRENT = """
UPDATE ingest.position p SET
    last_price = v.last_price, price_date = v.price_date, price_source = v.price_source,
    underlying_price = v.underlying_price, market_value = v.market_value, dollar_exposure = v.dollar_exposure,
    notional = v.notional, unrealized_pnl = v.unrealized_pnl, daily_pnl = v.daily_pnl,
    valuation_date = v.valuation_date, valued_at = now()
FROM ingest.position_valuation v
WHERE v.position_id = p.id AND v.valuation_date = :t AND p.portfolio_id = :pid AND p.status = 'open'
  AND (p.valuation_date IS NULL OR p.valuation_date <= :t)
  AND (p.price_date IS NULL OR p.price_date <= :t)
"""

_UPDATE_PORTFOLIO = """
UPDATE ingest.portfolio SET valuation_date = :t, valued_at = now()
WHERE id = :pid AND (valuation_date IS NULL OR valuation_date <= :t)
"""


async def save_valuation(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    as_of: date,
    run_id: UUID | None,
    loaded: LoadedPositions,
    result: ValuationResult,
) -> None:
    """Upsert `position_valuation` rows and refresh the current columns (newest date wins)."""
    if loaded.ids:
        params = {
            "t": as_of,
            "pid": portfolio_id,
            "run_id": run_id,
            "ids": loaded.ids,
            "last_price": [e4_decimal(v) for v in result.last_price.tolist()],
            "underlying_price": [e4_decimal(v) for v in result.underlying_price.tolist()],
            "price_date": [None if np.isnat(d) else d.astype(date) for d in result.price_date],
            "price_source": [compute.SOURCE_NAMES.get(int(s)) for s in result.price_source],
            "market_value": [cents_decimal(v) for v in result.market_value.tolist()],
            "dollar_exposure": [cents_decimal(v) for v in result.dollar_exposure.tolist()],
            "notional": [cents_decimal(v) for v in result.notional.tolist()],
            "unrealized_pnl": [cents_decimal(v) for v in result.unrealized_pnl.tolist()],
            "daily_pnl": [cents_decimal(v) for v in result.daily_pnl.tolist()],
            "quantity": [e4_decimal(v) for v in loaded.inputs.quantity.tolist()],
            "delta": [None if not np.isfinite(d) else float(d) for d in result.delta.tolist()],
            "flags": [",".join(compute.flag_names(int(f))) for f in result.flags.tolist()],
        }
        await session.execute(sa.text(_UPSERT_VALUATION), params)
        await session.execute(sa.text(_UPDATE_CURRENT), {"t": as_of, "pid": portfolio_id})
    await session.execute(sa.text(_UPDATE_PORTFOLIO), {"t": as_of, "pid": portfolio_id})


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
