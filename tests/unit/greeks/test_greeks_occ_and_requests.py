"""OCC symbol parsing and #30 request validation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from greeks.occ import OccParseError, occ_symbol, parse_occ
from greeks.schemas import CalculateRequest


@pytest.mark.parametrize(
    "text", ["AAPL271217C00250000", "AAPL  271217C00250000", "o:aapl271217c00250000", " AAPL 271217 C 00250000 "]
)
def test_occ_symbol_spellings_parse_to_the_same_contract(text):
    c = parse_occ(text)
    assert (c.underlying, c.expiration_date, c.option_type, c.strike_price) == (
        "AAPL",
        date(2027, 12, 17),
        "C",
        Decimal("250"),
    )
    assert c.symbol == "AAPL271217C00250000"


def test_occ_strike_has_three_decimals():
    c = parse_occ("VIX270721P00017500")
    assert c.strike_price == Decimal("17.5") and c.option_type == "P"


@pytest.mark.parametrize(
    "text",
    [
        "AAPL",
        "AAPL271217X00250000",
        "AAPL271317C00250000",
        "AAPL270230C00250000",
        "271217C00250000",
        "TOOLONGX271217C00250000",
        "AAPL271217C0025000",
    ],
)
def test_malformed_occ_symbols_are_rejected(text):
    with pytest.raises(OccParseError):
        parse_occ(text)


def test_occ_symbol_is_built_from_fields():
    assert occ_symbol("spy", date(2027, 9, 17), "c", Decimal("460")) == "SPY270917C00460000"
    assert occ_symbol("X", date(2027, 1, 15), "P", 12.345) == "X270115P00012345"
    with pytest.raises(OccParseError):
        occ_symbol("X", date(2027, 1, 15), "P", 0)


def contract(**kw):
    item = {
        "underlying": "AAPL",
        "option_type": "C",
        "strike_price": 250,
        "expiration_date": "2027-12-17",
        "quantity": 10,
    }
    item.update(kw)
    return item


def test_ad_hoc_request_accepts_both_item_forms():
    req = CalculateRequest.model_validate(
        {"positions": [contract(), {"symbol": "AAPL271217P00200000", "quantity": "-3"}]}
    )
    assert req.positions and len(req.positions) == 2
    assert req.positions[1].quantity == Decimal("-3")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"positions": [contract()], "portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f"},
        {"positions": []},
        {"positions": [contract()] * 501},
        {"positions": [contract(strike_price=0)]},
        {"positions": [contract(strike_price=-5)]},
        {"positions": [{"symbol": "NOT-AN-OCC", "quantity": 1}]},
        {"positions": [{"symbol": "AAPL271217C00250000", "underlying": "AAPL", "quantity": 1}]},
        {"positions": [contract(expiration_date=None)]},
        {"positions": [contract(quantity=0)]},
        {"positions": [contract(quantity=1.5)]},
        {"positions": [contract(option_type="X")]},
        {"positions": [contract(implied_volatility=0)]},
        {"positions": [contract(unexpected=1)]},
        {"positions": [contract()], "extra": True},
    ],
)
def test_invalid_calculate_requests_are_rejected(body):
    with pytest.raises(ValidationError):
        CalculateRequest.model_validate(body)


def test_five_hundred_items_are_accepted():
    assert len(CalculateRequest.model_validate({"positions": [contract()] * 500}).positions or []) == 500
