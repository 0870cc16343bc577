"""Input assembly (stale prices, curve, dividends, overrides) and storage records, without I/O."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from uuid import uuid4

import numpy as np
import pytest

from greeks.inputs import Contract, MarketInputs, build_batch, evaluate_contracts

T0 = date(2026, 11, 24)


def market(**kw) -> MarketInputs:
    m = MarketInputs(as_of=T0)
    m.spot = {"XYZ": (100.0, T0), "OLD": (50.0, date(2026, 11, 20))}
    m.dividend_yield = {"XYZ": 0.02}
    m.historical_vol = {"XYZ": 0.25, "OLD": 0.3}
    m.tenors, m.yields = np.array([1 / 12]), np.array([math.expm1(0.05)])
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def c(**kw) -> Contract:
    base = dict(
        symbol="XYZ261224C00105000",
        underlying="XYZ",
        option_type="C",
        strike=Decimal("105"),
        expiration_date=date(2026, 12, 24),
        quantity=Decimal("-5"),
        position_id=uuid4(),
        portfolio_id=uuid4(),
    )
    base.update(kw)
    return Contract(**base)


def test_stored_inputs_reproduce_example_2_short_calls():
    (rec,) = evaluate_contracts([c()], market())
    assert rec["status"] == "ok"
    assert rec["iv_source"] == "historical"
    assert rec["risk_free_rate"] == pytest.approx(0.05, rel=1e-12)
    assert rec["dividend_yield"] == 0.02
    assert rec["delta"] == pytest.approx(-135.161, rel=1e-4)
    assert rec["dollar_delta"] == Decimal("-13516.10")
    assert rec["dollar_gamma_1pct"] == Decimal("-2306.11")
    assert rec["theta"] == pytest.approx(20.7766, rel=1e-4)
    assert rec["underlying_price"] == Decimal("100.0000")
    assert rec["flags"] == []


def test_stale_underlying_and_unknown_dividend_are_flagged():
    (rec,) = evaluate_contracts([c(symbol="OLD261224C00050000", underlying="OLD", strike=Decimal("50"))], market())
    assert rec["status"] == "ok"
    assert rec["underlying_price_date"] == date(2026, 11, 20)
    assert set(rec["flags"]) == {"underlying_price_stale", "dividend_unknown"}
    assert rec["dividend_yield"] == 0.0


def test_missing_curve_defaults_the_rate_and_flags_it():
    (rec,) = evaluate_contracts([c()], market(tenors=np.empty(0), yields=np.empty(0)))
    assert rec["risk_free_rate"] == 0.04
    assert "rate_default" in rec["flags"]


def test_missing_underlying_gives_null_greeks_and_reason():
    (rec,) = evaluate_contracts([c(underlying="NOPE")], market())
    assert rec["status"] == "missing_inputs"
    assert rec["reason"] == "underlying_price_missing"
    assert all(rec[g] is None for g in ("delta", "gamma", "theta", "vega", "rho", "dollar_delta"))
    assert rec["implied_volatility"] is None and rec["iv_source"] is None


def test_overrides_replace_market_inputs():
    batch, dates = build_batch(
        [
            c(
                underlying="NOPE",
                underlying_price=100.0,
                implied_volatility=0.25,
                risk_free_rate=0.05,
                dividend_yield=0.02,
            )
        ],
        market(tenors=np.empty(0), yields=np.empty(0)),
    )
    assert batch.spot[0] == 100.0 and batch.rate[0] == 0.05 and batch.dividend_yield[0] == 0.02
    assert batch.sigma_override[0] == 0.25
    assert batch.flags[0] == 0
    assert dates == [T0]


def test_position_without_option_type_is_an_input_error():
    (rec,) = evaluate_contracts([c(option_type=None)], market())
    assert rec["status"] == "error"
    assert rec["reason"] == "invalid_input"
    assert rec["delta"] is None


def test_market_price_gives_market_iv_and_vendor_iv_is_next():
    m = market()
    m.option_close = {"XYZ261224C00105000": 1.1443563592014}
    m.vendor_iv = {"XYZ261224C00105000": 0.4}
    (rec,) = evaluate_contracts([c()], m)
    assert rec["iv_source"] == "market"
    assert rec["implied_volatility"] == pytest.approx(0.25, abs=1e-7)
    m.option_close = {"XYZ261224C00105000": 150.0}  # above the call bound S·e^{-qT}: no solve
    (rec,) = evaluate_contracts([c()], m)
    assert rec["iv_source"] == "vendor" and rec["implied_volatility"] == 0.4
    assert "iv_market_solve_failed" in rec["flags"]
