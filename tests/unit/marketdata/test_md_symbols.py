"""Canonical symbols and compact OCC parsing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata.symbols import canonical_symbol, is_valid_symbol, parse_occ


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("BRK.B", "BRK-B"),
        ("brk/b", "BRK-B"),
        ("brk-b", "BRK-B"),
        ("  aapl ", "AAPL"),
        ("^VIX", "VIX"),
        ("AAPL  270820P00200000", "AAPL270820P00200000"),
        ("spy270917c00460000", "SPY270917C00460000"),
    ],
)
def test_canonical_form_is_uppercase_with_dash_class_separator(raw: str, canonical: str) -> None:
    assert canonical_symbol(raw) == canonical
    assert is_valid_symbol(canonical)


def test_occ_symbols_parse_into_contract_terms() -> None:
    terms = parse_occ("AAPL270820P00200000")
    assert terms is not None
    assert (terms.underlying, terms.expiration, terms.option_type, terms.strike) == (
        "AAPL",
        date(2027, 8, 20),
        "P",
        Decimal("200"),
    )
    vix = parse_occ("VIX270721C00025000")
    assert vix is not None and vix.strike == Decimal("25") and vix.expiration == date(2027, 7, 21)
    assert parse_occ("SPY271317C00460000") is None  # month 13
    assert parse_occ("SPY270917C00000000") is None  # zero strike
    assert parse_occ("AAPL") is None


@pytest.mark.parametrize("bad", ["", "1ABC", "TOO-LONG-CLASS", "AB CD", "A" * 22, "$$$"])
def test_malformed_symbols_are_invalid(bad: str) -> None:
    assert not is_valid_symbol(canonical_symbol(bad))
