"""Performance statistics (calculations.md §8.5) against §10 Example 10a, and period summaries."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from stress.compute import performance as perf

R_P = np.array([0.012, -0.008, 0.005, -0.015, -0.010, 0.020, 0.004, -0.006, 0.011, 0.003])
R_M = np.array([0.010, -0.006, 0.004, -0.012, -0.007, 0.015, 0.002, -0.004, 0.008, 0.001])
RF = np.full(R_P.shape, 0.0432 / 252)


def test_example_10a_volatility_sharpe_sortino() -> None:
    assert float(np.mean(R_P)) == pytest.approx(0.0016, rel=1e-4)
    assert float(np.std(R_P, ddof=1)) == pytest.approx(0.0111275, rel=1e-4)
    assert perf.annualized_volatility(R_P) == pytest.approx(0.176644, rel=1e-4)
    assert perf.sharpe_ratio(R_P, RF) == pytest.approx(2.03799, rel=1e-4)
    assert perf.sortino_ratio(R_P, RF) == pytest.approx(3.42470, rel=1e-4)


def test_example_10a_realized_beta_alpha_r_squared() -> None:
    reg = perf.regress(R_M, R_P)
    assert reg.beta == pytest.approx(1.311868, rel=1e-4)
    assert reg.alpha == pytest.approx(0.000156945, rel=1e-4)
    assert reg.r_squared == pytest.approx(0.992848, rel=1e-4)
    assert reg.correlation == pytest.approx(math.sqrt(0.992848), rel=1e-4)
    assert reg.observations == 10


def test_example_10a_total_return_and_max_drawdown_with_dates() -> None:
    assert perf.total_return(R_P) == pytest.approx(0.0155517, rel=1e-4)
    mdd = perf.max_drawdown(R_P)
    assert mdd is not None
    assert mdd.value == pytest.approx(-0.0278145, rel=1e-4)
    # Positions in the wealth index: 0 is W_0 = 1, day k is after the k-th return.
    assert (mdd.peak, mdd.trough, mdd.recovery) == (1, 5, 9)
    w = perf.wealth_index(R_P)
    assert w[1] == pytest.approx(1.012) and w[5] == pytest.approx(0.983852, rel=1e-6)


def test_stats_need_60_observations_except_max_drawdown() -> None:
    short = perf.performance_stats(R_P, RF)
    assert short.observations == 10
    assert short.annualized_volatility is None and short.sharpe_ratio is None and short.best_index is None
    assert short.max_drawdown is not None and short.max_drawdown.value == pytest.approx(-0.0278145, rel=1e-4)
    full = perf.performance_stats(R_P, RF, min_observations=10)
    assert full.annualized_volatility == pytest.approx(0.176644, rel=1e-4)
    assert full.sharpe_ratio == pytest.approx(2.03799, rel=1e-4)
    assert full.best_index == 5 and full.worst_index == 3
    assert full.positive_days_pct == pytest.approx(0.6)
    assert full.risk_free_rate == pytest.approx(0.0432)
    assert full.annualized_return == pytest.approx(1.0155517 ** (252 / 10) - 1, rel=1e-4)


def test_max_drawdown_needs_two_returns_and_is_zero_without_a_loss() -> None:
    assert perf.max_drawdown(np.array([0.01])) is None
    flat = perf.max_drawdown(np.array([0.01, 0.02, 0.0]))
    assert flat == perf.MaxDrawdown(0.0, None, None, None)


def test_drawdown_from_the_base_has_peak_zero_and_no_recovery() -> None:
    mdd = perf.max_drawdown(np.array([-0.01, -0.02, 0.005]))
    assert mdd is not None and (mdd.peak, mdd.trough, mdd.recovery) == (0, 2, None)


def test_sortino_and_sharpe_are_undefined_when_denominators_vanish() -> None:
    rising = np.full(70, 0.01)
    assert math.isnan(perf.sortino_ratio(rising, np.zeros(70)))
    assert math.isnan(perf.sharpe_ratio(rising, np.zeros(70)))


def test_risk_free_uses_last_available_value_and_first_value_before_any() -> None:
    rate_dates = np.array(["2026-11-02", "2026-11-05"], dtype="datetime64[D]")
    values = np.array([0.0400, 0.0420])
    days = np.array(["2026-11-01", "2026-11-03", "2026-11-05", "2026-11-09"], dtype="datetime64[D]")
    rf = perf.daily_risk_free(rate_dates, values, days)
    assert rf.tolist() == pytest.approx([0.04 / 252, 0.04 / 252, 0.042 / 252, 0.042 / 252])
    assert np.isnan(perf.daily_risk_free(rate_dates[:0], values[:0], days)).all()


def test_benchmark_returns_discard_moves_across_price_gaps() -> None:
    dates = np.array(["2026-11-02", "2026-11-03", "2026-11-05", "2026-11-06"], dtype="datetime64[D]")
    prices = np.array([100.0, 101.0, 99.0, 99.99])
    previous = np.array(["2026-10-30", "2026-11-02", "2026-11-04", "2026-11-05"], dtype="datetime64[D]")
    ret_dates, rets = perf.benchmark_returns(dates, prices, previous)
    assert ret_dates.tolist() == [date(2026, 11, 3), date(2026, 11, 6)]
    assert rets.tolist() == pytest.approx([0.01, 0.01])


def test_align_inner_joins_on_date_and_drops_missing_pairs() -> None:
    a_dates = np.array(["2026-11-02", "2026-11-03", "2026-11-04"], dtype="datetime64[D]")
    b_dates = np.array(["2026-11-03", "2026-11-04", "2026-11-05"], dtype="datetime64[D]")
    a, b = perf.align(a_dates, np.array([1.0, 2.0, np.nan]), b_dates, np.array([20.0, 30.0, 40.0]))
    assert a.tolist() == [2.0] and b.tolist() == [20.0]


def series() -> perf.SnapshotSeries:
    dates = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]
    return perf.SnapshotSeries.build(
        dates,
        [100_000_00, 101_000_00, 100_000_00, 102_000_00, 102_000_00],
        [500_00, 1_000_00, -1_000_00, 2_000_00, 0.0],
        [np.nan, 0.01, -0.00990099, 0.02, 0.0],
    )


def test_period_summary_chains_returns_and_sums_pnl() -> None:
    s = perf.summarize_period(series(), date(2026, 11, 4), date(2026, 11, 6), first_available=date(2026, 11, 2))
    assert s.pnl == 1_000_00
    assert s.return_ == pytest.approx((1 - 0.00990099) * 1.02 - 1)
    assert s.observations == 3 and not s.partial


def test_period_starting_at_or_before_history_is_partial_unless_whole_history() -> None:
    first = date(2026, 11, 2)
    s = perf.summarize_period(series(), date(2026, 10, 1), date(2026, 11, 6), first_available=first)
    assert s.partial and s.observations == 4 and s.pnl == 2_500_00
    whole = perf.summarize_period(series(), first, date(2026, 11, 6), first_available=first, whole_history=True)
    assert not whole.partial


def test_missing_return_inside_a_period_makes_it_partial() -> None:
    base = series()
    gap = perf.SnapshotSeries(base.dates, base.equity, base.daily_pnl, np.array([np.nan, 0.01, np.nan, 0.02, 0.0]))
    s = perf.summarize_period(gap, date(2026, 11, 3), date(2026, 11, 6), first_available=date(2026, 11, 2))
    assert s.partial and s.observations == 3


def test_empty_period_has_no_pnl_and_is_partial() -> None:
    s = perf.summarize_period(series(), date(2026, 12, 1), date(2026, 12, 5), first_available=date(2026, 11, 2))
    assert s == perf.PeriodSummary(None, None, True, 0)
