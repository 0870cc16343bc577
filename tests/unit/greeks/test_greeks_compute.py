"""BSM Greeks against calculations.md §10 Examples 2 and 3, edge cases (§3.6) and input rules (§3.2)."""

from __future__ import annotations

import itertools
import math
from datetime import date

import mibian
import numpy as np
import pytest

from greeks import compute
from greeks.bench import measure_throughput
from greeks.compute import OptionBatch, bsm_greeks, d1_d2, evaluate, implied_volatility

REL = 1e-4


def rel_ok(actual: float, expected: float, rel: float = REL) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


def one(**kw):
    """Evaluate a single contract with explicit model inputs (no market data)."""
    defaults = dict(quantity=[1.0], multiplier=[100.0], dividend_yield=[0.0], flags=[0])
    defaults.update(kw)
    batch = OptionBatch.build(len(defaults["spot"]), **defaults)
    return evaluate(batch)


# ---------------------------------------------------------------- Example 2


EX2 = dict(S=100.0, K=105.0, T=30 / 365, r=0.05, q=0.02, sigma=0.25)
EX2_CALL = dict(price=1.14436, delta=0.270322, gamma=0.0461222, theta=-0.0415533, vega=0.0947717, rho=0.0212777)
EX2_PUT = dict(price=5.87798, delta=-0.728035, gamma=0.0461222, theta=-0.0326991, vega=0.0947717, rho=-0.0646698)


def test_example2_d1_d2():
    d1, d2 = d1_d2(np.array([100.0]), 105.0, 30 / 365, 0.05, 0.02, 0.25)
    assert rel_ok(d1[0], -0.610496)
    assert rel_ok(d2[0], -0.682168)


@pytest.mark.parametrize(("is_call", "expected"), [(True, EX2_CALL), (False, EX2_PUT)])
def test_example2_price_and_greeks_match_reference(is_call, expected):
    g = bsm_greeks(EX2["S"], EX2["K"], EX2["T"], EX2["r"], EX2["q"], EX2["sigma"], np.array([is_call]))
    for name, value in expected.items():
        assert rel_ok(float(getattr(g, name)[0]), value), name


def test_example2_put_call_parity_holds_to_1e8():
    g = bsm_greeks(100.0, 105.0, 30 / 365, 0.05, 0.02, 0.25, np.array([True, False]))
    parity = 100 * math.exp(-0.02 * 30 / 365) - 105 * math.exp(-0.05 * 30 / 365)
    assert abs((g.price[0] - g.price[1]) - parity) < 1e-8
    assert rel_ok(parity, -4.73362)


def test_put_call_parity_on_a_grid_to_1e8():
    grid = np.array(
        list(
            itertools.product(
                [50.0, 100.0, 180.0], [60.0, 100.0, 150.0], [1, 30, 400], [0.0, 0.06], [0.0, 0.03], [0.05, 0.4, 1.5]
            )
        )
    )
    S, K, days, r, q, sig = grid.T
    T = days / 365
    call = bsm_greeks(S, K, T, r, q, sig, np.ones(len(S), bool)).price
    put = bsm_greeks(S, K, T, r, q, sig, np.zeros(len(S), bool)).price
    np.testing.assert_allclose(call - put, S * np.exp(-q * T) - K * np.exp(-r * T), rtol=0, atol=1e-8)


def test_example2_short_five_calls_position_table():
    res = one(
        spot=[100.0],
        strike=[105.0],
        days_to_expiry=[30],
        is_call=[True],
        quantity=[-5.0],
        rate=[0.05],
        dividend_yield=[0.02],
        sigma_override=[0.25],
    )
    assert compute.STATUS_NAMES[res.status[0]] == "ok"
    mv = -5 * 100 * res.per_share.price[0]
    assert rel_ok(mv, -572.178)
    assert rel_ok(res.delta[0], -135.161)
    assert rel_ok(res.dollar_delta[0], -13516.1)
    assert rel_ok(res.gamma[0], -23.0611)
    assert rel_ok(res.dollar_gamma_1pct[0], -2306.11)
    assert rel_ok(res.theta[0], 20.7766)
    assert rel_ok(res.vega[0], -47.3858)
    assert rel_ok(res.rho[0], -10.6388)


def test_example2_without_dividends():
    g = bsm_greeks(100.0, 105.0, 30 / 365, 0.05, 0.0, 0.25, np.array([True]))
    expected = dict(price=1.18946, delta=0.278414, gamma=0.0468372, theta=-0.0437513, vega=0.0962408, rho=0.0219057)
    for name, value in expected.items():
        assert rel_ok(float(getattr(g, name)[0]), value), name


def test_rate_passed_to_mibian_as_decimal_reproduces_the_legacy_wrong_price():
    # Defect 14: mibian reads its rate argument in percent; 0.05 means 0.05 %.
    wrong = mibian.BS([100, 105, 0.05, 30], volatility=25).callPrice
    assert rel_ok(wrong, 1.08464)
    right = mibian.BS([100, 105, 0.05 * 100, 30], volatility=0.25 * 100).callPrice
    ours = bsm_greeks(100.0, 105.0, 30 / 365, 0.05, 0.0, 0.25, np.array([True])).price[0]
    assert rel_ok(right, 1.18946)
    assert abs(ours - right) <= 1e-9 * right
    # Our engine takes decimals: feeding it 0.0005 (what mibian did with "0.05") gives the wrong value.
    legacy = bsm_greeks(100.0, 105.0, 30 / 365, 0.0005, 0.0, 0.25, np.array([True])).price[0]
    assert rel_ok(legacy, 1.08464)


# ---------------------------------------------------------------- Example 3


def test_example3_atm_without_dividends():
    g = bsm_greeks(450.0, 450.0, 60 / 365, 0.045, 0.0, 0.20, np.array([True, False]))
    call = dict(price=16.2182, delta=0.552416, gamma=0.0108385, theta=-0.148911, vega=0.721575, rho=0.381977)
    put = dict(price=12.9017, delta=-0.447584, gamma=0.0108385, theta=-0.0938402, vega=0.721575, rho=-0.352298)
    for i, expected in enumerate((call, put)):
        for name, value in expected.items():
            assert rel_ok(float(getattr(g, name)[i]), value), name
    d1, d2 = d1_d2(np.array([450.0]), 450.0, 60 / 365, 0.045, 0.0, 0.20)
    assert rel_ok(d1[0], 0.131769)
    assert rel_ok(d2[0], 0.0506803)


def test_example3_iv_recovered_from_rounded_market_price():
    iv = implied_volatility(
        np.array([16.22]),
        np.array([450.0]),
        np.array([450.0]),
        np.array([60 / 365]),
        np.array([0.045]),
        np.array([0.0]),
        np.array([True]),
    )
    assert rel_ok(iv[0], 0.200025)
    # mibian's string-precision bisection stops earlier (20.0043 %): coarser than the bracketing solve.
    coarse = mibian.BS([450, 450, 4.5, 60], callPrice=16.22).impliedVolatility / 100
    assert abs(coarse - 0.200043) < 1e-5
    assert abs(iv[0] - 0.200025) < abs(coarse - 0.200025)


def test_expiry_day_call_in_the_money_is_intrinsic_with_unit_delta():
    res = one(
        spot=[452.0, 452.0],
        strike=[450.0, 450.0],
        days_to_expiry=[0, 0],
        is_call=[True, False],
        rate=[0.045, 0.045],
        quantity=[1.0, 1.0],
        multiplier=[100.0, 100.0],
        dividend_yield=[0.0, 0.0],
        flags=[0, 0],
    )
    assert list(res.status) == [compute.STATUS_OK, compute.STATUS_OK]
    assert res.per_share.price[0] == pytest.approx(2.0, abs=1e-12)
    assert res.per_share.delta[0] == 1.0
    assert res.per_share.price[1] == 0.0
    assert res.per_share.delta[1] == 0.0 and not math.copysign(1.0, res.per_share.delta[1]) < 0
    for g in (res.per_share.gamma, res.per_share.theta, res.per_share.vega, res.per_share.rho):
        assert list(g) == [0.0, 0.0]
    assert all(compute.flag_names(f) == ["expiry_day"] for f in res.flags)


def test_expiry_day_at_the_money_deltas_are_plus_minus_half():
    res = one(
        spot=[450.0, 450.0],
        strike=[450.0, 450.0],
        days_to_expiry=[0, 0],
        is_call=[True, False],
        rate=[0.045, 0.045],
        quantity=[1.0, 1.0],
        multiplier=[100.0, 100.0],
        dividend_yield=[0.0, 0.0],
        flags=[0, 0],
    )
    assert list(res.per_share.delta) == [0.5, -0.5]
    assert list(res.per_share.price) == [0.0, 0.0]


def test_expired_option_has_zero_greeks_and_intrinsic_price():
    res = one(spot=[90.0], strike=[100.0], days_to_expiry=[-3], is_call=[False], rate=[0.04], quantity=[-2.0])
    assert compute.STATUS_NAMES[res.status[0]] == "expired"
    assert res.per_share.price[0] == 10.0
    for values in (res.delta, res.gamma, res.theta, res.vega, res.rho, res.dollar_delta, res.dollar_gamma_1pct):
        assert values[0] == 0.0
    assert "expired_unsettled" in compute.flag_names(int(res.flags[0]))


def test_expired_option_without_underlying_price_still_has_zero_greeks():
    res = one(spot=[math.nan], strike=[100.0], days_to_expiry=[-1], is_call=[True], rate=[0.04])
    assert compute.STATUS_NAMES[res.status[0]] == "expired"
    assert res.delta[0] == 0.0 and res.dollar_delta[0] == 0.0
    assert math.isnan(res.per_share.price[0])


def test_missing_underlying_price_gives_null_greeks_with_reason():
    res = one(spot=[math.nan], strike=[100.0], days_to_expiry=[30], is_call=[True], rate=[0.04])
    assert compute.STATUS_NAMES[res.status[0]] == "missing_inputs"
    assert compute.REASON_NAMES[res.reason[0]] == "underlying_price_missing"
    assert all(math.isnan(v[0]) for v in (res.delta, res.gamma, res.theta, res.vega, res.rho))


@pytest.mark.parametrize(
    ("spot", "strike", "reason"),
    [
        (0.0, 100.0, "invalid_underlying_price"),
        (-5.0, 100.0, "invalid_underlying_price"),
        (100.0, 0.0, "invalid_strike"),
        (100.0, -1.0, "invalid_strike"),
    ],
)
def test_non_positive_inputs_are_errors_with_null_greeks(spot, strike, reason):
    res = one(spot=[spot], strike=[strike], days_to_expiry=[30], is_call=[True], rate=[0.04])
    assert compute.STATUS_NAMES[res.status[0]] == "error"
    assert compute.REASON_NAMES[res.reason[0]] == reason
    assert all(math.isnan(v[0]) for v in (res.delta, res.gamma, res.theta, res.vega, res.rho, res.per_share.price))


def test_vanishing_volatility_uses_forward_moneyness():
    # S·e^{-qT} = 100·e^{-0.05} ≈ 95.12 < K·e^{-rT} = 99·e^{-0.01} ≈ 98.01: the call is out of the money forward
    # although S > K spot.
    res = one(
        spot=[100.0, 100.0],
        strike=[99.0, 99.0],
        days_to_expiry=[365, 365],
        is_call=[True, False],
        rate=[0.01, 0.01],
        dividend_yield=[0.05, 0.05],
        sigma_override=[1e-12, 1e-12],
        quantity=[1.0, 1.0],
        multiplier=[100.0, 100.0],
        flags=[0, 0],
    )
    fs, fk = 100 * math.exp(-0.05), 99 * math.exp(-0.01)
    assert res.per_share.price[0] == 0.0
    assert res.per_share.price[1] == pytest.approx(fk - fs, rel=1e-12)
    assert res.per_share.delta[0] == 0.0
    assert res.per_share.delta[1] == pytest.approx(-math.exp(-0.05), rel=1e-12)
    assert all("zero_volatility" in compute.flag_names(int(f)) for f in res.flags)


# ---------------------------------------------------------------- implied volatility and its fallbacks


def test_iv_round_trip_on_a_grid():
    grid = np.array(
        list(itertools.product([80.0, 100.0, 125.0], [100.0], [7, 90, 500], [0.03], [0.0, 0.02], [0.08, 0.3, 1.2, 3.0]))
    )
    S, K, days, r, q, sig = grid.T
    T = days / 365
    for is_call in (True, False):
        flags = np.full(len(S), is_call)
        prices = bsm_greeks(S, K, T, r, q, sig, flags).price
        iv = implied_volatility(prices, S, K, T, r, q, flags)
        vega = bsm_greeks(S, K, T, r, q, sig, flags).vega
        solvable = vega > 1e-6  # where the price carries information about σ
        np.testing.assert_allclose(iv[solvable], sig[solvable], atol=2e-8)


def test_iv_fails_outside_no_arbitrage_bounds():
    S, K, T, r, q = 100.0, 90.0, 0.5, 0.04, 0.0
    lower = S - K * math.exp(-r * T)
    prices = np.array([lower - 0.5, lower, S, S + 1.0, math.nan])
    n = len(prices)
    iv = implied_volatility(
        prices, np.full(n, S), np.full(n, K), np.full(n, T), np.full(n, r), np.full(n, q), np.ones(n, bool)
    )
    assert np.isnan(iv).all()


def test_iv_fails_when_root_lies_outside_the_sigma_bracket():
    # Inside the arbitrage bounds but above the σ = 5.0 price: no root in [0.001, 5].
    S, K, T = 100.0, 100.0, 2.0
    top = bsm_greeks(S, K, T, 0.0, 0.0, 5.0, np.array([True])).price[0]
    iv = implied_volatility(
        np.array([(top + S) / 2]),
        np.array([S]),
        np.array([K]),
        np.array([T]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([True]),
    )
    assert math.isnan(iv[0])


def fallback_case(**kw):
    base = dict(spot=[100.0], strike=[100.0], days_to_expiry=[60], is_call=[True], rate=[0.04])
    base.update(kw)
    res = one(**base)
    return compute.IV_SOURCE_NAMES[res.iv_source[0]], res.sigma[0], compute.flag_names(int(res.flags[0]))


def test_iv_source_market_first():
    price = bsm_greeks(100.0, 100.0, 60 / 365, 0.04, 0.0, 0.33, np.array([True])).price[0]
    source, sigma, flags = fallback_case(option_price=[price], vendor_iv=[0.5], historical_vol=[0.2])
    assert source == "market"
    assert sigma == pytest.approx(0.33, abs=1e-7)
    assert flags == []


def test_iv_source_vendor_when_market_price_is_below_intrinsic():
    source, sigma, flags = fallback_case(spot=[130.0], option_price=[5.0], vendor_iv=[0.5], historical_vol=[0.2])
    assert (source, sigma) == ("vendor", 0.5)
    assert flags == ["iv_market_solve_failed"]


@pytest.mark.parametrize("vendor", [0.005, 5.5, math.nan])
def test_iv_source_historical_when_vendor_missing_or_out_of_range(vendor):
    source, sigma, _ = fallback_case(vendor_iv=[vendor], historical_vol=[0.2])
    assert (source, sigma) == ("historical", 0.2)


def test_iv_source_default_is_flagged():
    source, sigma, flags = fallback_case()
    assert (source, sigma) == ("default", 0.25)
    assert flags == ["iv_default"]


def test_iv_override_wins_over_every_source():
    source, sigma, _ = fallback_case(sigma_override=[0.42], option_price=[3.0], vendor_iv=[0.5], historical_vol=[0.2])
    assert (source, sigma) == ("override", 0.42)


# ---------------------------------------------------------------- risk-free curve and historical volatility


def test_curve_uses_value_on_date_or_latest_within_ten_days():
    t0 = date(2026, 11, 24)
    obs = [
        ("DGS3MO", date(2026, 11, 24), 0.04),
        ("DGS3MO", date(2026, 11, 20), 0.03),
        ("DGS1", date(2026, 11, 14), 0.045),  # exactly 10 days old: used
        ("DGS2", date(2026, 11, 13), 0.05),  # 11 days old: ignored
        ("DGS6MO", date(2026, 11, 25), 0.06),  # after t0: ignored
        ("DGS10", date(2026, 11, 24), 0.07),  # not a curve node
    ]
    tenors, yields = compute.curve_nodes(obs, t0)
    assert list(tenors) == [0.25, 1.0]
    assert list(yields) == [0.04, 0.045]


def test_rates_interpolate_linearly_flat_beyond_ends_and_compound_continuously():
    tenors, yields = np.array([0.25, 1.0]), np.array([0.04, 0.05])
    r, defaulted = compute.risk_free_rates(np.array([0.0, 0.25, 0.625, 1.0, 3.0]), tenors, yields)
    assert not defaulted
    np.testing.assert_allclose(r, np.log1p([0.04, 0.04, 0.045, 0.05, 0.05]), rtol=1e-15)


def test_rates_default_when_no_node_is_usable():
    r, defaulted = compute.risk_free_rates(np.array([0.1, 2.0]), np.empty(0), np.empty(0))
    assert defaulted
    assert list(r) == [0.04, 0.04]


def test_historical_volatility_is_sample_std_annualised():
    rng = np.random.default_rng(3)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.01, 64))
    cur, prev = np.arange(1, 64), np.arange(0, 63)
    vol, nobs = compute.historical_volatility(closes[None, :], cur, prev)
    rets = closes[1:] / closes[:-1] - 1
    assert nobs[0] == 63
    assert vol[0] == pytest.approx(np.std(rets, ddof=1) * math.sqrt(252), rel=1e-12)


def test_historical_volatility_skips_returns_across_gaps_without_forward_fill():
    closes = np.array([100.0, 101.0, np.nan, 103.0] + [100.0 + (i % 3) for i in range(30)])
    cur, prev = np.arange(1, len(closes)), np.arange(0, len(closes) - 1)
    vol, nobs = compute.historical_volatility(closes[None, :], cur, prev)
    rets = closes[1:] / closes[:-1] - 1
    valid = rets[np.isfinite(rets)]
    assert nobs[0] == len(closes) - 1 - 2  # the two returns touching the gap are dropped
    assert vol[0] == pytest.approx(np.std(valid, ddof=1) * math.sqrt(252), rel=1e-12)


def test_historical_volatility_needs_twenty_returns_and_is_clipped():
    short = np.linspace(100, 110, 20)  # 19 returns
    flat = np.full(30, 50.0)  # zero volatility → clipped up to 0.05
    wild = np.array([100.0, 300.0] * 15)  # huge volatility → clipped to 3.0
    prices = np.full((3, 30), np.nan)
    prices[0, :20], prices[1], prices[2] = short, flat, wild
    vol, nobs = compute.historical_volatility(prices, np.arange(1, 30), np.arange(0, 29))
    assert math.isnan(vol[0]) and nobs[0] == 19
    assert vol[1] == 0.05
    assert vol[2] == 3.0


# ---------------------------------------------------------------- cross-check against mibian


def test_closed_form_matches_mibian_on_a_grid():
    """Agreement to 1e-9 relative after unit conversion (mibian: r and σ in percent, days, D = q·S dollars).

    Values whose magnitude is below 1e-7 are compared with an absolute tolerance of 1e-16 instead:
    there mibian's own arithmetic (put delta as e^{-qT}·(N(d1) − 1), subtraction of near-equal
    theta terms) loses the relative digits, not the closed form.
    """
    worst = 0.0
    for S, K, days, r, q, sigma in itertools.product(
        [80.0, 100.0, 120.0], [90.0, 100.0, 110.0], [7, 30, 180, 365], [0.01, 0.05], [0.0, 0.02], [0.1, 0.3, 0.6]
    ):
        T = days / 365
        ours = bsm_greeks(np.full(2, S), K, T, r, q, sigma, np.array([True, False]))
        if q == 0:
            m = mibian.BS([S, K, r * 100, days], volatility=sigma * 100)
        else:
            m = mibian.Me([S, K, r * 100, q * S, days], volatility=sigma * 100)
        pairs = [
            (ours.price[0], m.callPrice),
            (ours.price[1], m.putPrice),
            (ours.delta[0], m.callDelta),
            (ours.delta[1], m.putDelta),
            (ours.gamma[0], m.gamma),
            (ours.gamma[1], m.gamma),
            (ours.theta[0], m.callTheta),
            (ours.theta[1], m.putTheta),
            (ours.vega[0], m.vega),
            (ours.vega[1], m.vega),
            (ours.rho[0], m.callRho),
            (ours.rho[1], m.putRho),
        ]
        for a, b in pairs:
            if abs(b) < 1e-7:
                assert abs(a - b) <= 1e-16 + 1e-9 * abs(b), (S, K, days, r, q, sigma, a, b)
            else:
                err = abs(a - b) / abs(b)
                worst = max(worst, err)
                assert err <= 1e-9, (S, K, days, r, q, sigma, a, b)
    assert worst < 1e-9


# ---------------------------------------------------------------- batches


def test_mixed_batch_evaluates_every_edge_case_in_one_call():
    res = one(
        spot=[100.0, math.nan, 100.0, 100.0, 0.0],
        strike=[105.0, 100.0, 100.0, 100.0, 100.0],
        days_to_expiry=[30, 30, 0, -1, 30],
        is_call=[True, True, True, False, True],
        rate=[0.05] * 5,
        dividend_yield=[0.02] * 5,
        sigma_override=[0.25] * 5,
        quantity=[1.0] * 5,
        multiplier=[100.0] * 5,
        flags=[0] * 5,
    )
    assert [compute.STATUS_NAMES[s] for s in res.status] == ["ok", "missing_inputs", "ok", "expired", "error"]
    assert rel_ok(res.per_share.price[0], 1.14436)
    assert res.per_share.delta[2] == 0.5


def test_threaded_kernel_equals_single_threaded():
    rng = np.random.default_rng(11)
    n = 50_000
    args = (
        rng.uniform(50, 150, n),
        rng.uniform(50, 150, n),
        rng.uniform(0.01, 2, n),
        rng.uniform(0, 0.05, n),
        rng.uniform(0, 0.03, n),
        rng.uniform(0.1, 0.8, n),
        rng.random(n) < 0.5,
    )
    a = bsm_greeks(*args, workers=1)
    b = bsm_greeks(*args, workers=2)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_measure_throughput_reports_a_finite_rate():
    report = measure_throughput(n=100_000, repeats=2, workers=1)
    assert report["all_finite"]
    assert report["n"] == 100_000
    assert report["options_per_second"] > 0


@pytest.mark.parametrize(
    ("oracle", "inputs"),
    [
        (lambda: mibian.Me([100, 105, 5, 2.0, 30], volatility=25), (100.0, 105.0, 30, 0.05, 0.02, 0.25)),
        (lambda: mibian.BS([100, 105, 5, 30], volatility=25), (100.0, 105.0, 30, 0.05, 0.0, 0.25)),
        (lambda: mibian.BS([450, 450, 4.5, 60], volatility=20), (450.0, 450.0, 60, 0.045, 0.0, 0.20)),
    ],
)
def test_examples_2_and_3_match_mibian_oracle(oracle, inputs):
    S, K, days, r, q, sigma = inputs
    m = oracle()
    g = bsm_greeks(np.full(2, S), K, days / 365, r, q, sigma, np.array([True, False]))
    expected = [
        (g.price, (m.callPrice, m.putPrice)),
        (g.delta, (m.callDelta, m.putDelta)),
        (g.gamma, (m.gamma, m.gamma)),
        (g.theta, (m.callTheta, m.putTheta)),
        (g.vega, (m.vega, m.vega)),
        (g.rho, (m.callRho, m.putRho)),
    ]
    for ours, theirs in expected:
        for a, b in zip(ours, theirs, strict=True):
            assert abs(a - b) <= 1e-10 * abs(b)


def test_short_expired_position_has_positive_zero_greeks():
    res = one(spot=[90.0], strike=[100.0], days_to_expiry=[-1], is_call=[True], rate=[0.04], quantity=[-7.0])
    for values in (res.delta, res.gamma, res.theta, res.vega, res.rho):
        assert values[0] == 0.0 and math.copysign(1.0, values[0]) == 1.0
