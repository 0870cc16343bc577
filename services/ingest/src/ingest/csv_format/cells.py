"""Rules of one cell each: ticker (stock or OCC option), plain decimals, entry date (§3.1-§3.4).

Each rule maps the cell text to what it parsed plus at most one (code, message) error, with no
reference to the row, so the row pass can cache the outcome per distinct cell text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from ingest.csv_format.limits import MAX_DECIMALS
from ingest.csv_format.occ import LOOKS_LIKE_OPTION, OccSymbol, expiry_digits, parse_occ
from ingest.csv_format.text import clip

CellError = tuple[str, str]  # (code, message)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_STOCK = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.-][A-Z0-9]{1,2})?$")


@dataclass(frozen=True, slots=True)
class TickerCell:
    symbol: str | None
    occ: OccSymbol | None
    error: CellError | None


def check_ticker(cell: str, upload_date: date) -> TickerCell:
    """A stock ticker (class separator `.` stored as `-`) or an OCC symbol not expired at the upload date."""
    upper = cell.upper()
    if LOOKS_LIKE_OPTION.search(upper):
        parsed = parse_occ(upper)
        if isinstance(parsed, str):
            if parsed == "INVALID_EXPIRY":
                return TickerCell(None, None, (parsed, f"option expiry '{expiry_digits(upper)}' is not a real date"))
            if parsed == "INVALID_STRIKE":
                return TickerCell(None, None, (parsed, "option strike must be greater than zero"))
            message = f"'{clip(cell)}' is not a valid OCC option symbol (ROOT + YYMMDD + C/P + 8-digit strike)"
            return TickerCell(None, None, (parsed, message))
        if parsed.expiration_date < upload_date:
            # Well-formed but expired: the contract is still parsed so cross rules can compare.
            message = f"option expired on {parsed.expiration_date.isoformat()}"
            return TickerCell(parsed.symbol, parsed, ("OPTION_EXPIRED", message))
        return TickerCell(parsed.symbol, parsed, None)
    if _STOCK.match(upper) is None:
        return TickerCell(None, None, ("INVALID_TICKER", f"'{clip(cell)}' is not a valid stock ticker"))
    return TickerCell(upper.replace(".", "-"), None, None)


def parse_number(cell: str) -> Decimal | str:
    """A plain decimal, or the code of the first failing format rule (INVALID_NUMBER, PRECISION)."""
    if _NUMBER.match(cell) is None:
        return "INVALID_NUMBER"
    _, _, frac = cell.partition(".")
    # Trailing zeros carry no precision ("1.50000" is 1.5), so only significant decimals count.
    if len(frac.rstrip("0")) > MAX_DECIMALS:
        return "PRECISION"
    try:
        return Decimal(cell)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return "INVALID_NUMBER"


def number_message(code: str, cell: str) -> str:
    """The message of a `parse_number` failure code."""
    if code == "PRECISION":
        return f"'{clip(cell)}' has more than {MAX_DECIMALS} decimal places"
    return f"'{clip(cell)}' is not a plain decimal number"


@dataclass(frozen=True, slots=True)
class DateCell:
    value: date | None
    error: CellError | None


def five_years_before(day: date) -> date:
    """Same calendar day five years earlier; 29 February maps to 28 February."""
    try:
        return day.replace(year=day.year - 5)
    except ValueError:
        return date(day.year - 5, 2, 28)


def check_date(cell: str, upload_date: date, min_date: date) -> DateCell:
    """A real YYYY-MM-DD date within [min_date, upload_date]; out-of-window dates keep their value."""
    m = _DATE.match(cell)
    parsed: date | None = None
    if m is not None:
        try:
            parsed = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            parsed = None
    if parsed is None:
        return DateCell(None, ("INVALID_DATE", f"'{clip(cell)}' is not a date in YYYY-MM-DD format"))
    if parsed > upload_date:
        return DateCell(
            parsed, ("FUTURE_DATE", f"entry_date {cell} is after the upload date {upload_date.isoformat()}")
        )
    if parsed < min_date:
        return DateCell(
            parsed,
            (
                "DATE_TOO_OLD",
                f"entry_date {cell} is more than 5 years before the upload date "
                f"(earliest allowed {min_date.isoformat()})",
            ),
        )
    return DateCell(parsed, None)


def position_type(instrument_type: str, option_type: str | None, quantity: Decimal) -> str:
    """Derived position type (csv-format.md §5; calculations.md §0.2)."""
    long = quantity > 0
    if instrument_type == "stock":
        return "LONG" if long else "SHORT"
    if option_type == "C":
        return "LC" if long else "SC"
    return "LP" if long else "SP"
