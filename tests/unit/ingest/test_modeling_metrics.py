"""Pro-forma valuation and the risk summary M (ingest.modeling.valuation / proforma / metrics)."""

from __future__ import annotations

import math
import uuid
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from ingest.modeling import metrics
from ingest.modeling.book import BasePosition, BookedTrade, Instrument
from ingest.modeling.proforma import SessionBook, before_after, session_units
from ingest.modeling.valuation import OptionInputs

D = Decimal
NFLX = Instrument("NFLX", "stock", "NFLX")
AAPL = Instrument("AAPL", "stock", "AAPL")
PUT = Instrument("AAPL270820P00200000", "option", "AAPL", 100, "P", D(200), date(2027, 8, 20))
QQQ = Instrument("QQQ", "stock", "QQQ")


def _base(instrument: Instrument, q: int, price: str, mv: str, e: str | None, notional: str, s: str | None = None):
    return BasePosition(
        uuid.uuid4(), instrument, D(q), D(price), "close", D(s) if s else None, D(mv), D(e) if e else None, D(notional)
    )


BASE = [
    _base(AAPL, 1500, "225", "337500.00", "337500.00", "337500.00"),
    _base(NFLX, -600, "490", "-294000.00", "-294000.00", "294000.00"),
    # A written put: premium is a negative market value, its delta-adjusted exposure is long.
    _base(PUT, -100, "4.25", "-42500.00", "407081.72", "2250000.00", "225"),
]
TRADES = [
    BookedTrade(QQQ, "short", D(595), D(420), "last_close", D(0), D(-595), requested_amount=D(250000)),
    BookedTrade(NFLX, "cover", D(300), D(490), "last_close", D(-600), D(-300), action="reduce"),
]
PUT_INPUTS = OptionInputs("ok", delta=-0.18, gamma=0.004, theta=-0.02, vega=0.5, rho=-0.7, underlying_price=225.0)


def books():
    book = SessionBook(BASE, TRADES, D("100000.00"))
    units = session_units(book, {"QQQ": D(420)}, {PUT.symbol: PUT_INPUTS})
    return before_after(book, units)


def test_before_reproduces_the_frozen_valuation_and_after_scales_by_quantity() -> None:
    before, after = books()
    b, a = metrics.local_figures(before), metrics.local_figures(after)
    assert b["market_value"] == {"long": 337500.0, "short": -336500.0, "gross": 674000.0, "net": 1000.0}
    assert b["exposure"]["long"] == pytest.approx(744581.72) and b["exposure"]["short"] == -294000.0
    assert a["market_value"]["short"] == pytest.approx(-42500.0 - 147000.0 - 249900.0)
    assert a["exposure"]["short"] - b["exposure"]["short"] == pytest.approx(-102900.0)
    assert a["equity"] == pytest.approx(b["equity"]) == pytest.approx(101000.0)
    assert a["position_count"] == 4 and b["position_count"] == 3


def test_greeks_scale_per_share_values_by_contracts_and_multiplier() -> None:
    before, _ = books()
    g = metrics.local_figures(before)["greeks"]
    assert g["theta"] == pytest.approx(-0.02 * 100 * -100)  # short puts earn the decay
    assert g["vega"] == pytest.approx(0.5 * 100 * -100)
    assert g["dollar_gamma_1pct"] == pytest.approx(0.004 * 100 * -100 * 225.0**2 / 100)
    assert g["dollar_delta"] == pytest.approx(metrics.local_figures(before)["exposure"]["net"])


def test_a_new_option_without_a_delta_is_left_out_of_exposure_only() -> None:
    call = Instrument("SPY271217C00600000", "option", "SPY", 100, "C", D(600), date(2027, 12, 17))
    trade = BookedTrade(call, "buy", D(2), D("10.5"), "user", D(0), D(2))
    book = SessionBook(BASE, [trade], D(0))
    _, after = before_after(book, session_units(book, {}, {}))
    row = after.symbols.index(call.symbol)
    assert after.market_value[row] == pytest.approx(2100.0) and math.isnan(after.exposure[row])
    assert metrics.local_figures(after)["exposure"]["gross"] == pytest.approx(1_038_581.72)


def test_concentration_uses_absolute_exposure_weights() -> None:
    c = metrics.concentration(np.array([50.0, -30.0, 20.0, np.nan]))
    assert c["top5_weight"] == pytest.approx(1.0)
    assert c["effective_positions"] == pytest.approx(1 / (0.5**2 + 0.3**2 + 0.2**2))
    assert metrics.concentration(np.array([])) == {"top5_weight": None, "effective_positions": None}


def test_change_matches_factors_by_code_and_stress_by_scenario() -> None:
    before = {
        "equity": 10.0,
        "factors": [{"code": "market", "beta": 0.8}],
        "stress": [{"scenario_id": "a", "correlated_pnl": -5.0}],
    }
    after = {
        "equity": 10.0,
        "factors": [{"code": "market", "beta": 0.5}],
        "stress": [{"scenario_id": "b", "correlated_pnl": -4.0}],
    }
    every = [{"scenario_id": "a", "correlated_pnl": -5.0}, {"scenario_id": "b", "correlated_pnl": -1.0}]
    delta = metrics.change(after, before, every)
    assert delta["equity"] == 0.0
    assert delta["factors"] == [{"code": "market", "beta": pytest.approx(-0.3)}]
    assert delta["stress"] == [{"scenario_id": "b", "correlated_pnl": -3.0}]


def test_present_writes_money_as_two_decimal_strings_and_statistics_as_numbers() -> None:
    shown = metrics.present(
        {"equity": 101000.004, "market_value": {"short": -0.0}, "greeks": {"theta": 1.23456789}, "position_count": 3.0}
    )
    assert shown == {
        "equity": "101000.00",
        "market_value": {"short": "0.00"},
        "greeks": {"theta": 1.234568},
        "position_count": 3,
    }
