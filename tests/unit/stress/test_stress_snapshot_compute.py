"""Snapshot compute (calculations.md §2, §3.5, §9): exposures, invariants, counts, partial inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stress.compute.snapshot import (
    ChainAnchor,
    ClosedPositions,
    HeldPositions,
    build_snapshot,
    chain_returns,
    closed_day_pnl,
)

NAN = math.nan


def cents(x: float) -> float:
    return round(x * 100)


def example4_book() -> HeldPositions:
    # calculations.md §10 Example 4: XYZ stock, ABC short, XYZ long call (Δ 0.60), ABC long put (Δ −0.35).
    q = [1000, -400, 10, 5]
    m = [1, 1, 100, 100]
    p = [50.0, 75.0, 3.0, 2.5]
    s = [50.0, 75.0, 50.0, 75.0]
    delta = [1.0, 1.0, 0.60, -0.35]
    mv = [cents(qi * mi * pi) for qi, mi, pi in zip(q, m, p, strict=True)]
    de = [cents(qi * mi * di * si) for qi, mi, di, si in zip(q, m, delta, s, strict=True)]
    notional = [cents(abs(qi) * mi * si) for qi, mi, si in zip(q, m, s, strict=True)]
    return HeldPositions.build(
        quantity=q,
        is_option=[False, False, True, True],
        position_type=["LONG", "SHORT", "LC", "LP"],
        market_value=mv,
        dollar_exposure=de,
        notional=notional,
        unrealized_pnl=[0, 0, 0, 0],
        daily_pnl=[0, 0, 0, 0],
        dollar_gamma_1pct=[NAN, NAN, cents(120.5), cents(-40.25)],
        theta=[NAN, NAN, -12.5, -3.0],
        vega=[NAN, NAN, 40.0, 15.0],
        rho=[NAN, NAN, 9.0, -4.0],
    )


def test_example4_mixed_book_capital_and_directional_views() -> None:
    f = build_snapshot(example4_book(), ClosedPositions.empty(), cents(45_750))
    assert (f.long_mv, f.short_mv, f.gross_mv, f.net_mv) == (
        cents(54_250),
        cents(-30_000),
        cents(84_250),
        cents(24_250),
    )
    assert f.equity == cents(70_000)
    assert (f.long_exposure, f.short_exposure) == (cents(80_000), cents(-43_125))
    assert (f.gross_exposure, f.net_exposure, f.notional) == (cents(123_125), cents(36_875), cents(167_500))
    assert f.gross_leverage == pytest.approx(1.75893, rel=1e-4)
    assert f.net_leverage == pytest.approx(0.526786, rel=1e-4)
    # By holding side: 3 long, 1 short; the long put is a long holding with short exposure.
    assert (f.num_positions, f.num_long, f.num_short, f.num_stocks, f.num_options) == (4, 3, 1, 2, 2)
    assert f.counts_by_type == {"LONG": 1, "SHORT": 1, "LC": 1, "LP": 1, "SC": 0, "SP": 0}
    assert f.inputs_status == "complete"
    assert not f.cash_unknown


def test_portfolio_dollar_greeks_sum_options_and_dollar_delta_equals_net_exposure() -> None:
    f = build_snapshot(example4_book(), ClosedPositions.empty(), cents(45_750))
    assert f.dollar_delta == f.net_exposure
    assert f.dollar_gamma_1pct == cents(120.5) + cents(-40.25)
    assert (f.theta, f.vega, f.rho) == (pytest.approx(-15.5), pytest.approx(55.0), pytest.approx(5.0))


def random_book(rng: np.random.Generator, n: int) -> HeldPositions:
    is_option = rng.random(n) < 0.3
    q = np.where(is_option, rng.integers(1, 50, n), rng.integers(1, 5000, n)) * rng.choice([-1, 1], n)
    m = np.where(is_option, 100, 1)
    price = np.round(rng.uniform(0.5, 900, n), 4)
    under = np.where(is_option, np.round(rng.uniform(10, 900, n), 4), price)
    delta = np.where(is_option, rng.uniform(-1, 1, n), 1.0)
    mv = np.round(q * m * price * 100)
    de = np.round(q * m * delta * under * 100)
    de[is_option & (rng.random(n) < 0.1)] = np.nan  # some options without a delta
    types = np.where(is_option, np.where(q > 0, "LC", "SC"), np.where(q > 0, "LONG", "SHORT"))
    return HeldPositions.build(
        quantity=q,
        is_option=is_option,
        position_type=types,
        market_value=mv,
        dollar_exposure=de,
        notional=np.round(np.abs(q) * m * under * 100),
        unrealized_pnl=np.round(rng.normal(0, 1e6, n)),
        daily_pnl=np.round(rng.normal(0, 1e5, n)),
    )


@pytest.mark.parametrize("seed", range(20))
def test_section_2_5_identities_hold_exactly_in_both_views(seed: int) -> None:
    f = build_snapshot(random_book(np.random.default_rng(seed), 400), ClosedPositions.empty(), cents(1_000_000))
    assert f.gross_mv == f.long_mv + abs(f.short_mv)
    assert f.net_mv == f.long_mv + f.short_mv
    assert f.gross_exposure == f.long_exposure + abs(f.short_exposure)
    assert f.net_exposure == f.long_exposure + f.short_exposure
    assert f.gross_mv >= abs(f.net_mv) and f.gross_exposure >= abs(f.net_exposure)
    assert f.long_mv >= 0 >= f.short_mv and f.long_exposure >= 0 >= f.short_exposure
    assert f.num_long + f.num_short == f.num_positions == f.num_stocks + f.num_options


def test_stock_only_book_has_exposure_equal_to_market_value() -> None:
    book = HeldPositions.build(
        quantity=[100, -50],
        is_option=[False, False],
        position_type=["LONG", "SHORT"],
        market_value=[cents(10_000), cents(-4_000)],
        dollar_exposure=[cents(10_000), cents(-4_000)],
        notional=[cents(10_000), cents(4_000)],
        unrealized_pnl=[0, 0],
        daily_pnl=[0, 0],
    )
    f = build_snapshot(book, ClosedPositions.empty(), 0.0)
    assert f.gross_exposure == f.gross_mv == f.notional == cents(14_000)
    # No options: the portfolio Greeks are a computed zero, not unknown.
    assert (f.dollar_gamma_1pct, f.theta, f.vega, f.rho) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(10))
def test_without_trades_or_flows_equity_change_equals_daily_pnl(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    is_option = rng.random(n) < 0.25
    q = np.where(is_option, rng.integers(1, 40, n), rng.integers(1, 3000, n)) * rng.choice([-1, 1], n)
    m = np.where(is_option, 100, 1)
    p_prev = np.round(rng.uniform(1, 500, n), 4)
    p_now = np.round(p_prev * (1 + rng.normal(0, 0.03, n)), 4)
    cash = cents(250_000.0)

    def day(price: np.ndarray, pnl: np.ndarray) -> HeldPositions:
        mv = np.round(q * m * price * 100)
        return HeldPositions.build(
            quantity=q,
            is_option=is_option,
            position_type=np.where(q > 0, "LONG", "SHORT"),
            market_value=mv,
            dollar_exposure=mv,
            notional=np.abs(mv),
            unrealized_pnl=np.zeros(n),
            daily_pnl=pnl,
        )

    prev = build_snapshot(day(p_prev, np.zeros(n)), ClosedPositions.empty(), cash)
    # Daily P&L per position (§1.3, held through both closes) = MV_t − MV_prev, each rounded to the cent.
    pnl = np.round(q * m * p_now * 100) - np.round(q * m * p_prev * 100)
    now = build_snapshot(day(p_now, pnl), ClosedPositions.empty(), cash)
    assert now.equity - prev.equity == now.daily_pnl


def test_unpriced_stale_and_delta_less_positions_are_counted_and_make_inputs_partial() -> None:
    book = HeldPositions.build(
        quantity=[100, 10, 5, 200],
        is_option=[False, True, True, False],
        position_type=["LONG", "LC", "LP", "LONG"],
        market_value=[cents(5_000), cents(3_000), NAN, cents(1_000)],
        dollar_exposure=[cents(5_000), NAN, NAN, cents(1_000)],
        notional=[cents(5_000), cents(50_000), NAN, cents(1_000)],
        unrealized_pnl=[cents(100), cents(-50), NAN, 0],
        daily_pnl=[cents(10), cents(5), NAN, NAN],
        stale=[False, False, False, True],
    )
    f = build_snapshot(book, ClosedPositions.empty(), 0.0)
    assert f.positions_unpriced == 1
    assert f.positions_stale == 1
    assert f.options_without_greeks == 2
    assert f.inputs_status == "partial"
    assert {"positions_unpriced", "options_without_greeks", "greeks_missing", "daily_pnl_missing"} <= set(f.missing)
    # Unpriced positions are excluded from aggregates, never valued at zero-by-accident.
    assert f.net_mv == cents(9_000) and f.notional == cents(56_000) and f.unrealized_pnl_total == cents(50)
    assert f.net_exposure == cents(6_000)
    # Options exist but none has Greeks: the portfolio Greeks are unknown, not zero.
    assert (f.dollar_gamma_1pct, f.theta, f.vega, f.rho) == (None, None, None, None)


def test_missing_cash_record_sets_cash_unknown_and_partial() -> None:
    f = build_snapshot(example4_book(), ClosedPositions.empty(), None)
    assert f.cash_unknown and f.cash_balance == 0.0
    assert f.equity == f.net_mv
    assert f.inputs_status == "partial"


def test_non_positive_equity_leaves_leverage_undefined() -> None:
    book = HeldPositions.build(
        quantity=[-100],
        is_option=[False],
        position_type=["SHORT"],
        market_value=[cents(-5_000)],
        dollar_exposure=[cents(-5_000)],
        notional=[cents(5_000)],
        unrealized_pnl=[0],
        daily_pnl=[0],
    )
    f = build_snapshot(book, ClosedPositions.empty(), 0.0)
    assert f.equity < 0
    assert f.gross_leverage is None and f.net_leverage is None
    assert "equity_undefined" in f.flags


def test_empty_book_snapshot_is_cash_only() -> None:
    f = build_snapshot(HeldPositions.empty(), ClosedPositions.empty(), cents(1234.56))
    assert f.equity == cents(1234.56)
    assert f.num_positions == 0 and f.gross_exposure == 0 and f.daily_pnl == 0
    assert f.gross_leverage == 0.0
    assert f.inputs_status == "complete"


def test_positions_closed_today_add_realised_day_pnl() -> None:
    closed = ClosedPositions.build(
        # held at prev close: 100 × (110 − 104); opened and closed today: realised P&L as stored
        quantity=[100, -2],
        multiplier=[1, 100],
        entry_price=[90.0, 5.0],
        exit_price=[110.0, 3.5],
        prev_price=[104.0, NAN],
        opened_after_prev=[False, True],
        realized_pnl=[cents(2_000), cents(300)],
    )
    assert closed_day_pnl(closed).tolist() == [cents(600), cents(300)]
    book = HeldPositions.build(
        quantity=[10],
        is_option=[False],
        position_type=["LONG"],
        market_value=[cents(1_000)],
        dollar_exposure=[cents(1_000)],
        notional=[cents(1_000)],
        unrealized_pnl=[0],
        daily_pnl=[cents(25)],
    )
    f = build_snapshot(book, closed, 0.0)
    assert f.daily_pnl == cents(25 + 600 + 300)
    assert f.realized_pnl_day == cents(2_300)
    assert f.num_positions == 1  # closed positions are no longer held
    assert f.inputs_status == "complete"


def test_closed_position_without_previous_price_makes_inputs_partial() -> None:
    closed = ClosedPositions.build(
        quantity=[100],
        multiplier=[1],
        entry_price=[90.0],
        exit_price=[110.0],
        prev_price=[NAN],
        opened_after_prev=[False],
        realized_pnl=[cents(2_000)],
    )
    f = build_snapshot(HeldPositions.empty(), closed, 0.0)
    assert f.daily_pnl == 0.0
    assert "closed_pnl_missing" in f.missing


def test_return_chain_links_daily_returns_and_cumulative_pnl() -> None:
    anchor = ChainAnchor(equity=cents(100_000), cumulative_pnl=cents(5_000), cumulative_return=0.05)
    result = chain_returns(anchor, [cents(101_000), cents(99_990)], [cents(1_000), cents(-1_010)])
    assert result.daily_return.tolist() == pytest.approx([0.01, -0.01])
    assert result.cumulative_pnl.tolist() == [cents(6_000), cents(4_990)]
    assert result.cumulative_return.tolist() == pytest.approx([1.05 * 1.01 - 1, 1.05 * 1.01 * 0.99 - 1])


def test_first_snapshot_has_no_return_and_starts_the_chain() -> None:
    result = chain_returns(None, [cents(100_000), cents(102_000)], [cents(700), cents(2_000)])
    assert math.isnan(result.daily_return[0])
    assert result.daily_return[1] == pytest.approx(0.02)
    assert result.cumulative_pnl.tolist() == [cents(700), cents(2_700)]
    assert result.cumulative_return.tolist() == pytest.approx([0.0, 0.02])


def test_non_positive_previous_equity_gives_null_return_and_breaks_cumulative_return() -> None:
    anchor = ChainAnchor(equity=cents(-10), cumulative_pnl=0.0, cumulative_return=0.1)
    result = chain_returns(anchor, [cents(100)], [cents(110)])
    assert math.isnan(result.daily_return[0])
    assert math.isnan(result.cumulative_return[0])
    assert result.cumulative_pnl[0] == cents(110)


def test_closed_position_already_valued_today_is_realised_but_not_counted_twice() -> None:
    closed = ClosedPositions.build(
        quantity=[100],
        multiplier=[1],
        entry_price=[90.0],
        exit_price=[110.0],
        prev_price=[104.0],
        opened_after_prev=[False],
        realized_pnl=[cents(2_000)],
        valued_on_t0=[True],
    )
    # ingest valued the position on its exit day: its day P&L (+600) is in the held rows already.
    book = HeldPositions.build(
        quantity=[100],
        is_option=[False],
        position_type=["LONG"],
        market_value=[cents(11_000)],
        dollar_exposure=[cents(11_000)],
        notional=[cents(11_000)],
        unrealized_pnl=[0],
        daily_pnl=[cents(600)],
    )
    f = build_snapshot(book, closed, 0.0)
    assert f.daily_pnl == cents(600)
    assert f.realized_pnl_day == cents(2_000)
