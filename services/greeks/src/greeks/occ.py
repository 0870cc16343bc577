"""OCC option symbols (calculations.md §0.2): `ROOT YYMMDD C|P STRIKE×1000`.

Accepted spellings: compact (`AAPL271217C00250000`), OSI with the root padded to six characters
(`AAPL  271217C00250000`), and an optional leading `O:` (vendor prefix). Strikes have 8 digits,
the integer part of strike × 1000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

_OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.\-]{0,5})(?P<date>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")


class OccParseError(ValueError):
    """The text is not an OCC option symbol."""


@dataclass(frozen=True)
class OccContract:
    """A parsed option contract."""

    underlying: str
    expiration_date: date
    option_type: str  # "C" or "P"
    strike_price: Decimal

    @property
    def symbol(self) -> str:
        """Compact OCC symbol (the storage form of data-model.md §4.2)."""
        return occ_symbol(self.underlying, self.expiration_date, self.option_type, self.strike_price)


def parse_occ(text: str) -> OccContract:
    """Parse an OCC symbol; OccParseError when it is malformed or names an impossible date."""
    raw = text.strip().upper()
    if raw.startswith("O:"):
        raw = raw[2:]
    compact = raw.replace(" ", "")
    match = _OCC_RE.match(compact)
    if match is None:
        raise OccParseError(f"not an OCC option symbol: {text!r}")
    yymmdd = match["date"]
    try:
        expiry = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError as exc:
        raise OccParseError(f"invalid expiration date in {text!r}") from exc
    strike = Decimal(int(match["strike"])) / Decimal(1000)
    return OccContract(match["root"], expiry, match["cp"], strike)


def occ_symbol(underlying: str, expiration_date: date, option_type: str, strike_price: Decimal | float | int) -> str:
    """Compact OCC symbol for a contract (`AAPL` 2027-12-17 C 250 → `AAPL271217C00250000`)."""
    milli = int((Decimal(str(strike_price)) * 1000).to_integral_value())
    if not 0 < milli < 100_000_000:
        raise OccParseError(f"strike {strike_price} cannot be written in an OCC symbol")
    if not 2000 <= expiration_date.year <= 2099:
        raise OccParseError(f"expiration year {expiration_date.year} cannot be written in an OCC symbol")
    return f"{underlying.upper()}{expiration_date:%y%m%d}{option_type.upper()}{milli:08d}"
