"""The #63 preview body's parts: one position in the shape of api.md §3.1 (plus `priced_with` and
`issues`), their sort, the collection-step block and the money-formatted totals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.formatting import iso_date, iso_datetime, money, price, qty, stat
from ingest.models_upload import COLLECTION_STEPS
from ingest.onboarding.model import Holding, MarketData
from ingest.onboarding.preview import PreviewValues

SORTABLE = (
    "symbol",
    "market_value",
    "dollar_exposure",
    "notional",
    "unrealized_pnl",
    "unrealized_pnl_pct",
    "daily_pnl",
    "weight",
    "entry_date",
    "expiration_date",
)
# Rendered as decimal strings: sorted by their numeric value, not as text.
_MONEY_FIELDS = ("market_value", "dollar_exposure", "notional", "unrealized_pnl", "daily_pnl")


def position_row(row: dict[str, Any], h: Holding, market: MarketData, v: PreviewValues, i: int) -> dict[str, Any]:
    """Holding `i` (`row`: its stored position) valued by `v`; Greeks and daily P&L wait for the first run."""
    own = market.resolve(h.symbol)
    und = market.resolve(h.underlying_symbol)
    is_option = h.instrument_type == "option"
    days = (h.expiration_date - market.reference_date).days if h.expiration_date is not None else None
    return {
        "id": str(row["id"]),
        "portfolio_id": str(row["portfolio_id"]),
        "symbol": h.symbol,
        "instrument_type": h.instrument_type,
        "security_type": "option" if is_option else (own.security_type if own else None),
        "position_type": h.position_type,
        "quantity": qty(h.quantity),
        "multiplier": h.multiplier,
        "underlying_symbol": h.underlying_symbol,
        "option": (
            {
                "option_type": h.option_type,
                "strike_price": price(h.strike_price),
                "expiration_date": iso_date(h.expiration_date),
                "days_to_expiry": days,
            }
            if is_option
            else None
        ),
        "entry_price": price(h.entry_price),
        "entry_date": iso_date(h.entry_date),
        "cost_basis": money(v.cost_basis[i]),
        "last_price": price(v.last_price[i]),
        "price_date": iso_date(v.price_date[i]),
        "price_source": v.price_source[i],
        "priced_with": v.priced_with[i],
        "underlying_price": price(v.underlying_price[i]),
        "market_value": money(v.market_value[i]),
        "dollar_exposure": money(v.dollar_exposure[i]),
        "notional": money(v.notional[i]),
        "unrealized_pnl": money(v.unrealized_pnl[i]),
        "unrealized_pnl_pct": stat(v.unrealized_pnl_pct[i]),
        "daily_pnl": None,
        "weight": stat(v.weight[i]),
        "name": (own.name if own and not is_option else (und.name if und else None)),
        "sector": und.sector if und else None,
        "industry": und.industry if und else None,
        "tags": row["tags"],
        "greeks": None,
        "status": row["status"],
        "realized_pnl": money(row["realized_pnl"]),
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
        "issues": v.issues[i],
    }


def sort_positions(positions: list[dict[str, Any]], spec: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort (None last), `id` as the final tiebreaker (api.md §2.8)."""
    out = sorted(positions, key=lambda p: p["id"])
    for field, desc in reversed(spec):
        present = [p for p in out if _sort_key(p, field) is not None]
        missing = [p for p in out if _sort_key(p, field) is None]
        present.sort(key=lambda p, f=field: _sort_key(p, f), reverse=desc)  # type: ignore[misc]
        out = present + missing
    return out


def _sort_key(p: dict[str, Any], field: str) -> Any:
    if field == "expiration_date":
        return (p.get("option") or {}).get("expiration_date")
    value = p.get(field)
    if value is None:
        return None
    if field in _MONEY_FIELDS:
        return Decimal(value)
    return value


def collection_block(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The data-collection steps in their fixed order (the other onboarding steps left out)."""
    order = {s: i for i, s in enumerate(COLLECTION_STEPS)}
    return sorted(
        (
            {
                "step": s["step"],
                "status": s["status"],
                "attempts": int(s["attempts"]),
                "last_error": s["last_error"],
            }
            for s in steps
            if s["step"] in order
        ),
        key=lambda s: order[str(s["step"])],
    )


def totals_block(totals: dict[str, Any]) -> dict[str, Any]:
    """`totals` of #63 with money as decimal strings."""
    return {
        "positions": totals["positions"],
        "by_type": totals["by_type"],
        "market_value": {k: money(v) for k, v in totals["market_value"].items()},
        "cost_basis": money(totals["cost_basis"]),
        "priced_with_entry": totals["priced_with_entry"],
    }
