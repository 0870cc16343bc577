"""How a report's numbers read in Markdown and PDF: from the document's own values, so the text shows
exactly the JSON numbers (money strings get a `$` and thousands separators, fractions become
percentages with 2 dp). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

NA = "n/a"


def usd(value: str | None) -> str:
    """`"-151234.20"` → `-$151,234.20`; None → n/a."""
    if value is None:
        return NA
    d = Decimal(value)
    return f"{'-' if d < 0 else ''}${abs(d):,.2f}"


def signed_usd(value: str | None) -> str:
    """Like `usd` with an explicit + for gains."""
    text = usd(value)
    return text if value is None or Decimal(value) < 0 else f"+{text}"


def pct(value: float | None) -> str:
    """A fraction as a percentage with 2 dp (`0.0639` → `6.39%`)."""
    return NA if value is None else f"{value * 100:.2f}%"


def num(value: float | int | None, digits: int = 4) -> str:
    """A statistic with `digits` decimals."""
    if value is None:
        return NA
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cell(value: Any) -> str:
    """A table cell: pipes escaped, None as n/a."""
    return NA if value is None else str(value).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines
