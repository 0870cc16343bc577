"""Worked examples 7 and 8 of calculations.md §10 (direct and correlated stress impact)."""

from __future__ import annotations

import numpy as np
import pytest

from stress.compute.revaluation import OptionLegs
from stress.compute.scenarios import (
    MODEL_FACTORS,
    Book,
    ScenarioSet,
    conditional_moves,
    correlated_impact,
    direct_impact,
)

F = MODEL_FACTORS
ALL = np.ones(len(F), dtype=bool)


def betas(**values: float) -> np.ndarray:
    row = np.zeros(len(F))
    for code, value in values.items():
        row[F.index(code)] = value
    return row


def book(
    exposure: list[float],
    underlying: list[int],
    beta_rows: list[np.ndarray],
    *,
    options: list[int] | None = None,
    legs: OptionLegs | None = None,
    equity: float = float("nan"),
) -> Book:
    n = len(exposure)
    return Book(
        factors=F,
        portfolio_index=np.zeros(n, dtype=np.int64),
        n_portfolios=1,
        underlying_index=np.asarray(underlying, dtype=np.int64),
        exposure=np.asarray(exposure, dtype=np.float64),
        betas=np.vstack(beta_rows),
        option_positions=np.asarray(options or [], dtype=np.int64),
        legs=legs or OptionLegs.empty(),
        equity=np.array([equity]),
    )


# -- Example 7: Liquidity Crisis, direct impact --------------------------------------------------

LIQUIDITY = {"market": -0.20, "low_volatility": -0.30, "quality": 0.15, "size": -0.10}
AAA = betas(market=1.10, quality=0.20, size=0.10, low_volatility=-0.40)
BBB = betas(market=1.30, quality=-0.30, size=0.50, low_volatility=-0.60)
P3 = OptionLegs.build(
    spot=[100.0],
    strike=[105.0],
    time_to_expiry=[45 / 365],
    rate=[0.04],
    dividend_yield=[0.01],
    sigma=[0.30],
    is_call=[True],
    quantity=[20.0],
    multiplier=[100.0],
)


def example7() -> Book:
    return book([100_000.0, -40_000.0, 70_649.10], [0, 1, 0], [AAA, BBB], options=[2], legs=P3)


def test_example7_predicted_underlying_returns() -> None:
    impacts = direct_impact(example7(), ScenarioSet.build(["liquidity_crisis"], [LIQUIDITY]), ALL)
    assert impacts.underlying_return[0] == pytest.approx([-0.08, -0.175], abs=1e-12)


def test_example7_position_pnl_direct_impact_and_nonlinear_adjustment() -> None:
    impacts = direct_impact(example7(), ScenarioSet.build(["liquidity_crisis"], [LIQUIDITY]), ALL)
    p1, p2, p3 = impacts.position_pnl[0]
    assert round(p1, 2) == -8000.00
    assert round(p2, 2) == 7000.00
    assert round(p3, 2) == -3639.90
    assert round(impacts.position_linear[0, 2], 2) == -5651.93
    assert round(impacts.linear[0, 0], 2) == -6651.93
    assert round(impacts.total[0, 0], 2) == -4639.90
    assert round(impacts.nonlinear[0, 0], 2) == 2012.03


def test_example7_per_factor_linear_contributions_sum_to_the_linear_part() -> None:
    impacts = direct_impact(example7(), ScenarioSet.build(["liquidity_crisis"], [LIQUIDITY]), ALL)
    by_factor = dict(zip(F, impacts.factor_pnl[0, 0], strict=True))
    assert round(by_factor["market"], 2) == -27142.80
    assert round(by_factor["low_volatility"], 2) == 13277.89
    assert round(by_factor["quality"], 2) == 6919.47
    assert round(by_factor["size"], 2) == 293.51
    assert sum(by_factor.values()) == pytest.approx(impacts.linear[0, 0], abs=1e-9)
    assert round(sum(by_factor.values()), 2) == -6651.93


def test_example7_floor_case_a_beta_2_5_stock_loses_its_value_and_no_more() -> None:
    b = book([10_000.0], [0], [betas(market=2.5)], equity=10_000.0)
    impacts = direct_impact(b, ScenarioSet.build(["crash"], [{"market": -0.45}]), ALL)
    assert impacts.raw_return[0, 0] == pytest.approx(-1.125)
    assert impacts.underlying_return[0, 0] == -1.0
    assert impacts.total[0, 0] == pytest.approx(-10_000.0)
    assert impacts.linear[0, 0] == pytest.approx(-11_250.0)
    assert impacts.floored[0, 0] == 1


# -- Example 8: Value Rotation, correlated impact ------------------------------------------------

VOLS = {"value": 0.0040, "growth": 0.0050, "momentum": 0.0070, "quality": 0.0035}
CORR = {
    ("value", "growth"): -0.60,
    ("value", "momentum"): -0.30,
    ("value", "quality"): 0.20,
    ("growth", "momentum"): 0.45,
    ("growth", "quality"): 0.10,
    ("momentum", "quality"): 0.25,
}


def example8_covariance() -> np.ndarray:
    """Σ of Example 8; market, size, low volatility and rates are uncorrelated with these factors."""
    cov = np.zeros((len(F), len(F)))
    for code, vol in VOLS.items():
        cov[F.index(code), F.index(code)] = vol * vol
    for (a, b), rho in CORR.items():
        value = rho * VOLS[a] * VOLS[b]
        cov[F.index(a), F.index(b)] = cov[F.index(b), F.index(a)] = value
    for code, vol in (("market", 0.01), ("size", 0.006), ("low_volatility", 0.004), ("interest_rate", 0.0006)):
        cov[F.index(code), F.index(code)] = vol * vol
    return cov


STOCK8 = betas(value=-0.50, growth=0.70, momentum=0.30, quality=0.10)
ROTATION = {"value": 0.20, "growth": -0.10}


def test_example8_weights_and_implied_moves_of_the_unshocked_factors() -> None:
    moves = conditional_moves(ScenarioSet.build(["value_rotation_20"], [ROTATION]), example8_covariance(), ALL)
    assert moves.weights[0, F.index("value")] == pytest.approx(14_843.75, rel=1e-10)
    assert moves.weights[0, F.index("growth")] == pytest.approx(3_125.00, rel=1e-10)
    assert moves.implied[0, F.index("momentum")] == pytest.approx(-0.0754688, abs=1e-7)
    assert moves.implied[0, F.index("quality")] == pytest.approx(0.0470313, abs=1e-7)
    # Shocked factors keep their shocks: they get no implied move.
    assert np.isnan(moves.implied[0, F.index("value")]) and np.isnan(moves.implied[0, F.index("growth")])
    # The uncorrelated market implies no move.
    assert moves.implied[0, F.index("market")] == 0.0
    assert not moves.ill_conditioned[0]


def test_example8_wrong_shock_times_correlation_method_differs() -> None:
    wrong_momentum = 0.20 * -0.30 + -0.10 * 0.45  # "secondary shock = primary × ρ", summed
    wrong_quality = 0.20 * 0.20 + -0.10 * 0.10
    assert wrong_momentum == pytest.approx(-0.105) and wrong_quality == pytest.approx(0.030)
    moves = conditional_moves(ScenarioSet.build(["value_rotation_20"], [ROTATION]), example8_covariance(), ALL)
    assert moves.implied[0, F.index("momentum")] != pytest.approx(wrong_momentum, abs=1e-3)


def test_example8_direct_and_correlated_impact_with_attribution() -> None:
    b = book([100_000.0], [0], [STOCK8], equity=1_000_000.0)
    scenarios = ScenarioSet.build(["value_rotation_20"], [ROTATION])
    direct = direct_impact(b, scenarios, ALL)
    corr = correlated_impact(b, scenarios, example8_covariance(), ALL).impacts
    assert direct.total[0, 0] == pytest.approx(-17_000.00, abs=1e-9)
    assert corr.total[0, 0] == pytest.approx(-6_406.25, abs=1e-9)
    assert corr.factor_pnl[0, 0, F.index("value")] == pytest.approx(-11_875.00, abs=1e-9)
    assert corr.factor_pnl[0, 0, F.index("growth")] == pytest.approx(5_468.75, abs=1e-9)
    assert corr.factor_pnl[0, 0].sum() == pytest.approx(corr.linear[0, 0])
    assert corr.total[0, 0] - direct.total[0, 0] == pytest.approx(10_593.75, abs=1e-9)


def test_example8_covariances_and_partial_beta_check() -> None:
    cov = example8_covariance()
    idx = [F.index(c) for c in ("value", "growth", "momentum", "quality")]
    c = STOCK8[idx] * np.diag(cov)[idx]
    assert c == pytest.approx([-8.0e-6, 1.75e-5, 1.47e-5, 1.225e-6], rel=1e-12)
    partial = np.linalg.solve(cov[np.ix_(idx, idx)], c)
    assert partial == pytest.approx([0.0703645, 0.672871, 0.103796, -0.0641056], abs=5e-7)
    moves = conditional_moves(ScenarioSet.build(["value_rotation_20"], [ROTATION]), cov, ALL)
    full = np.array([0.20, -0.10, moves.implied[0, F.index("momentum")], moves.implied[0, F.index("quality")]])
    assert 100_000 * partial @ full == pytest.approx(-6_406.25, abs=1e-6)
    # Wrong: the stored market-controlled betas times the full move vector double-counts the overlap.
    assert 100_000 * STOCK8[idx] @ full == pytest.approx(-18_793.75, abs=0.01)


def test_example8_single_factor_value_shock_gives_equal_direct_and_correlated_impact() -> None:
    b = book([100_000.0], [0], [STOCK8])
    scenarios = ScenarioSet.build(["value_only"], [{"value": 0.20}])
    cov = example8_covariance()
    corr = correlated_impact(b, scenarios, cov, ALL)
    implied = corr.conditional.implied[0]
    assert implied[F.index("growth")] == pytest.approx(-0.150, abs=1e-12)
    assert implied[F.index("momentum")] == pytest.approx(-0.105, abs=1e-12)
    assert implied[F.index("quality")] == pytest.approx(0.035, abs=1e-12)
    direct = direct_impact(b, scenarios, ALL)
    assert direct.total[0, 0] == pytest.approx(-10_000.00, abs=1e-9)
    assert corr.impacts.total[0, 0] == pytest.approx(-10_000.00, abs=1e-9)


def test_ill_conditioned_shocked_block_uses_the_pseudo_inverse_and_is_flagged() -> None:
    cov = example8_covariance()
    v, g = F.index("value"), F.index("growth")
    # Make growth an exact multiple of value: Σ_ss is singular.
    cov[g, g] = 4 * cov[v, v]
    cov[v, g] = cov[g, v] = 2 * cov[v, v]
    moves = conditional_moves(ScenarioSet.build(["rotation"], [ROTATION]), cov, ALL)
    assert moves.ill_conditioned[0]
    assert np.isfinite(moves.weights[0]).all()


def test_a_scenario_shocking_an_unavailable_factor_is_not_computed() -> None:
    b = book([100_000.0], [0], [STOCK8])
    available = ALL.copy()
    available[F.index("growth")] = False
    scenarios = ScenarioSet.build(["rotation", "value"], [ROTATION, {"value": 0.2}])
    direct = direct_impact(b, scenarios, available)
    corr = correlated_impact(b, scenarios, example8_covariance(), available).impacts
    assert direct.computed.tolist() == [False, True]
    assert np.isnan(direct.total[0, 0]) and np.isnan(corr.total[0, 0])
    assert direct.total[1, 0] == pytest.approx(-10_000.0)
