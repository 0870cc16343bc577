"""The sanity invariants of calculations.md §6.5 (and §6.4's single-factor property), checked over
random books, random factor covariances and random scenarios (property style, fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from stress.catalogue import CATALOGUE
from stress.compute.revaluation import OptionLegs, model_prices
from stress.compute.scenarios import (
    MODEL_FACTORS,
    Book,
    ScenarioSet,
    correlated_impact,
    direct_impact,
)

F = MODEL_FACTORS
K = len(F)
ALL = np.ones(K, dtype=bool)
RATE = F.index("interest_rate")
MARKET = F.index("market")
SEEDS = range(8)


def random_covariance(rng: np.random.Generator) -> np.ndarray:
    """A positive-definite daily covariance with realistic volatilities and sizeable correlations."""
    loadings = rng.normal(size=(K, K + 3))
    corr = loadings @ loadings.T
    d = np.sqrt(np.diag(corr))
    corr = corr / np.outer(d, d)
    vols = rng.uniform(0.002, 0.015, K)
    vols[RATE] = rng.uniform(0.0003, 0.0008)
    return corr * np.outer(vols, vols)


def random_betas(rng: np.random.Generator, n: int) -> np.ndarray:
    betas = rng.normal(0.0, 0.8, (n, K))
    betas[:, MARKET] = rng.uniform(0.2, 2.6, n)
    betas[:, RATE] = rng.normal(0.0, 4.0, n)
    return betas


def random_scenarios(rng: np.random.Generator, n: int) -> ScenarioSet:
    """The 18 catalogue scenarios plus `n` random ones within the validation bounds (§6.1)."""
    keys = [s.key for s in CATALOGUE]
    shocks: list[dict[str, float]] = [dict(s.shocks) for s in CATALOGUE]
    shifts = [s.option_iv_shift for s in CATALOGUE]
    for i in range(n):
        chosen = rng.choice(K, size=rng.integers(1, K + 1), replace=False)
        shocks.append({F[j]: float(rng.uniform(-0.05, 0.05) if j == RATE else rng.uniform(-1.0, 1.0)) for j in chosen})
        keys.append(f"random_{i}")
        shifts.append(float(rng.uniform(-0.1, 0.5)))
    return ScenarioSet.build(keys, shocks, iv_shift=shifts)


def random_legs(rng: np.random.Generator, m: int, *, long_only: bool) -> OptionLegs:
    quantity = rng.integers(1, 30, m).astype(float)
    if not long_only:
        quantity *= rng.choice([-1.0, 1.0], m)
    spot = rng.uniform(20, 400, m)
    return OptionLegs.build(
        spot=spot,
        strike=spot * rng.uniform(0.7, 1.3, m),
        time_to_expiry=rng.uniform(0.0, 1.5, m),
        rate=rng.uniform(0.0, 0.06, m),
        dividend_yield=rng.uniform(0.0, 0.03, m),
        sigma=rng.uniform(0.1, 0.9, m),
        is_call=rng.random(m) < 0.5,
        quantity=quantity,
        multiplier=np.full(m, 100.0),
    )


def option_value_and_exposure(legs: OptionLegs) -> tuple[np.ndarray, np.ndarray]:
    """Market value q·m·price and delta-adjusted exposure q·m·Δ·S (Δ by central difference)."""
    price = model_prices(legs, legs.spot, legs.sigma)
    h = 1e-4
    delta = (
        model_prices(legs, legs.spot * (1 + h), legs.sigma) - model_prices(legs, legs.spot * (1 - h), legs.sigma)
    ) / (2 * h * legs.spot)
    qm = legs.quantity * legs.multiplier
    return qm * price, qm * delta * legs.spot


def random_book(
    rng: np.random.Generator, n_portfolios: int, *, long_only: bool, cash_scale: float = 1.0
) -> tuple[Book, np.ndarray]:
    """Books of stocks and options on shared underlyings; returns the book and each portfolio's equity V."""
    n_underlyings = 15
    per = rng.integers(3, 12, n_portfolios)
    portfolio = np.repeat(np.arange(n_portfolios), per)
    n = portfolio.size
    underlying = rng.integers(0, n_underlyings, n)
    is_option = rng.random(n) < 0.35
    options = np.flatnonzero(is_option)
    legs = random_legs(rng, options.size, long_only=long_only)
    option_mv, option_exposure = option_value_and_exposure(legs)
    stock_value = rng.uniform(1_000, 200_000, n)
    if not long_only:
        stock_value *= rng.choice([-1.0, 1.0], n)
    exposure = stock_value.copy()
    market_value = stock_value.copy()
    exposure[options] = option_exposure
    market_value[options] = option_mv
    cash = rng.uniform(0, 100_000, n_portfolios) * cash_scale
    equity = cash + np.bincount(portfolio, weights=market_value, minlength=n_portfolios)
    book = Book(
        factors=F,
        portfolio_index=portfolio,
        n_portfolios=n_portfolios,
        underlying_index=underlying,
        exposure=exposure,
        betas=random_betas(rng, n_underlyings),
        option_positions=options,
        legs=legs,
        equity=equity,
    )
    return book, equity


# -- 1. an unlevered long-only book never loses more than its equity -------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_unlevered_long_only_book_never_loses_more_than_its_equity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    book, equity = random_book(rng, 5, long_only=True)
    scenarios = random_scenarios(rng, 40)
    direct = direct_impact(book, scenarios, ALL)
    correlated = correlated_impact(book, scenarios, random_covariance(rng), ALL).impacts
    assert np.isfinite(direct.total).all() and np.isfinite(correlated.total).all()
    tolerance = 1e-9 * equity
    assert (-direct.total <= equity + tolerance).all()
    assert (-correlated.total <= equity + tolerance).all()
    # The bound comes from the per-position floors, not from a cap: each long stock loses ≤ its value.
    stocks = np.setdiff1d(np.arange(book.n_positions), book.option_positions)
    assert (-direct.position_pnl[:, stocks] <= book.exposure[stocks] * (1 + 1e-12)).all()


def test_the_floor_reaches_the_full_loss_of_a_long_only_book_without_exceeding_it() -> None:
    book = Book(
        factors=F,
        portfolio_index=np.zeros(2, dtype=np.int64),
        n_portfolios=1,
        underlying_index=np.array([0, 1]),
        exposure=np.array([10_000.0, 30_000.0]),
        betas=np.vstack([np.eye(K)[MARKET] * 2.5, np.eye(K)[MARKET] * 3.0]),
        option_positions=np.zeros(0, dtype=np.int64),
        legs=OptionLegs.empty(),
        equity=np.array([40_000.0]),
    )
    crash = direct_impact(book, ScenarioSet.build(["crash"], [{"market": -0.45}]), ALL)
    assert crash.total[0, 0] == pytest.approx(-40_000.0)  # both floored at −100 %
    assert crash.linear[0, 0] == pytest.approx(-0.45 * (2.5 * 10_000 + 3.0 * 30_000))  # −51,750: not a P&L bound
    assert crash.floored[0, 0] == 2


# -- 2. levered, short and short-option books may lose more than equity (no cap) ----------------


def test_levered_short_and_short_option_books_lose_more_than_equity_unclipped() -> None:
    calls = OptionLegs.build(
        spot=[100.0],
        strike=[100.0],
        time_to_expiry=[0.25],
        rate=[0.04],
        dividend_yield=[0.0],
        sigma=[0.3],
        is_call=[True],
        quantity=[-50.0],
        multiplier=[100.0],
    )
    market_1_5 = np.eye(K)[MARKET] * 1.5
    book = Book(
        factors=F,
        portfolio_index=np.array([0, 1, 2]),
        n_portfolios=3,
        underlying_index=np.array([0, 0, 0]),
        # levered long 300,000 on 100,000 equity; short 100,000; 50 short ATM calls.
        exposure=np.array([300_000.0, -100_000.0, -280_000.0]),
        betas=market_1_5[None, :],
        option_positions=np.array([2]),
        legs=calls,
        equity=np.array([100_000.0, 100_000.0, 100_000.0]),
    )
    scenarios = ScenarioSet.build(["crash", "melt_up"], [{"market": -0.35}, {"market": 0.90}])
    total = direct_impact(book, scenarios, ALL).total
    assert total[0, 0] == pytest.approx(-0.35 * 1.5 * 300_000)  # −157,500 on 100,000 of equity
    assert total[1, 1] == pytest.approx(-1.35 * 100_000)  # a short has no floor on the upside
    assert -total[1, 2] > 100_000  # the short calls lose more than the book is worth


# -- 3. attribution adds up, for direct and correlated impact ---------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_positions_sum_to_totals_and_factor_parts_plus_nonlinear_to_the_impact(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    book, _ = random_book(rng, 4, long_only=False)
    scenarios = random_scenarios(rng, 20)
    for impacts in (
        direct_impact(book, scenarios, ALL),
        correlated_impact(book, scenarios, random_covariance(rng), ALL).impacts,
    ):
        for p in range(book.n_portfolios):
            mine = book.portfolio_index == p
            assert impacts.total[:, p] == pytest.approx(impacts.position_pnl[:, mine].sum(axis=1), rel=1e-10)
        assert impacts.factor_pnl.sum(axis=2) + impacts.nonlinear == pytest.approx(impacts.total, rel=1e-10)
        assert impacts.linear == pytest.approx(impacts.position_linear @ _membership(book), rel=1e-9, abs=1e-6)


def _membership(book: Book) -> np.ndarray:
    out = np.zeros((book.n_positions, book.n_portfolios))
    out[np.arange(book.n_positions), book.portfolio_index] = 1.0
    return out


# -- 4. exposures: each position once, Σ|E| = G, X_f = Σ_i X_{i,f}, |X_M| ≤ max|β_M|·G --------


@pytest.mark.parametrize("seed", SEEDS)
def test_exposure_consistency(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    book, _ = random_book(rng, 3, long_only=False)
    gross = book.gross_exposure()
    factor = book.factor_exposures()
    per_position = book.position_factor_exposures()
    for p in range(book.n_portfolios):
        mine = book.portfolio_index == p
        assert gross[p] == pytest.approx(np.abs(book.exposure[mine]).sum())
        assert factor[p] == pytest.approx(per_position[mine].sum(axis=0))
        max_beta = np.abs(book.betas[book.underlying_index[mine], MARKET]).max()
        assert abs(factor[p, MARKET]) <= max_beta * gross[p] + 1e-6


# -- 5. zero shocks give zero; doubling the shocks doubles the linear parts ---------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_shocks_give_zero_and_doubling_doubles_the_linear_parts(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    book, _ = random_book(rng, 3, long_only=False)
    covariance = random_covariance(rng)
    scenarios = random_scenarios(rng, 10)
    zero = ScenarioSet(scenarios.keys, F, np.zeros_like(scenarios.shocks), scenarios.shocked, np.zeros(len(scenarios)))
    assert direct_impact(book, zero, ALL).total == pytest.approx(0.0, abs=1e-9)
    assert correlated_impact(book, zero, covariance, ALL).impacts.total == pytest.approx(0.0, abs=1e-9)
    doubled = scenarios.scaled(2.0)
    assert direct_impact(book, doubled, ALL).linear == pytest.approx(2 * direct_impact(book, scenarios, ALL).linear)
    c1 = correlated_impact(book, scenarios, covariance, ALL).impacts.linear
    c2 = correlated_impact(book, doubled, covariance, ALL).impacts.linear
    assert c2 == pytest.approx(2 * c1, rel=1e-9)


# -- 6. an SPY-only book -----------------------------------------------------------------------


def test_spy_only_book_loses_ten_percent_and_ignores_style_only_scenarios() -> None:
    e = 250_000.0
    book = Book(
        factors=F,
        portfolio_index=np.zeros(1, dtype=np.int64),
        n_portfolios=1,
        underlying_index=np.zeros(1, dtype=np.int64),
        exposure=np.array([e]),
        betas=np.eye(K)[MARKET][None, :],  # SPY on the market factor: 1, styles 0 (they are market-neutral)
        option_positions=np.zeros(0, dtype=np.int64),
        legs=OptionLegs.empty(),
        equity=np.array([e]),
    )
    scenarios = ScenarioSet.build([s.key for s in CATALOGUE], [s.shocks for s in CATALOGUE])
    total = direct_impact(book, scenarios, ALL).total[:, 0]
    by_key = dict(zip(scenarios.keys, total, strict=True))
    assert by_key["market_down_10"] == pytest.approx(-0.10 * e)
    style_only = [s.key for s in CATALOGUE if not ({"market", "interest_rate"} & set(s.shocks))]
    assert style_only == ["value_rotation_20", "growth_rally_15", "small_cap_outperformance_10"]
    assert [by_key[k] for k in style_only] == [0.0, 0.0, 0.0]


# -- 8. shorts gain when their underlying's predicted return is negative ------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_short_stocks_gain_when_their_predicted_return_is_negative(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    book, _ = random_book(rng, 2, long_only=False)
    impacts = direct_impact(book, random_scenarios(rng, 20), ALL)
    stocks = np.setdiff1d(np.arange(book.n_positions), book.option_positions)
    shorts = stocks[book.exposure[stocks] < 0]
    falling = impacts.underlying_return[:, book.underlying_index[shorts]] < 0
    assert falling.any()
    assert (impacts.position_pnl[:, shorts][falling] > 0).all()
    assert (impacts.position_pnl[:, shorts][~falling] <= 0).all()


# -- §6.4: a single-factor scenario gives identical direct and correlated impact ----------------


@pytest.mark.parametrize("seed", SEEDS)
def test_single_factor_scenarios_have_identical_direct_and_correlated_impact(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    book, _ = random_book(rng, 3, long_only=False)
    covariance = random_covariance(rng)
    keys, shocks = [], []
    for j, code in enumerate(F):
        size = 0.03 if j == RATE else 0.4
        for shock in (-size, size * rng.uniform(0.1, 1.0)):
            keys.append(f"{code}_{shock:+.3f}")
            shocks.append({code: shock})
    scenarios = ScenarioSet.build(keys, shocks)
    direct = direct_impact(book, scenarios, ALL)
    correlated = correlated_impact(book, scenarios, covariance, ALL)
    assert correlated.impacts.linear == pytest.approx(direct.linear, rel=1e-9)
    assert correlated.impacts.total == pytest.approx(direct.total, rel=1e-9)
    # …while the unshocked factors still get implied moves Σ_os·Σ_ss⁻¹·ΔF_s for display.
    implied = correlated.conditional.implied
    for i, mapping in enumerate(shocks):
        [(code, shock)] = mapping.items()
        j = F.index(code)
        others = np.arange(K) != j
        assert implied[i, others] == pytest.approx(covariance[others, j] / covariance[j, j] * shock, rel=1e-9)


def test_multi_factor_scenarios_on_correlated_factors_do_have_a_correlation_effect() -> None:
    rng = np.random.default_rng(9)
    book, _ = random_book(rng, 2, long_only=False)
    covariance = random_covariance(rng)
    rotation = ScenarioSet.build(["rotation"], [{"value": 0.20, "growth": -0.10}])
    direct = direct_impact(book, rotation, ALL)
    correlated = correlated_impact(book, rotation, covariance, ALL).impacts
    assert not np.allclose(correlated.linear, direct.linear)
