"""Hedge sizing closed forms (ingest.modeling.sizing): exposure hedges, stress hedges, order splitting."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from ingest.modeling import sizing


def test_beta_hedge_is_minus_the_market_exposure_over_the_proxy_beta() -> None:
    # X_M = 2,000,000 of market exposure, SPY beta 1 → short $2,000,000 of SPY.
    assert sizing.hedge_exposure(2_000_000.0, 1.0, 1.0) == -2_000_000.0
    # Half of a size exposure of −30,000 with IWM (β_size = 1.25): buy 12,000.
    assert sizing.hedge_exposure(-30_000.0, 1.25, 0.5) == pytest.approx(12_000.0)
    assert math.isnan(sizing.hedge_exposure(1.0, 0.0, 1.0)) and math.isnan(sizing.hedge_exposure(1.0, math.nan, 1.0))


def test_whole_units_round_to_the_nearest_share() -> None:
    assert sizing.whole_units(-2_000_000.0, 530.0) == -3774  # 3773.58 → 3774
    assert sizing.whole_units(100.0, 530.0) == 0
    assert sizing.whole_units(math.nan, 530.0) == 0


def test_neutralising_the_rounded_hedge_leaves_less_than_half_a_share_of_exposure() -> None:
    x, price, beta = 1_234_567.0, 530.0, 0.98
    shares = sizing.whole_units(sizing.hedge_exposure(x, beta, 1.0), price)
    assert abs(x + shares * price * beta) <= 0.5 * price * beta


def test_stress_hedge_takes_the_smallest_hedge_meeting_the_target() -> None:
    # A long dollar of the instrument loses 0.30 in the crash and gains 0.10 in the rally.
    pnl = np.array([-1000.0, 500.0])
    per_dollar = np.array([[-0.3], [0.1]])
    result = sizing.stress_hedges(pnl, per_dollar, 0.5)
    # The crash must rise to −500: −1,000 − 0.3·H ≥ −500 → H ≤ −1,666.67; the rally then earns 333.33.
    assert result.exposure[0] == pytest.approx(-1666.6667, rel=1e-6)
    assert result.worst_after[0] == pytest.approx(-500.0)
    assert bool(result.target_met[0])


def test_stress_hedge_falls_back_to_the_best_achievable_when_the_target_is_out_of_reach() -> None:
    # The instrument helps the crash and hurts the other scenario one for one: the best is to meet in the middle.
    pnl = np.array([-1000.0, -200.0])
    per_dollar = np.array([[-1.0], [1.0]])
    result = sizing.stress_hedges(pnl, per_dollar, 0.9)
    assert result.exposure[0] == pytest.approx(-400.0)
    assert result.worst_after[0] == pytest.approx(-600.0)
    assert not bool(result.target_met[0])


def test_no_loss_needs_no_hedge_and_unusable_scenarios_are_ignored() -> None:
    assert sizing.stress_hedges(np.array([100.0, 50.0]), np.array([[0.1], [0.2]]), 0.5).exposure[0] == 0.0
    result = sizing.stress_hedges(np.array([-100.0, math.nan]), np.array([[0.5], [0.1]]), 1.0)
    assert result.exposure[0] == pytest.approx(200.0) and bool(result.target_met[0])


@pytest.mark.parametrize(
    ("held", "change", "orders"),
    [
        (Decimal(0), -100, [("short", Decimal(100))]),
        (Decimal(300), -1000, [("sell", Decimal(300)), ("short", Decimal(700))]),
        (Decimal(300), -200, [("sell", Decimal(200))]),
        (Decimal(-50), 80, [("cover", Decimal(50)), ("buy", Decimal(30))]),
        (Decimal(10), 5, [("buy", Decimal(5))]),
        (Decimal(10), 0, []),
    ],
)
def test_an_order_is_split_at_zero_so_every_part_obeys_the_side_rules(
    held: Decimal, change: int, orders: list[tuple[str, Decimal]]
) -> None:
    assert sizing.split_order(held, change) == orders
