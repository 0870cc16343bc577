"""Trade lines of a broker export (api.md #69): normalisation of a request's trades and the netting
of a modelling session's trades per symbol. Pure: no I/O, no clock.

Sides and their FIX meaning: BUY opens/extends a long (OpenClose O), SELL reduces a long (C),
SELL_SHORT opens/extends a short (O), BUY_TO_COVER reduces a short (C). Quantities are positive
shares or contracts; the direction is the side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from greeks.occ import OccContract, OccParseError, parse_occ

SIDES = ("BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER")
OPENING = {"BUY", "SELL_SHORT"}
BUYING = {"BUY", "BUY_TO_COVER"}
OPTION_MULTIPLIER = 100


@dataclass(frozen=True)
class TradeLine:
    """One normalised order line."""

    side: str
    symbol: str  # stock ticker, or the compact OCC symbol of an option
    quantity: Decimal
    order_type: str = "MARKET"
    limit_price: Decimal | None = None
    time_in_force: str = "DAY"
    account: str | None = None
    contract: OccContract | None = None
    # Price the line was modelled at (session trades) or priced at for an upload file; not an order price.
    reference_price: Decimal | None = None
    trade_date: date | None = None
    tags: tuple[str, ...] = ()
    # Options say opening/closing explicitly (a written call is SELL + open); None = implied by the side.
    opening: bool | None = None

    @property
    def is_option(self) -> bool:
        return self.contract is not None

    @property
    def underlying(self) -> str:
        return self.contract.underlying if self.contract is not None else self.symbol

    @property
    def security_type(self) -> str:
        """FIX SecurityType (167): CS common stock, OPT option."""
        return "OPT" if self.is_option else "CS"

    @property
    def open_close(self) -> str:
        opening = self.side in OPENING if self.opening is None else self.opening
        return "O" if opening else "C"

    @property
    def signed_quantity(self) -> Decimal:
        """Positive for buys, negative for sells (the position change)."""
        return self.quantity if self.side in BUYING else -self.quantity


class TradeProblem(ValueError):
    """A trade that cannot be exported; `field` names the offending request field."""

    def __init__(self, field: str, issue: str, value: Any) -> None:
        super().__init__(issue)
        self.field = field
        self.issue = issue
        self.value = value


def option_contract(symbol: str) -> OccContract | None:
    """The contract of an OCC symbol; None for a stock ticker (no run of 6 digits)."""
    if sum(ch.isdigit() for ch in symbol) < 6:
        return None
    try:
        return parse_occ(symbol)
    except OccParseError as exc:
        raise TradeProblem("symbol", str(exc), symbol) from exc


def normalise(raw: dict[str, Any], *, field: str, account: str | None) -> TradeLine:
    """A request trade (already schema-validated) as a TradeLine; TradeProblem on a bad combination."""
    symbol = str(raw["symbol"]).strip().upper().replace(".", "-")
    contract = option_contract(symbol)
    quantity = Decimal(str(raw["quantity"]))
    if contract is not None and quantity != quantity.to_integral_value():
        raise TradeProblem(f"{field}.quantity", "option quantities are whole contracts", str(raw["quantity"]))
    order_type = raw.get("order_type", "MARKET")
    limit = raw.get("limit_price")
    if order_type == "LIMIT" and limit is None:
        raise TradeProblem(f"{field}.limit_price", "required for a LIMIT order", None)
    if order_type == "MARKET" and limit is not None:
        raise TradeProblem(f"{field}.limit_price", "only a LIMIT order has a limit price", str(limit))
    return TradeLine(
        side=raw["side"],
        symbol=contract.symbol if contract is not None else symbol,
        quantity=quantity,
        order_type=order_type,
        limit_price=None if limit is None else Decimal(str(limit)),
        time_in_force=raw.get("time_in_force", "DAY"),
        account=account,
        contract=contract,
    )


@dataclass(frozen=True)
class SessionTrade:
    """A row of ingest.api_modeling_trade."""

    trade_no: int
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal | None
    trade_date: date
    tag: str | None = None
    open_close: str | None = None  # ingest.api_modeling_trade: options state it, their side is BUY or SELL

    @property
    def position_side(self) -> str:
        """The side in position terms: an option opened with SELL is SELL_SHORT, closed with BUY is
        BUY_TO_COVER (stocks already say so)."""
        if self.open_close == "O" and self.side == "SELL":
            return "SELL_SHORT"
        if self.open_close == "C" and self.side == "BUY":
            return "BUY_TO_COVER"
        return self.side


def _weighted_price(trades: Sequence[SessionTrade]) -> Decimal | None:
    """Quantity-weighted average modelled price of `trades` (None when any price is missing)."""
    total = sum((t.quantity for t in trades), Decimal(0))
    if not trades or total == 0 or any(t.price is None for t in trades):
        return None
    value = sum((t.quantity * t.price for t in trades if t.price is not None), Decimal(0))
    return (value / total).quantize(Decimal("0.0001"))


def net_session_trades(trades: Sequence[SessionTrade], *, account: str | None) -> list[TradeLine]:
    """The session's trades netted per symbol (api.md #69), in order of each symbol's first trade.

    Per symbol, net = Σ buys − Σ sells. A positive net first covers what the session's covers did not
    give back to new shorts (BUY_TO_COVER min(net, max(covered − shorted, 0))), the rest is a BUY; a
    negative net first sells what the sells did not buy back (SELL min(|net|, max(sold − bought, 0))),
    the rest is a SELL_SHORT. So a session that covers 300 NFLX exports BUY_TO_COVER 300 NFLX, one that
    shorts 595 QQQ exports SELL_SHORT 595 QQQ, and a cover-and-reverse exports two lines.
    """
    by_symbol: dict[str, list[SessionTrade]] = {}
    for trade in sorted(trades, key=lambda t: t.trade_no):
        by_symbol.setdefault(trade.symbol.upper(), []).append(replace(trade, side=trade.position_side))
    lines: list[TradeLine] = []
    for symbol, group in by_symbol.items():
        qty = {side: sum((t.quantity for t in group if t.side == side), Decimal(0)) for side in SIDES}
        net = qty["BUY"] + qty["BUY_TO_COVER"] - qty["SELL"] - qty["SELL_SHORT"]
        if net > 0:
            closing = min(net, max(qty["BUY_TO_COVER"] - qty["SELL_SHORT"], Decimal(0)))
            parts = (("BUY_TO_COVER", closing), ("BUY", net - closing))
        elif net < 0:
            closing = min(-net, max(qty["SELL"] - qty["BUY"], Decimal(0)))
            parts = (("SELL", closing), ("SELL_SHORT", -net - closing))
        else:
            continue
        contract = option_contract(symbol)
        direction = BUYING if net > 0 else {"SELL", "SELL_SHORT"}
        same_way = [t for t in group if t.side in direction]
        base = TradeLine(
            side="BUY",
            symbol=contract.symbol if contract is not None else symbol,
            quantity=Decimal(0),
            account=account,
            contract=contract,
            reference_price=_weighted_price(same_way),
            trade_date=max(t.trade_date for t in group),
            tags=tuple(dict.fromkeys(t.tag for t in same_way if t.tag)),
        )
        lines += [_as_order(replace(base, side=side, quantity=q)) for side, q in parts if q > 0]
    return lines


def _as_order(line: TradeLine) -> TradeLine:
    """An option line in order-ticket terms: writing is SELL + open, buying back is BUY + close."""
    if line.contract is None or line.side in ("BUY", "SELL"):
        return line
    return replace(line, side="SELL" if line.side == "SELL_SHORT" else "BUY", opening=line.side == "SELL_SHORT")
