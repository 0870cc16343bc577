"""OCC option symbols in compact form: ROOT (1-6) + YYMMDD + C/P + strike × 1000 in 8 digits (§4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from ingest.csv_format.text import WHITESPACE

OCC_PATTERN = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
# Six digits in a row mark a ticker as meant to be an option (stock tickers never have them).
LOOKS_LIKE_OPTION = re.compile(r"\d{6}")


@dataclass(frozen=True, slots=True)
class OccSymbol:
    """A parsed OCC option symbol (compact form)."""

    symbol: str
    root: str
    expiration_date: date
    option_type: Literal["C", "P"]
    strike_price: Decimal


def compact(text: str) -> str:
    """The symbol without spaces (padded OCC forms), upper-cased."""
    return WHITESPACE.sub("", text).upper()


def parse_occ(text: str) -> OccSymbol | str:
    """Parse an OCC option symbol (spaces removed, upper-cased); a §6 error code when it fails."""
    symbol = compact(text)
    m = OCC_PATTERN.match(symbol)
    if m is None:
        return "INVALID_OPTION_SYMBOL"
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return "INVALID_EXPIRY"
    strike_price = Decimal(int(strike)) / 1000
    if strike_price <= 0:
        return "INVALID_STRIKE"
    return OccSymbol(symbol, root, expiry, "C" if cp == "C" else "P", strike_price.quantize(Decimal("0.001")))


def expiry_digits(text: str) -> str:
    """The YYMMDD part of a well-formed symbol as written (for the INVALID_EXPIRY message)."""
    m = OCC_PATTERN.match(compact(text))
    return "".join(m.groups()[1:4]) if m else ""
