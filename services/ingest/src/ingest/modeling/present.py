"""Wire format of sessions and trades (api.md #53-#58): money as 2-dp strings, prices 4 dp, qty signed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.formatting import iso_date, iso_datetime, money, price, qty
from ingest.modeling.book import BookedTrade, holdings_of
from ingest.modeling.metrics import local_figures, present
from ingest.modeling.store import base_from_json, trade_from_row
from ingest.modeling.valuation import ValuedBook, base_units, valued_book


def session_url(session_id: Any) -> str:
    return f"/api/v1/modeling/sessions/{session_id}"


def impacts_url(session_id: Any) -> str:
    return f"{session_url(session_id)}/impacts"


def base_book(row: dict[str, Any]) -> ValuedBook:
    """The frozen "before" book of a session row."""
    base = [base_from_json(p) for p in row["base_positions"]]
    return valued_book(holdings_of(base), base_units(base), row["base_cash_balance"])


def base_summary(row: dict[str, Any]) -> dict[str, Any]:
    """`base`: {as_of, positions, equity, market_value{…}, exposure{…}, notional} of the frozen positions."""
    figures = local_figures(base_book(row))
    return {
        "as_of": iso_date(row["base_as_of_date"]),
        "positions": len(row["base_positions"]),
        "cash_balance": money(row["base_cash_balance"]),
        **present({k: figures[k] for k in ("equity", "market_value", "exposure", "notional")}),
    }


def trade_json(row: dict[str, Any]) -> dict[str, Any]:
    """One stored trade with the net position around it."""
    trade: BookedTrade = trade_from_row(row)
    i = trade.instrument
    return {
        "trade_id": str(row["id"]),
        "seq": row["seq"],
        "ticker": i.symbol,
        "instrument_type": i.instrument_type,
        "underlying": i.underlying,
        "option": (
            None
            if not i.is_option
            else {"option_type": i.option_type, "strike_price": price(i.strike), "expiration_date": iso_date(i.expiry)}
        ),
        "side": trade.side,
        "position_id": str(trade.position_ref) if trade.position_ref else None,
        "action": trade.action,
        "quantity": qty(trade.quantity),
        "amount": money(trade.requested_amount),
        "price": price(trade.price),
        "price_source": trade.price_source,
        "trade_value": money(trade.quantity * trade.price * i.multiplier),
        "resulting_position": {
            "symbol": i.symbol,
            "quantity_before": qty(trade.quantity_before),
            "quantity_after": qty(trade.quantity_after),
            "position_type_after": trade.position_type_after,
        },
        "tags": list(trade.tags),
        "note": trade.note,
        "created_at": iso_datetime(row["created_at"]),
    }


def impacts_status(row: dict[str, Any]) -> str:
    """`ready` turns `stale` once trades changed after the calculation."""
    status: str = row["impacts_status"]
    if status == "ready" and row["impacts_trade_version"] != row["trade_version"]:
        return "stale"
    return status


def session_json(row: dict[str, Any], trade_count: int) -> dict[str, Any]:
    """ModelingSession (api.md #53)."""
    summary = session_summary(row, trade_count)
    return {**summary, "base": base_summary(row)}


def session_summary(row: dict[str, Any], trade_count: int) -> dict[str, Any]:
    """A session without its base figures (the session list)."""
    return {
        "session_id": str(row["id"]),
        "portfolio_id": str(row["portfolio_id"]),
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "base_as_of": iso_date(row["base_as_of_date"]),
        "trade_count": trade_count,
        "trade_version": row["trade_version"],
        "impacts_status": impacts_status(row),
        "impacts_url": impacts_url(row["id"]) if row["impacts"] is not None else None,
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
        "last_activity_at": iso_datetime(row["last_activity_at"]),
        "expires_at": iso_datetime(row["expires_at"]) if row["status"] == "active" else None,
        "saved_at": iso_datetime(row["saved_at"]),
    }


def positions_json(book: ValuedBook, before: dict[str, Any], trades: Sequence[BookedTrade]) -> list[dict[str, Any]]:
    """The pro-forma positions (`include=positions`): quantity before and after, valuation of the after state."""
    traded = {t.instrument.symbol for t in trades}
    out = []
    for i, unit in enumerate(book.units):
        symbol = unit.instrument.symbol
        out.append(
            {
                "symbol": symbol,
                "instrument_type": unit.instrument.instrument_type,
                "underlying": unit.instrument.underlying,
                "quantity_before": qty(before.get(symbol, 0)),
                "quantity": qty(float(book.quantity[i])),
                "traded": symbol in traded,
                "price": price(unit.price),
                "market_value": money(float(book.market_value[i])),
                "dollar_exposure": money(float(book.exposure[i])),
                "notional": money(float(book.notional[i])),
            }
        )
    return out
