"""Risk metrics (calculations.md §8) against §10 Examples 9 and 10a, the EWMA definition, the
delta-gamma series, the market-beta proxy fill and the VaR backtest with Kupiec's POF test."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.stats import chi2

from stress.compute import var as v
from stress.compute.backtest import backtest_level, kupiec_pof, var_backtest
from stress.compute.risk_metrics import (
    MarketWindow,
    PortfolioRiskInputs,
    SnapshotHistory,
    backtest_block,
    ewma_block,
    performance_from_series,
    portfolio_risk,
)

# -- Example 9: parametric --------------------------------------------------------------------

E9 = np.array([80_000.0, -43_125.0])
VOLS = np.array([0.020, 0.015])
COV9 = np.outer(VOLS, VOLS) * np.array([[1.0, 0.40], [0.40, 1.0]])


def test_example_9_parametric_sigma_and_ex_ante_volatility() -> None:
    sigma = v.parametric_sigma(E9, COV9)
    assert sigma == pytest.approx(1_466.440, rel=1e-4)
    annual = sigma * math.sqrt(252)
    assert annual == pytest.approx(23_279.02, rel=1e-4)
    assert annual / 70_000 == pytest.approx(0.332557, rel=1e-4)


@pytest.mark.parametrize(
    ("alpha", "z", "var1", "var10", "es1", "es10"),
    [
        (0.95, 1.644854, 2_412.080, 7_627.666, 3_024.845, 9_565.401),
        (0.99, 2.326348, 3_411.450, 10_787.95, 3_908.378, 12_359.38),
    ],
)
def test_example_9_parametric_var_and_es_one_and_ten_days(
    alpha: float, z: float, var1: float, var10: float, es1: float, es10: float
) -> None:
    sigma = v.parametric_sigma(E9, COV9)
    tail = v.parametric_var_es(sigma, alpha)
    assert v.z_score(alpha) == pytest.approx(z, rel=1e-6)
    assert tail.var == pytest.approx(var1, rel=1e-4)
    assert tail.es == pytest.approx(es1, rel=1e-4)
    assert v.horizon_scale(tail.var, 10) == pytest.approx(var10, rel=1e-4)
    assert v.horizon_scale(tail.es, 10) == pytest.approx(es10, rel=1e-4)


def test_es_factors_match_the_spec_constants() -> None:
    assert v.es_factor(0.95) == pytest.approx(2.062713, rel=1e-6)
    assert v.es_factor(0.99) == pytest.approx(2.665214, rel=1e-6)


def test_parametric_sigma_equals_the_sample_std_of_the_linear_pnl_series() -> None:
    rng = np.random.default_rng(7)
    r = rng.multivariate_normal([0.0, 0.0], COV9, size=252)
    e = E9
    assert v.parametric_sigma(e, np.cov(r, rowvar=False, ddof=1)) == pytest.approx(
        float(np.std(r @ e, ddof=1)), rel=1e-12
    )


# -- Example 9: historical --------------------------------------------------------------------

T = np.arange(1, 253)
PNL9 = 1000 * np.sin(0.37 * T) + 400 * np.sin(1.91 * T + 0.5) - 50


def test_example_9_historical_series_check_values() -> None:
    assert PNL9[0] == pytest.approx(578.8377, rel=1e-6)
    assert PNL9.sum() == pytest.approx(-11_874.84, rel=1e-6)


@pytest.mark.parametrize(
    ("alpha", "k", "var1", "es1", "var10"),
    [(0.95, 13, 1_261.780, 1_341.199, 3_990.100), (0.99, 3, 1_423.097, 1_426.255, 4_500.228)],
)
def test_example_9_historical_var_and_es(alpha: float, k: int, var1: float, es1: float, var10: float) -> None:
    tail = v.historical_var_es(PNL9, alpha)
    assert tail.k == k
    assert tail.var == pytest.approx(var1, rel=1e-4)
    assert tail.es == pytest.approx(es1, rel=1e-4)
    assert v.horizon_scale(tail.var, 10) == pytest.approx(var10, rel=1e-4)


def test_tail_count_is_exact_where_binary_floats_are_not() -> None:
    assert v.tail_count(252, 0.95) == 13 and v.tail_count(252, 0.99) == 3
    assert v.tail_count(100, 0.95) == 5  # 100 × 0.050000000000000044 must not give 6
    assert v.tail_count(60, 0.99) == 1 and v.tail_count(60, 0.95) == 3


# -- EWMA ------------------------------------------------------------------------------------


def test_ewma_weights_sum_to_one_with_the_newest_day_largest() -> None:
    w = v.ewma_weights(252)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert w[0] == pytest.approx(0.06 / (1 - 0.94**252), rel=1e-15)
    assert w[0] == w.max() and np.all(np.diff(w) < 0)
    assert v.ewma_effective_days() == pytest.approx(32.333, rel=1e-4)


def test_ewma_covariance_weights_the_most_recent_row_most_and_does_not_demean() -> None:
    rows = np.array([[0.01, 0.0], [0.0, 0.02], [0.03, -0.01]])  # ascending: the last row is t0
    w = v.ewma_weights(3)
    expected = w[0] * np.outer(rows[2], rows[2]) + w[1] * np.outer(rows[1], rows[1]) + w[2] * np.outer(rows[0], rows[0])
    np.testing.assert_allclose(v.ewma_covariance(rows), expected, rtol=1e-14)
    e = np.array([1_000.0, -500.0])
    assert v.ewma_sigma(rows @ e) == pytest.approx(math.sqrt(e @ expected @ e), rel=1e-12)


# -- Delta-gamma series and the proxy fill -----------------------------------------------------


def test_delta_gamma_and_delta_only_series_differ_only_through_option_gamma() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.02, size=(252, 3))
    e = np.array([50_000.0, -20_000.0, 10_000.0])
    no_gamma = np.zeros(3)
    stock_only = v.ex_ante_pnl(r, e, no_gamma)
    np.testing.assert_allclose(stock_only, r @ e, rtol=1e-14)
    # An option on the third underlying adds ½Γ$r² on that column only.
    gamma = np.array([0.0, 0.0, 4.0e6])
    with_option = v.ex_ante_pnl(r, e, gamma)
    np.testing.assert_allclose(with_option - stock_only, 0.5 * 4.0e6 * r[:, 2] ** 2, rtol=1e-9, atol=1e-9)
    assert np.all(with_option >= stock_only)  # long gamma never lowers a scenario P&L


def test_aggregate_underlyings_sums_positions_on_the_same_underlying() -> None:
    book = v.aggregate_underlyings(np.array([2, 0, 2]), np.array([100.0, 50.0, -30.0]), np.array([0.0, 0.0, 7.0]))
    assert book.columns.tolist() == [0, 2]
    assert book.exposure.tolist() == [50.0, 70.0]
    assert book.gamma_dollar.tolist() == [0.0, 7.0]


def test_missing_returns_are_proxied_by_beta_times_market_and_never_by_zero() -> None:
    rng = np.random.default_rng(11)
    market = rng.normal(0, 0.01, 100)
    full = 1.5 * market + rng.normal(0, 0.002, 100)
    short_history = market.copy()
    returns = np.column_stack([full, full, short_history, full])
    returns[10:15, 0] = np.nan  # stored beta available
    returns[20:22, 1] = np.nan  # no stored beta: window OLS beta
    returns[: 100 - 30, 2] = np.nan  # only 30 returns: β = 1
    stored = np.array([1.2, np.nan, 0.7, np.nan])
    panel = v.fill_panel(returns, market, stored)
    assert np.isfinite(panel.returns).all()
    np.testing.assert_allclose(panel.returns[10:15, 0], 1.2 * market[10:15])
    ols = v.window_betas(returns[:, [1]], market)[0]
    np.testing.assert_allclose(panel.returns[20:22, 1], ols * market[20:22])
    np.testing.assert_allclose(panel.returns[:70, 2], market[:70])
    assert panel.reason.tolist() == [v.REASON_STORED_BETA, v.REASON_WINDOW_BETA, v.REASON_DEFAULT_BETA, ""]
    assert panel.proxied.tolist() == [5, 2, 70, 0]
    assert not np.any(panel.returns[10:15, 0] == 0.0)


# -- Example 10a via the performance block -----------------------------------------------------

R_P = np.array([0.012, -0.008, 0.005, -0.015, -0.010, 0.020, 0.004, -0.006, 0.011, 0.003])
R_M = np.array([0.010, -0.006, 0.004, -0.012, -0.007, 0.015, 0.002, -0.004, 0.008, 0.001])
DAYS = np.array([np.datetime64("2026-01-05") + i for i in range(11)], dtype="datetime64[D]")


def _window(dates: np.ndarray, market: np.ndarray, rf: float = 0.0432) -> MarketWindow:
    panel = v.fill_panel(market[:, None], market, np.array([1.0]))
    return MarketWindow(
        dates=dates,
        base_date=None,
        market=market,
        symbols=("SPY",),
        panel=panel,
        rf_dates=np.array([dates[0] - 30], dtype="datetime64[D]"),
        rf_values=np.array([rf]),
    )


def test_example_10a_performance_numbers() -> None:
    window = _window(DAYS[1:], R_M)
    p = performance_from_series(R_P, DAYS[1:], DAYS[0], "realized", window, min_observations=2)
    assert p.observations == 10 and p.series_type == "realized"
    assert p.volatility == pytest.approx(0.176644, rel=1e-4)
    assert p.sharpe == pytest.approx(2.03799, rel=1e-4)
    assert p.sortino == pytest.approx(3.42470, rel=1e-4)
    assert p.beta == pytest.approx(1.311868, rel=1e-4)
    assert p.alpha_daily == pytest.approx(0.000156945, rel=1e-4)
    assert p.r_squared == pytest.approx(0.992848, rel=1e-4)
    assert p.max_drawdown == pytest.approx(-0.0278145, rel=1e-4)
    # Peak after day 1, trough after day 5, recovered on day 9 (dates of those returns).
    assert p.peak_date == date(2026, 1, 6)
    assert p.trough_date == date(2026, 1, 10)
    assert p.recovery_date == date(2026, 1, 14)
    assert not p.risk_free_default


def test_performance_below_sixty_observations_keeps_only_max_drawdown() -> None:
    window = _window(DAYS[1:], R_M)
    p = performance_from_series(R_P, DAYS[1:], DAYS[0], "realized", window)
    assert p.volatility is None and p.sharpe is None and p.sortino is None and p.beta is None
    assert p.max_drawdown == pytest.approx(-0.0278145, rel=1e-4)


# -- Kupiec POF and the backtest ---------------------------------------------------------------


def test_kupiec_pof_matches_a_hand_computed_value() -> None:
    # 13 exceptions in 250 days at 99 %: p = 0.01, x/T = 0.052.
    t, x, p = 250, 13, 0.01
    hand = -2 * ((t - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (t - x) * math.log(1 - x / t) + x * math.log(x / t)
    )
    assert hand == pytest.approx(22.3170, rel=1e-4)
    lr, p_value = kupiec_pof(x, t, 0.99)
    assert lr == pytest.approx(hand, rel=1e-12)
    assert p_value == pytest.approx(chi2.sf(hand, 1), rel=1e-12)
    assert p_value < 0.05


def test_kupiec_pof_is_zero_at_the_expected_rate_and_finite_without_exceptions() -> None:
    lr, p_value = kupiec_pof(5, 100, 0.95)
    assert lr == pytest.approx(0.0, abs=1e-12) and p_value == pytest.approx(1.0)
    lr0, _ = kupiec_pof(0, 250, 0.99)
    assert lr0 == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)


def test_backtest_counts_losses_beyond_the_previous_days_var() -> None:
    var = np.full(100, 1_000.0)
    pnl = np.full(100, 10.0)
    pnl[[5, 17, 40]] = [-1_500.0, -1_000.0, -1_000.01]  # exactly at VaR is not an exception
    level, used = backtest_level(var, pnl, 0.99)
    assert level.exceptions == 2 and level.observations == 100 and used.all()
    assert level.exception_rate == pytest.approx(0.02)
    assert level.expected_exceptions == pytest.approx(1.0)
    assert level.result == "accept"


def test_backtest_with_too_little_history_is_null_with_a_reason() -> None:
    level, _ = backtest_level(np.full(30, 1.0), np.zeros(30), 0.95)
    assert level.exceptions is None and level.kupiec_lr is None and level.reason == "insufficient_history"
    bt = var_backtest(np.full(30, 1.0), np.full(30, 1.0), np.zeros(30))
    assert bt.status == "insufficient_history"


def test_backtest_block_pairs_only_consecutive_trading_days() -> None:
    days = [date(2026, 1, 2) + timedelta(days=i) for i in range(80)]
    prev = [d - timedelta(days=1) for d in days]
    prev[50] = days[48]  # a gap: day 49 missing → the pair (48, 50) is not used
    pnl = np.zeros(80)
    pnl[50] = -5_000.0
    var = np.full(80, 100.0)
    block = backtest_block(SnapshotHistory.build(days, prev, pnl, np.zeros(80), var, var))
    levels = {lvl["confidence"]: lvl for lvl in block["levels"]}
    assert levels[0.95]["observations"] == 78 and levels[0.95]["exceptions"] == 0
    assert block["status"] == "ok" and block["start_date"] == days[1].isoformat()


# -- The whole portfolio computation -----------------------------------------------------------


def _market_window(n: int = 252, seed: int = 5) -> tuple[MarketWindow, np.ndarray]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.01, n)
    other = 1.3 * market + rng.normal(0, 0.01, n)
    returns = np.column_stack([market, other])
    dates = np.array([np.datetime64("2025-06-02") + i for i in range(n)], dtype="datetime64[D]")
    window = MarketWindow(
        dates=dates,
        base_date=dates[0] - 1,
        market=market,
        symbols=("SPY", "AAA"),
        panel=v.fill_panel(returns, market, np.array([1.0, 1.3])),
        rf_dates=np.array([], dtype="datetime64[D]"),
        rf_values=np.array([]),
    )
    return window, returns


def test_portfolio_risk_combines_var_volatility_and_simulated_performance() -> None:
    window, returns = _market_window()
    inputs = PortfolioRiskInputs(
        equity=100_000.0,
        columns=np.array([0, 1, 1]),
        exposure=np.array([40_000.0, 30_000.0, 10_000.0]),
        gamma_dollar=np.array([0.0, 0.0, 2.0e6]),
        positions_total=3,
        positions_included=3,
        beta_ex_ante=0.79,
        rate_exposure=-25_000.0,
        history=SnapshotHistory.empty(),
    )
    m = portfolio_risk(window, inputs)
    e = np.array([40_000.0, 40_000.0])
    pnl = returns @ e + 0.5 * 2.0e6 * returns[:, 1] ** 2
    assert m.var.observations == 252
    assert m.historical(0.95) == v.historical_var_es(pnl, 0.95)
    sigma = float(np.std(returns @ e, ddof=1))
    assert m.var.sigma_daily == pytest.approx(sigma, rel=1e-12)
    assert m.ex_ante_volatility == pytest.approx(sigma * math.sqrt(252) / 100_000, rel=1e-12)
    assert m.performance.series_type == "simulated_history" and m.performance.observations == 252
    assert m.performance.volatility == pytest.approx(float(np.std(pnl / 100_000, ddof=1)) * math.sqrt(252))
    assert m.dv01 == pytest.approx(-2.5)
    assert "simulated_history" in m.flags and "risk_free_rate_default" in m.flags
    assert "limited_history" not in m.flags and m.data_status == "fresh"
    ewma = ewma_block(m.var)
    assert ewma is not None and "32-day" in ewma["label"] and ewma["lambda"] == 0.94


def test_portfolio_risk_with_short_window_is_insufficient_and_partial() -> None:
    window, _ = _market_window(n=40)
    inputs = PortfolioRiskInputs(
        equity=50_000.0,
        columns=np.array([1]),
        exposure=np.array([50_000.0]),
        gamma_dollar=np.array([0.0]),
        positions_total=1,
        positions_included=1,
        beta_ex_ante=None,
        rate_exposure=None,
        history=SnapshotHistory.empty(),
    )
    m = portfolio_risk(window, inputs)
    assert m.historical(0.95) is None and m.var.sigma_daily is None and m.ex_ante_volatility is None
    assert "insufficient_history" in m.flags and m.data_status == "partial"
    assert m.dv01 is None


def test_portfolio_risk_uses_realized_snapshot_returns_when_sixty_exist() -> None:
    window, _ = _market_window()
    n = 120
    dates = window.dates[-n - 1 :]
    rng = np.random.default_rng(1)
    rets = 0.8 * window.market[-n:] + rng.normal(0, 0.001, n)
    history = SnapshotHistory.build(
        [d.item() for d in dates],
        [None] + [d.item() for d in dates[:-1]],
        np.concatenate(([0.0], rets * 1e5)),
        np.concatenate(([np.nan], rets)),
        np.full(n + 1, np.nan),
        np.full(n + 1, np.nan),
    )
    inputs = PortfolioRiskInputs(
        equity=100_000.0,
        columns=np.array([0]),
        exposure=np.array([80_000.0]),
        gamma_dollar=np.array([0.0]),
        positions_total=1,
        positions_included=1,
        beta_ex_ante=0.8,
        rate_exposure=None,
        history=history,
    )
    m = portfolio_risk(window, inputs)
    assert m.performance.series_type == "realized" and m.performance.observations == n
    assert m.performance.beta == pytest.approx(0.8, abs=0.02)
    assert m.performance.start_date == dates[1].item()
    assert "simulated_history" not in m.flags
    assert m.backtest["status"] == "insufficient_history"
