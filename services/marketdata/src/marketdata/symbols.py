"""Symbol canonicalisation and compact OCC option parsing (pure).

Canonical form (data-model.md §5.1): uppercase; share-class separator `-` (`BRK.B`, `BRK/B`,
`brk-b` → `BRK-B`); a leading `^` of index quotes dropped (`^VIX` → `VIX`); options in compact,
unpadded OCC form `ROOT YYMMDD C|P STRIKE×1000` (padded OCC with spaces is compacted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

OCC_RE = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
TICKER_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}(-[A-Z0-9]{1,4})?$")
MAX_SYMBOL_LENGTH = 21


@dataclass(frozen=True)
class OptionTerms:
    """The contract terms encoded in a compact OCC symbol."""

    symbol: str
    underlying: str
    expiration: date
    option_type: str  # 'C' | 'P'
    strike: Decimal


def parse_occ(symbol: str) -> OptionTerms | None:
    """Terms of a compact OCC symbol (`AAPL270820P00200000`), or None if it is not one."""
    match = OCC_RE.match(symbol)
    if match is None:
        return None
    root, yy, mm, dd, kind, strike = match.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return None
    value = Decimal(int(strike)) / Decimal(1000)
    if value <= 0:
        return None
    return OptionTerms(symbol=symbol, underlying=root, expiration=expiry, option_type=kind, strike=value)


def canonical_symbol(raw: str) -> str:
    """Canonical spelling of a user- or provider-supplied symbol (no validation beyond shape)."""
    text = raw.strip().upper()
    if not text:
        return text
    compact = text.replace(" ", "")
    if compact != text and OCC_RE.match(compact):
        return compact
    if OCC_RE.match(text):
        return text
    if text.startswith("^"):
        text = text[1:]
    return re.sub(r"[./]", "-", text)


def is_valid_symbol(symbol: str) -> bool:
    """True for a canonical ticker or compact OCC symbol."""
    if not symbol or len(symbol) > MAX_SYMBOL_LENGTH:
        return False
    return bool(TICKER_RE.match(symbol)) or parse_occ(symbol) is not None
