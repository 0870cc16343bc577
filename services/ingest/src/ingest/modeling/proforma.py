"""The "before" and "after" books of a session (pure): base positions, trades, and the units that value them.

before = the base positions and cash frozen at creation; after = before + every trade, with cash
moved by each trade at its price (calculations.md §2.1: cash includes short-sale proceeds). A symbol
new to the session is valued at market: its latest close, else (options) the model price, else the
price of its first trade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ingest.modeling.book import BasePosition, BookedTrade, Instrument, cash_after, holdings_of
from ingest.modeling.valuation import (
    OptionInputs,
    Unit,
    ValuedBook,
    base_units,
    option_unit,
    stock_unit,
    valued_book,
    with_option_inputs,
)


@dataclass(frozen=True)
class SessionBook:
    """A session's base and trades."""

    base: Sequence[BasePosition]
    trades: Sequence[BookedTrade]
    cash: Decimal

    def holdings_before(self) -> dict[str, Decimal]:
        return holdings_of(self.base)

    def holdings_after(self, extra: Sequence[BookedTrade] = ()) -> dict[str, Decimal]:
        out = self.holdings_before()
        for t in (*self.trades, *extra):
            out[t.instrument.symbol] = out.get(t.instrument.symbol, Decimal(0)) + t.signed_quantity
        return out

    def cash_after(self, extra: Sequence[BookedTrade] = ()) -> Decimal:
        return cash_after(self.cash, (*self.trades, *extra))

    def new_instruments(self, extra: Sequence[BookedTrade] = ()) -> dict[str, Instrument]:
        """Traded symbols the base does not hold, with the price of their first trade."""
        held = {p.instrument.symbol for p in self.base}
        out: dict[str, Instrument] = {}
        for t in (*self.trades, *extra):
            if t.instrument.symbol not in held:
                out.setdefault(t.instrument.symbol, t.instrument)
        return out

    def first_prices(self, extra: Sequence[BookedTrade] = ()) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for t in (*self.trades, *extra):
            out.setdefault(t.instrument.symbol, t.price)
        return out

    def option_symbols(self, extra: Sequence[BookedTrade] = ()) -> set[str]:
        """Every option contract of the base or the trades (they need the greeks engine)."""
        base = {p.instrument.symbol for p in self.base if p.instrument.is_option}
        return base | {t.instrument.symbol for t in (*self.trades, *extra) if t.instrument.is_option}


def _market_price(symbol: str, quotes: Mapping[str, Decimal], inputs: OptionInputs | None, first: Decimal) -> Decimal:
    if symbol in quotes:
        return quotes[symbol]
    if inputs is not None and math.isfinite(inputs.model_price) and inputs.model_price > 0:
        return Decimal(repr(inputs.model_price))
    return first


def session_units(
    book: SessionBook,
    quotes: Mapping[str, Decimal],
    options: Mapping[str, OptionInputs],
    extra: Sequence[BookedTrade] = (),
) -> dict[str, Unit]:
    """One unit per symbol of the session: base symbols from the frozen valuation (plus the engine's
    Greeks for options), new symbols at market."""
    units = {s: with_option_inputs(u, options.get(s)) for s, u in base_units(book.base).items()}
    first = book.first_prices(extra)
    for symbol, instrument in book.new_instruments(extra).items():
        inputs = options.get(symbol)
        price = _market_price(symbol, quotes, inputs, first[symbol])
        if instrument.is_option:
            units[symbol] = option_unit(instrument, price, inputs or OptionInputs(status="missing_inputs"))
        else:
            units[symbol] = stock_unit(instrument, price)
    return units


def before_after(
    book: SessionBook, units: Mapping[str, Unit], extra: Sequence[BookedTrade] = ()
) -> tuple[ValuedBook, ValuedBook]:
    """The valued before and after books (`extra`: trades to add on top, e.g. a suggested hedge)."""
    before = valued_book(book.holdings_before(), units, book.cash)
    after = valued_book(book.holdings_after(extra), units, book.cash_after(extra))
    return before, after
