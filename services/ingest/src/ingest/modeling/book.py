"""The session book: base positions netted per symbol, hypothetical trades applied in order (pure, exact Decimal).

A session holds one net quantity per symbol (several lots of a symbol in the portfolio are netted).
Trade sides follow api.md #55: `buy` opens or adds to a long, `short` opens or adds to a short,
`sell` only reduces a long (more than held → OVERSELL) and `cover` only reduces a short (more than
short → OVERCOVER). A trade on a base position (`position_id` + `action`) becomes the side that
acts in that position's direction: reduce/close → sell or cover, increase → buy or short.
Quantities are shares or contracts (> 0); a dollar `amount` is sized to whole units rounded down:
quantity = floor(amount / (price × multiplier)).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from uuid import UUID

from common.errors import ValidationFailed
from ingest.instruments import position_type

ZERO = Decimal(0)
OPENING_SIDES = ("buy", "short")


@dataclass(frozen=True)
class Instrument:
    """What is traded: a stock/ETF/fund, or an option contract on `underlying`."""

    symbol: str
    instrument_type: str  # stock | option
    underlying: str
    multiplier: int = 1
    option_type: str | None = None  # C | P
    strike: Decimal | None = None
    expiry: date | None = None

    @property
    def is_option(self) -> bool:
        return self.instrument_type == "option"


@dataclass(frozen=True)
class BasePosition:
    """One open position frozen at session creation, with its valuation of the base date."""

    id: UUID
    instrument: Instrument
    quantity: Decimal
    last_price: Decimal | None
    price_source: str | None
    underlying_price: Decimal | None
    market_value: Decimal | None
    dollar_exposure: Decimal | None
    notional: Decimal | None


@dataclass(frozen=True)
class TradeIntent:
    """A validated request item, priced, not yet applied. `field` locates it in the request for errors."""

    field: str
    instrument: Instrument
    price: Decimal
    price_source: str
    side: str | None = None
    action: str | None = None
    position_ref: UUID | None = None
    quantity: Decimal | None = None
    amount: Decimal | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class BookedTrade:
    """A trade as applied to the book: its side, size and the net position around it."""

    instrument: Instrument
    side: str
    quantity: Decimal
    price: Decimal
    price_source: str
    quantity_before: Decimal
    quantity_after: Decimal
    action: str | None = None
    position_ref: UUID | None = None
    requested_amount: Decimal | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None

    @property
    def position_type_after(self) -> str | None:
        """LONG/SHORT/LC/SC/LP/SP of the net position after the trade; None when flat."""
        if self.quantity_after == 0:
            return None
        return position_type(self.quantity_after, self.instrument.option_type)

    @property
    def signed_quantity(self) -> Decimal:
        """The change of the net position (+ buys and covers, − sells and shorts)."""
        return self.quantity_after - self.quantity_before


def units_for_amount(amount: Decimal, price: Decimal, multiplier: int) -> Decimal:
    """Whole shares or contracts an `amount` of |market value| buys, rounded down: ⌊amount / (price·m)⌋."""
    return (amount / (price * multiplier)).to_integral_value(rounding=ROUND_FLOOR)


def holdings_of(base: Iterable[BasePosition]) -> dict[str, Decimal]:
    """Net quantity per symbol of the base positions."""
    out: dict[str, Decimal] = {}
    for p in base:
        out[p.instrument.symbol] = out.get(p.instrument.symbol, ZERO) + p.quantity
    return out


def _fail(field: str, issue: str, value: Any, code: str = "VALIDATION_ERROR") -> ValidationFailed:
    return ValidationFailed.field(field, issue, value, code=code, message=f"Trade rejected: {issue}")


def _side_for_action(action: str, net: Decimal, lot: Decimal) -> str:
    long = net > 0 or (net == 0 and lot > 0)
    if action == "increase":
        return "buy" if long else "short"
    return "sell" if long else "cover"


def _size(intent: TradeIntent, side: str, net: Decimal) -> Decimal:
    if intent.action == "close":
        if net == 0:
            raise _fail(f"{intent.field}.position_id", "the position is already closed in this session", None)
        return abs(net)
    if intent.quantity is not None:
        quantity = intent.quantity
    else:
        assert intent.amount is not None
        quantity = units_for_amount(intent.amount, intent.price, intent.instrument.multiplier)
        if quantity <= 0:
            unit = "contract" if intent.instrument.is_option else "share"
            issue = f"buys less than one {unit} at {intent.price} (× {intent.instrument.multiplier})"
            raise _fail(f"{intent.field}.amount", issue, str(intent.amount))
    if intent.instrument.is_option and quantity != quantity.to_integral_value():
        raise _fail(f"{intent.field}.quantity", "options are traded in whole contracts", str(quantity))
    return quantity


def _n(value: Decimal) -> str:
    """A quantity for messages: `1510`, not `1510.0000`."""
    return f"{value.normalize():f}" if value else "0"


def _check_direction(intent: TradeIntent, side: str, net: Decimal, quantity: Decimal) -> None:
    field, symbol = intent.field, intent.instrument.symbol
    if side == "buy" and net < 0:
        raise _fail(f"{field}.side", f"{symbol} is held short in this session; use cover to reduce it", side)
    if side == "short" and net > 0:
        raise _fail(f"{field}.side", f"{symbol} is held long in this session; use sell to reduce it", side)
    if side == "sell" and quantity > max(net, ZERO):
        issue = f"sells {_n(quantity)} {symbol} but the session holds {_n(max(net, ZERO))} long"
        raise _fail(f"{field}.quantity", issue, _n(quantity), code="OVERSELL")
    if side == "cover" and quantity > max(-net, ZERO):
        issue = f"covers {_n(quantity)} {symbol} but the session is short {_n(max(-net, ZERO))}"
        raise _fail(f"{field}.quantity", issue, _n(quantity), code="OVERCOVER")


def book_trade(intent: TradeIntent, net: Decimal, lot: Decimal = ZERO) -> BookedTrade:
    """Apply one intent to a net position `net` (`lot`: the base lot's quantity for position trades)."""
    side = intent.side if intent.action is None else _side_for_action(intent.action, net, lot)
    assert side is not None
    quantity = _size(intent, side, net)
    _check_direction(intent, side, net, quantity)
    after = net + quantity if side in ("buy", "cover") else net - quantity
    return BookedTrade(
        instrument=intent.instrument,
        side=side,
        quantity=quantity,
        price=intent.price,
        price_source=intent.price_source,
        quantity_before=net,
        quantity_after=after,
        action=intent.action,
        position_ref=intent.position_ref,
        requested_amount=intent.amount if intent.quantity is None and intent.action != "close" else None,
        tags=intent.tags,
        note=intent.note,
    )


def apply_trades(
    holdings: Mapping[str, Decimal], lots: Mapping[UUID, Decimal], intents: Sequence[TradeIntent]
) -> tuple[list[BookedTrade], dict[str, Decimal]]:
    """Book `intents` in order on top of `holdings` (all or nothing: the first bad one raises)."""
    book = dict(holdings)
    booked: list[BookedTrade] = []
    for intent in intents:
        symbol = intent.instrument.symbol
        lot = lots.get(intent.position_ref, ZERO) if intent.position_ref is not None else ZERO
        trade = book_trade(intent, book.get(symbol, ZERO), lot)
        book[symbol] = trade.quantity_after
        booked.append(trade)
    return booked, book


def replay(
    holdings: Mapping[str, Decimal], lots: Mapping[UUID, Decimal], trades: Sequence[BookedTrade]
) -> tuple[list[BookedTrade], dict[str, Decimal]]:
    """Re-book stored trades (e.g. after one was removed): sizes are kept, a `close` closes what is left."""
    intents = [
        TradeIntent(
            field=f"trades.{i}",
            instrument=t.instrument,
            price=t.price,
            price_source=t.price_source,
            side=t.side if t.action is None else None,
            action=t.action,
            position_ref=t.position_ref,
            quantity=None if t.action == "close" else t.quantity,
        )
        for i, t in enumerate(trades)
    ]
    booked, book = apply_trades(holdings, lots, intents)
    # Keep what was recorded about each request (its dollar amount, tags, note).
    kept = [
        replace(new, requested_amount=old.requested_amount, tags=old.tags, note=old.note)
        for new, old in zip(booked, trades, strict=True)
    ]
    return kept, book


def trade_summary(trade: BookedTrade) -> str:
    """One line of the changes summary: `SHORT 595 QQQ @ 420.00`, or `COVER 300 NFLX` for a base position."""
    quantity = f"{trade.quantity.normalize():f}"
    text = f"{trade.side.upper()} {quantity} {trade.instrument.symbol}"
    if trade.position_ref is None:
        text += f" @ {trade.price.quantize(Decimal('0.01')):f}"
    return text


def cash_after(cash: Decimal, trades: Iterable[BookedTrade]) -> Decimal:
    """Cash after the trades at their prices: buys and covers pay, sells and shorts receive (short-sale
    proceeds are cash, calculations.md §2.1), so a trade at the market price leaves equity unchanged."""
    return cash - sum((t.signed_quantity * t.instrument.multiplier * t.price for t in trades), ZERO)
