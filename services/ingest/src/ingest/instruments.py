"""Instrument identity: OCC option symbols and derived position types (csv-format.md §4-§5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

OCC_RE = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


@dataclass(frozen=True)
class OptionContract:
    """The fields an OCC symbol encodes."""

    underlying: str
    expiration_date: date
    option_type: str  # "C" | "P"
    strike_price: Decimal


def parse_occ(symbol: str) -> OptionContract | None:
    """`AAPL270820P00200000` → AAPL put, 2027-08-20, strike 200.000; None for a non-option symbol."""
    match = OCC_RE.match(symbol)
    if match is None:
        return None
    root, yy, mm, dd, cp, strike = match.groups()
    return OptionContract(root, date(2000 + int(yy), int(mm), int(dd)), cp, Decimal(strike) / 1000)


def position_type(quantity: Decimal, option_type: str | None) -> str:
    """LONG/SHORT for stocks; LC/SC/LP/SP from the call/put flag and the quantity sign."""
    long = quantity > 0
    if option_type is None:
        return "LONG" if long else "SHORT"
    if option_type == "C":
        return "LC" if long else "SC"
    return "LP" if long else "SP"
