"""Example 6 of calculations.md §10 (factor dollar exposures, market and rate scenarios) and the §5.3
invariants of the market-risk scenarios; the catalogue of §6.1."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from stress.catalogue import CATALOGUE, CATEGORIES
from stress.compute.market_risk import MARKET_RISK_SCENARIOS, market_risk
from stress.compute.revaluation import OptionLegs
from stress.compute.scenarios import MODEL_FACTORS, Book, ScenarioSet, direct_impact

F = MODEL_FACTORS
ALL = np.ones(len(F), dtype=bool)
STYLES = ("market", "value", "growth", "momentum", "quality", "size", "low_volatility")


def beta_row(**values: float) -> np.ndarray:
    row = np.zeros(len(F))
    for code, value in values.items():
        row[F.index(code)] = value
    return row


XYZ = beta_row(
    market=1.20,
    value=-0.30,
    growth=0.45,
    momentum=0.20,
    quality=0.10,
    size=-0.15,
    low_volatility=-0.25,
    interest_rate=-2.0,
)
ABC = beta_row(
    market=0.85,
    value=0.50,
    growth=-0.35,
    momentum=-0.10,
    quality=0.30,
    size=0.40,
    low_volatility=0.35,
    interest_rate=1.5,
)
V = 70_000.0


def example4_book() -> Book:
    """Example 4's book moving linearly: XYZ stock 50,000, ABC short −30,000, XYZ call 30,000, ABC put −13,125."""
    return Book(
        factors=F,
        portfolio_index=np.zeros(4, dtype=np.int64),
        n_portfolios=1,
        underlying_index=np.array([0, 1, 0, 1]),
        exposure=np.array([50_000.0, -30_000.0, 30_000.0, -13_125.0]),
        betas=np.vstack([XYZ, ABC]),
        option_positions=np.zeros(0, dtype=np.int64),
        legs=OptionLegs.empty(),
        equity=np.array([V]),
    )


def test_example6_factor_dollar_exposures_and_betas() -> None:
    book = example4_book()
    x = book.factor_exposures()[0]
    expected = {
        "market": 59_343.75,
        "value": -45_562.50,
        "growth": 51_093.75,
        "momentum": 20_312.50,
        "quality": -4_937.50,
        "size": -29_250.00,
        "low_volatility": -35_093.75,
    }
    assert {code: x[F.index(code)] for code in expected} == pytest.approx(expected, abs=1e-6)
    gross = book.gross_exposure()[0]
    assert gross == pytest.approx(123_125.0)
    assert x[F.index("market")] / V == pytest.approx(0.847768, abs=1e-6)
    assert x[F.index("quality")] / V == pytest.approx(-0.0705357, abs=1e-7)
    assert x[F.index("market")] / gross == pytest.approx(0.481980, abs=1e-6)
    assert x[F.index("low_volatility")] / gross == pytest.approx(-0.285025, abs=1e-6)
    per_position = book.position_factor_exposures()
    columns = [F.index(code) for code in STYLES]
    assert per_position[0, columns] == pytest.approx([60_000, -15_000, 22_500, 10_000, 5_000, -7_500, -12_500])
    assert per_position[1, columns] == pytest.approx([-25_500, -15_000, 10_500, 3_000, -9_000, -12_000, -10_500])
    # Not the legacy unsigned average beta × gross MV (90,162.50).
    assert x[F.index("market")] != pytest.approx(90_162.50)


@pytest.mark.parametrize(
    ("key", "pnl"),
    [
        ("market_up_5", 2_967.19),
        ("market_down_10", -5_934.38),
        ("market_up_20", 11_868.75),
        ("market_down_20", -11_868.75),
    ],
)
def test_example6_market_scenarios(key: str, pnl: float) -> None:
    result = market_risk(example4_book(), ALL)
    i = result.scenarios.keys.index(key)
    assert round(float(result.impacts.linear[i, 0]), 2) == pytest.approx(pnl, abs=0.005)
    # Every position moves linearly and no floor is hit: predicted = linear, no adjustment.
    assert result.impacts.total[i, 0] == pytest.approx(result.impacts.linear[i, 0], abs=1e-9)
    assert result.impacts.nonlinear[i, 0] == pytest.approx(0.0, abs=1e-9)


def test_example6_rates_exposure_scenarios_and_dv01() -> None:
    result = market_risk(example4_book(), ALL)
    assert result.rate_exposure[0] == pytest.approx(-224_687.50)
    assert result.dv01[0] == pytest.approx(-22.4688, abs=1e-4)
    pnl = {key: float(result.impacts.total[i, 0]) for i, key in enumerate(result.scenarios.keys)}
    assert round(pnl["ir_up_100bp"], 2) == pytest.approx(-2_246.88)
    assert round(pnl["ir_down_100bp"], 2) == pytest.approx(2_246.88)
    assert round(pnl["ir_up_200bp"], 2) == pytest.approx(-4_493.75)


def test_missing_rate_data_leaves_rate_outputs_null_not_zero() -> None:
    available = ALL.copy()
    available[F.index("interest_rate")] = False
    result = market_risk(example4_book(), available)
    assert np.isnan(result.rate_exposure[0]) and np.isnan(result.dv01[0]) and not result.rate_available
    rates = [i for i, (_, kind, _, _) in enumerate(MARKET_RISK_SCENARIOS) if kind == "interest_rate"]
    assert np.isnan(result.impacts.total[rates, 0]).all()
    assert np.isfinite(result.impacts.total[: rates[0], 0]).all()


# -- §5.3 invariants ---------------------------------------------------------------------------


def test_up_and_down_moves_are_mirror_images_without_options_or_floors() -> None:
    result = market_risk(example4_book(), ALL)
    total = result.impacts.total[:, 0]
    for i in range(0, len(MARKET_RISK_SCENARIOS), 2):  # (up, down) pairs of equal size
        assert MARKET_RISK_SCENARIOS[i][3] == -MARKET_RISK_SCENARIOS[i + 1][3]
        assert total[i] == pytest.approx(-total[i + 1], rel=1e-12)


def test_position_pnl_sums_to_the_scenario_total_with_options_revalued() -> None:
    book = Book(
        factors=F,
        portfolio_index=np.array([0, 0, 0, 1, 1]),
        n_portfolios=2,
        underlying_index=np.array([0, 1, 0, 1, 0]),
        exposure=np.array([50_000.0, -30_000.0, 30_000.0, 20_000.0, -5_000.0]),
        betas=np.vstack([XYZ, ABC]),
        option_positions=np.array([2]),
        legs=OptionLegs.build(
            spot=[50.0],
            strike=[50.0],
            time_to_expiry=[0.25],
            rate=[0.04],
            dividend_yield=[0.0],
            sigma=[0.3],
            is_call=[True],
            quantity=[10.0],
            multiplier=[100.0],
        ),
        equity=np.array([V, 20_000.0]),
    )
    result = market_risk(book, ALL)
    pnl = result.impacts.position_pnl
    assert result.impacts.total[:, 0] == pytest.approx(pnl[:, :3].sum(axis=1), rel=1e-12)
    assert result.impacts.total[:, 1] == pytest.approx(pnl[:, 3:].sum(axis=1), rel=1e-12)
    # The revalued long call is convex: an up move gains more than the same down move loses.
    assert (pnl[0::2, 2] + pnl[1::2, 2] > 0).all()


def test_market_down_10_stress_scenario_equals_the_minus_10_percent_market_scenario() -> None:
    rng = np.random.default_rng(3)
    n = 12
    book = Book(
        factors=F,
        portfolio_index=np.zeros(n, dtype=np.int64),
        n_portfolios=1,
        underlying_index=np.arange(n),
        exposure=rng.normal(0, 50_000, n),
        betas=rng.normal(0, 1, (n, len(F))),
        option_positions=np.array([0, 1]),
        legs=OptionLegs.build(
            spot=[100.0, 40.0],
            strike=[95.0, 45.0],
            time_to_expiry=[0.5, 0.1],
            rate=[0.04, 0.04],
            dividend_yield=[0.01, 0.0],
            sigma=[0.25, 0.5],
            is_call=[True, False],
            quantity=[5.0, -8.0],
            multiplier=[100.0, 100.0],
        ),
        equity=np.array([1e6]),
    )
    down10 = next(s for s in CATALOGUE if s.key == "market_down_10")
    up10 = next(s for s in CATALOGUE if s.key == "market_up_10")
    stress = direct_impact(book, ScenarioSet.build([down10.key, up10.key], [down10.shocks, up10.shocks]), ALL)
    market = market_risk(book, ALL)
    keys = market.scenarios.keys
    assert stress.total[0, 0] == market.impacts.total[keys.index("market_down_10"), 0]
    assert stress.total[1, 0] == market.impacts.total[keys.index("market_up_10"), 0]


# -- §6.1 catalogue ----------------------------------------------------------------------------


def test_catalogue_has_18_active_scenarios_in_5_categories() -> None:
    assert len(CATALOGUE) == 18 and all(s.is_active for s in CATALOGUE)
    assert Counter(s.category for s in CATALOGUE) == {
        "market": 4,
        "rates": 5,
        "rotation": 4,
        "volatility": 2,
        "historical": 3,
    }
    assert set(CATEGORIES) == {s.category for s in CATALOGUE}
    by_key = {s.key: s for s in CATALOGUE}
    assert dict(by_key["financial_crisis_2008"].shocks) == {
        "market": -0.45,
        "value": -0.30,
        "size": -0.25,
        "quality": 0.20,
        "low_volatility": -0.35,
    }
    assert dict(by_key["rate_spike_300bp"].shocks) == {"interest_rate": 0.03}
    assert all(code in F for s in CATALOGUE for code in s.shocks)
    assert all(abs(v) <= 1.0 for s in CATALOGUE for v in s.shocks.values())
