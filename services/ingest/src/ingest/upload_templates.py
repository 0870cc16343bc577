"""CSV templates of api.md #65: the five columns plus example rows that pass validation.

Pure: the rows are built for a given upload date, so entry dates are never in the future or more
than five years old and option expiries are never past (the demo contracts of demo.md §4 are
rolled forward by whole years once they come within 60 days of expiry).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from ingest.csv_format import COLUMNS

MIN_DAYS_TO_EXPIRY = 60


@dataclass(frozen=True)
class Template:
    name: str
    description: str


TEMPLATES: dict[str, Template] = {
    "basic": Template("basic", "Long stocks, ETFs and mutual funds with regular tags"),
    "options": Template(
        "options",
        "Stocks with option overlays: OCC option symbols, premiums per share, long and written contracts, "
        "a strategy tag (#strategy:)",
    ),
    "long_short": Template("long_short", "A long/short equity book: negative quantities are shorts; strategy tags"),
}


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (calendar.FRIDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def occ(root: str, expiry: date, option_type: str, strike: int) -> str:
    """Compact OCC symbol (strike in whole dollars)."""
    return f"{root}{expiry:%y%m%d}{option_type}{strike * 1000:08d}"


def monthly_expiry(today: date, month: int, first_year: int = 2027) -> date:
    """The demo expiry month (third Friday) of the first year keeping it >= 60 days away."""
    year = first_year
    while third_friday(year, month) < today + timedelta(days=MIN_DAYS_TO_EXPIRY):
        year += 1
    return third_friday(year, month)


def rows(name: str, today: date) -> list[list[str]]:
    """Example rows of template `name` for an upload on `today`."""
    d = [(today - timedelta(days=days)).isoformat() for days in (180, 120, 60, 30)]
    if name == "basic":
        return [
            ["AAPL", "85", "225.00", d[0], "Core Holdings,Tech Growth"],
            ["JNJ", "105", "160.00", d[1], "Dividend Income"],
            ["VTI", "155", "250.00", d[2], "Core Holdings"],
            ["FCNTX", "4853", "15.00", d[3], "Core Holdings"],
        ]
    if name == "options":
        aug, sep = monthly_expiry(today, 8), monthly_expiry(today, 9)
        return [
            ["TSLA", "300", "255.00", d[1], "#strategy:TSLA overwrite"],
            [occ("TSLA", aug, "C", 300), "-3", "8.00", d[1], "#strategy:TSLA overwrite"],
            [occ("SPY", sep, "C", 460), "5", "7.00", d[2], "Hedge"],
            [occ("MSFT", sep, "P", 380), "-2", "5.00", d[3], "Income"],
        ]
    if name == "long_short":
        return [
            ["NVDA", "800", "700.00", d[0], "#strategy:Long Momentum"],
            ["MSFT", "1000", "420.00", d[0], "#strategy:Long Momentum"],
            ["ROKU", "-600", "60.00", d[1], "#strategy:Short Value Traps"],
            ["PTON", "-2000", "40.00", d[1], "#strategy:Short Value Traps"],
        ]
    raise KeyError(name)


def render(name: str, today: date) -> str:
    """The CSV file (header + example rows, CRLF-free, quoted where a cell holds a comma)."""
    lines = [",".join(COLUMNS)]
    for row in rows(name, today):
        lines.append(",".join(f'"{c}"' if "," in c else c for c in row))
    return "\n".join(lines) + "\n"


def file_name(name: str) -> str:
    return f"sigmasight_{name}_template.csv"
