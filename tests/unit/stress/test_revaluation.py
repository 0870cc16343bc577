"""Full option revaluation under scenario moves (calculations.md §5.1, §6.3; Example 7, P3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greeks.compute import bsm_greeks
from stress.compute.revaluation import OptionLegs, model_prices, revaluation_pnl, usable


def example7_call(quantity: float = 20.0) -> OptionLegs:
    """20 AAA calls, K 105, T 45/365, r 0.04, q 0.01, σ 0.30, S 100 (Example 7, P3)."""
    return OptionLegs.build(
        spot=[100.0],
        strike=[105.0],
        time_to_expiry=[45 / 365],
        rate=[0.04],
        dividend_yield=[0.01],
        sigma=[0.30],
        is_call=[True],
        quantity=[quantity],
        multiplier=[100.0],
    )


def test_example7_call_price_and_greeks_come_from_the_greeks_engine() -> None:
    legs = example7_call()
    price = model_prices(legs, legs.spot, legs.sigma)
    g = bsm_greeks(
        legs.spot, legs.strike, legs.time_to_expiry, legs.rate, legs.dividend_yield, legs.sigma, legs.is_call
    )
    assert price[0] == pytest.approx(2.375533, abs=5e-7)
    assert price[0] == g.price[0]
    assert g.delta[0] == pytest.approx(0.353245, abs=5e-7)
    assert g.gamma[0] == pytest.approx(0.0352527, abs=5e-8)


def test_example7_full_revaluation_at_s_92_loses_3639_90_not_the_delta_gamma_3395_76() -> None:
    legs = example7_call()
    pnl = revaluation_pnl(legs, np.array([[-0.08]]))
    assert round(float(pnl[0, 0]), 2) == -3639.90
    g = bsm_greeks(
        legs.spot, legs.strike, legs.time_to_expiry, legs.rate, legs.dividend_yield, legs.sigma, legs.is_call
    )
    move = 100.0 * -0.08
    delta_gamma = 20 * 100 * (g.delta[0] * move + 0.5 * g.gamma[0] * move * move)
    linear = 70_649.10 * -0.08
    assert round(delta_gamma, 2) == -3395.76
    assert round(linear, 2) == -5651.93
    # Full revaluation sits between the linear and the delta-gamma approximation for this call.
    assert linear < pnl[0, 0] < delta_gamma


def test_zero_move_and_zero_shift_give_zero_pnl() -> None:
    legs = example7_call()
    assert revaluation_pnl(legs, np.zeros((3, 1)))[:, 0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


def test_long_option_loses_at_most_its_premium_even_at_minus_100_percent() -> None:
    call = example7_call()
    premium = float(model_prices(call, call.spot, call.sigma)[0]) * 20 * 100
    pnl = revaluation_pnl(call, np.array([[-1.0], [-0.9], [-0.5]]))[:, 0]
    assert pnl[0] == pytest.approx(-premium, rel=1e-12)
    assert (pnl >= -premium - 1e-9).all()


def test_put_at_zero_spot_is_worth_its_discounted_strike() -> None:
    put = OptionLegs.build(
        spot=[50.0],
        strike=[45.0],
        time_to_expiry=[0.5],
        rate=[0.03],
        dividend_yield=[0.0],
        sigma=[0.4],
        is_call=[False],
        quantity=[1.0],
        multiplier=[100.0],
    )
    base = float(model_prices(put, put.spot, put.sigma)[0])
    pnl = revaluation_pnl(put, np.array([[-1.0]]))[0, 0]
    assert pnl == pytest.approx(100 * (45 * math.exp(-0.03 * 0.5) - base), rel=1e-12)


def test_short_option_pnl_is_the_mirror_of_the_long() -> None:
    long_, short = example7_call(20.0), example7_call(-20.0)
    moves = np.array([[-0.2], [0.1], [0.3]])
    assert revaluation_pnl(short, moves) == pytest.approx(-revaluation_pnl(long_, moves), abs=1e-9)


def test_iv_shift_applies_to_the_shocked_price_only() -> None:
    legs = example7_call()
    shifted = revaluation_pnl(legs, np.zeros((1, 1)), np.array([0.10]))[0, 0]
    base = model_prices(legs, legs.spot, legs.sigma)[0]
    bumped = model_prices(legs, legs.spot, legs.sigma + 0.10)[0]
    assert shifted == pytest.approx(2000 * (bumped - base), rel=1e-12)
    assert shifted > 0  # a long call gains from a volatility spike


def test_a_shift_below_zero_volatility_prices_the_intrinsic_forward_value() -> None:
    legs = example7_call()
    pnl = revaluation_pnl(legs, np.array([[0.10]]), np.array([-0.5]))[0, 0]
    base = model_prices(legs, legs.spot, legs.sigma)[0]
    forward = 110 * math.exp(-0.01 * 45 / 365) - 105 * math.exp(-0.04 * 45 / 365)
    assert pnl == pytest.approx(2000 * (forward - base), rel=1e-9)


def test_expiry_day_option_is_revalued_at_intrinsic() -> None:
    legs = OptionLegs.build(
        spot=[100.0],
        strike=[95.0],
        time_to_expiry=[0.0],
        rate=[0.04],
        dividend_yield=[0.0],
        sigma=[0.3],
        is_call=[True],
        quantity=[1.0],
        multiplier=[100.0],
    )
    pnl = revaluation_pnl(legs, np.array([[-0.10], [0.05]]))[:, 0]
    assert pnl == pytest.approx([100 * (0 - 5), 100 * (10 - 5)])


def test_many_scenarios_and_options_are_priced_in_one_vectorised_batch() -> None:
    rng = np.random.default_rng(3)
    m = 40
    legs = OptionLegs.build(
        spot=rng.uniform(20, 300, m),
        strike=rng.uniform(20, 300, m),
        time_to_expiry=rng.uniform(0.01, 2, m),
        rate=rng.uniform(0, 0.05, m),
        dividend_yield=rng.uniform(0, 0.03, m),
        sigma=rng.uniform(0.1, 0.8, m),
        is_call=rng.random(m) < 0.5,
        quantity=rng.choice([-5.0, 3.0, 10.0], m),
        multiplier=np.full(m, 100.0),
    )
    returns = rng.uniform(-0.5, 0.5, (7, m))
    pnl = revaluation_pnl(legs, returns)
    for j in (0, 13, 39):
        one = legs.take(np.array([j]))
        assert pnl[:, j] == pytest.approx(revaluation_pnl(one, returns[:, [j]])[:, 0], rel=1e-12, abs=1e-9)


def test_unusable_inputs_are_detected() -> None:
    legs = OptionLegs.build(
        spot=[100.0, np.nan, 100.0],
        strike=[100.0, 100.0, 100.0],
        time_to_expiry=[0.5, 0.5, 0.5],
        rate=[0.04, 0.04, 0.04],
        dividend_yield=[0.0, 0.0, 0.0],
        sigma=[0.3, 0.3, np.nan],
        is_call=[True, True, True],
        quantity=[1.0, 1.0, 1.0],
        multiplier=[100.0, 100.0, 100.0],
    )
    assert usable(legs).tolist() == [True, False, False]
