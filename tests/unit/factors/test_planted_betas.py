"""Recovery of planted betas through the full compute path (calculations.md §4.1–4.4, §0.4).

Factor proxies are generated so that, on the factor sample, every style and rate residual is exactly
orthogonal to the constant, the market and each other. 2,000 underlyings get known betas plus small
Gaussian noise of known standard deviation σ_u; their *prices* are built from those returns (some
with missing closes, late listings, too little history, or a constant price), and the engine runs
closes → simple returns → factor model → `regress_underlyings`.

With orthogonal factors every estimate (the univariate market beta, each market-controlled factor
beta and the joint-fit betas) differs from the planted beta only by the noise projection
f_k'ε/‖f_k‖², whose standard deviation is σ_u/‖f_k − f̄_k‖. The tolerance is 6 of those standard
deviations; the standardised errors must also look like N(0, 1). On a symbol's own (gappy) sample
the factors are only approximately orthogonal (§4.3), so there the noise-free truth is the OLS of the
planted signal on that sample, and the same noise-derived tolerance applies around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pytest

from factors import compute

T = 252  # returns; T + 1 closes
N_SYMBOLS = 2_000
SIGMAS = 6.0
LOADINGS = {"momentum": 0.9, "value": 0.8, "growth": 1.1, "quality": 0.95, "size": 1.15, "low_volatility": 0.7}
STYLE_VOL, RATE_VOL, RATE_LOADING = 0.004, 0.0006, -0.02


@dataclass
class Market:
    dates: list[date]
    closes: dict[str, np.ndarray]  # proxy → (T + 1,) adjusted closes
    dgs10: np.ndarray  # (T + 1,) yield levels as fractions, NaN on FRED holidays
    sample: np.ndarray  # (T,) the factor sample
    factors: np.ndarray  # (T, 8) planted [r_M, f_momentum, …, f_low_volatility, f_rate]


def planted_market(seed: int = 2024) -> Market:
    rng = np.random.default_rng(seed)
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(T + 1)]
    levels = np.full(T + 1, 0.042)
    holidays = rng.choice(np.arange(5, T - 5), 5, replace=False)
    levels[holidays] = np.nan
    sample = np.isfinite(compute.yield_changes(levels))
    r_m = 0.0004 + 0.011 * rng.standard_normal(T)
    # Residuals exactly orthogonal to [1, r_M] and to each other on the sample rows.
    residuals = 0.004 * rng.standard_normal((T, 7))
    basis = np.column_stack([np.ones(int(sample.sum())), r_m[sample], rng.standard_normal((int(sample.sum()), 7))])
    q, _ = np.linalg.qr(basis)
    residuals[sample] = q[:, 2:] * np.sqrt(sample.sum())
    scale = np.array([STYLE_VOL] * 6 + [RATE_VOL])
    intercepts = rng.normal(0.0, 0.0002, 7) * scale / STYLE_VOL
    residuals = intercepts + residuals * scale
    factors = np.column_stack([r_m, residuals])
    raw = {code: LOADINGS[code] * r_m + residuals[:, i] for i, code in enumerate(compute.STYLE_CODES)}
    closes = {"SPY": prices(r_m, 480.0)} | {code: prices(r, 100.0) for code, r in raw.items()}
    dy = RATE_LOADING * r_m + residuals[:, 6]
    dgs10 = 0.042 + np.concatenate([[0.0], np.cumsum(dy)])
    dgs10[holidays] = np.nan
    return Market(days, closes, dgs10, sample, factors)


def prices(returns: np.ndarray, start: float | np.ndarray) -> np.ndarray:
    """Closes (T + 1, …) whose simple returns are `returns` (T, …), starting at `start`."""
    growth = np.cumprod(1.0 + returns, axis=0)
    return start * np.concatenate([np.ones((1, *returns.shape[1:])), growth])


@dataclass
class Book:
    closes: np.ndarray  # (T + 1, N)
    betas: np.ndarray  # (N, 8) planted, in the order of Market.factors
    noise: np.ndarray  # (N,) σ_u
    kind: np.ndarray  # (N,) full | gaps | late | short | constant


def planted_book(market: Market, seed: int = 7) -> Book:
    rng = np.random.default_rng(seed)
    betas = np.column_stack(
        [rng.normal(1.0, 0.35, N_SYMBOLS), rng.normal(0.0, 0.6, (N_SYMBOLS, 6)), rng.normal(0.0, 4.0, N_SYMBOLS)]
    )
    noise = rng.uniform(0.001, 0.004, N_SYMBOLS)
    alpha = rng.normal(0.0, 0.0003, N_SYMBOLS)
    returns = alpha + market.factors @ betas.T + noise * rng.standard_normal((T, N_SYMBOLS))
    closes = prices(returns, rng.uniform(5.0, 500.0, N_SYMBOLS))
    kind = np.array(["full"] * N_SYMBOLS, dtype=object)
    kind[1500:1700] = "gaps"
    kind[1700:1900] = "late"
    kind[1900:1990] = "short"
    kind[1990:] = "constant"
    gaps = (rng.random((T + 1, N_SYMBOLS)) < 0.03) & (kind == "gaps")
    closes[gaps] = np.nan  # a missing close removes the two returns that touch it
    for j in np.flatnonzero(kind == "late"):
        closes[: rng.integers(20, 190), j] = np.nan  # listed inside the window: 60–230 returns
    for j in np.flatnonzero(kind == "short"):
        closes[: rng.integers(200, T), j] = np.nan  # fewer than 60 returns
    closes[:, kind == "constant"] = 10.0  # e.g. a money-market fund
    betas[kind == "constant"] = 0.0
    return Book(closes, betas, noise, kind)


@dataclass
class Run:
    model: compute.FactorModel
    returns: np.ndarray
    batch: compute.RegressionBatch
    order: np.ndarray  # batch column of each Market.factors column


@pytest.fixture(scope="module")
def market() -> Market:
    return planted_market()


@pytest.fixture(scope="module")
def book(market: Market) -> Book:
    return planted_book(market)


@pytest.fixture(scope="module")
def run(market: Market, book: Book) -> Run:
    """The full compute path, as the daily factors step runs it."""
    spy = compute.simple_returns(market.closes["SPY"])
    others = {code: compute.simple_returns(market.closes[code]) for code in compute.STYLE_CODES}
    others[compute.RATE] = compute.yield_changes(market.dgs10)
    model = compute.build_factor_model(market.dates[1:], spy, others)
    returns = compute.simple_returns(book.closes)
    batch = compute.regress_underlyings(model, returns.copy())
    order = np.array([batch.codes.index(c) for c in (compute.MARKET, *compute.STYLE_CODES, compute.RATE)])
    return Run(model, returns, batch, order)


def test_factor_model_recovers_the_planted_construction(market: Market, run: Run) -> None:
    model = run.model
    np.testing.assert_array_equal(model.sample, market.sample)
    for code, loading in LOADINGS.items():
        assert model.loadings[code] == pytest.approx(loading, abs=1e-12)
    assert model.loadings[compute.RATE] == pytest.approx(RATE_LOADING, abs=1e-12)
    design = model.design[model.sample]
    np.testing.assert_allclose(design, market.factors[market.sample], rtol=0, atol=1e-14)
    corr = model.model_stats.correlation
    np.testing.assert_allclose(corr, np.eye(8), atol=1e-12)
    assert model.flags == ()


def noise_sd(market: Market, book: Book, rows: np.ndarray) -> np.ndarray:
    """(N, 8) standard deviation of each full-sample estimate: σ_u / ‖f_k − f̄_k‖ on the sample."""
    x = market.factors[rows]
    norm = np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=0))
    return book.noise[:, None] / norm[None, :]


def test_full_history_symbols_recover_planted_betas_within_noise(market: Market, book: Book, run: Run) -> None:
    batch = run.batch
    full = np.flatnonzero(book.kind == "full")
    assert (batch.n[full] == market.sample.sum()).all()
    assert (batch.quality[full] == "full_history").all() and (batch.beta_source[full] == "regression").all()
    sd = noise_sd(market, book, market.sample)[full]
    error = batch.beta[np.ix_(full, run.order)] - book.betas[full]
    assert np.all(np.abs(error) <= SIGMAS * sd)
    z = error / sd  # standardised errors: N(0, 1) if the estimates are unbiased with the stated noise
    assert abs(z.mean()) < 0.03
    assert 0.97 < z.std() < 1.03
    # The joint diagnostic fit (market + the six styles; the rate is orthogonal) recovers them too.
    joint_error = batch.joint_beta[full] - book.betas[full, :7]
    assert np.all(np.abs(joint_error) <= SIGMAS * sd[:, :7])
    np.testing.assert_allclose(batch.vif[np.ix_(full, run.order[:7])], 1.0, atol=1e-10)
    np.testing.assert_allclose(batch.condition_number[full], 1.0, atol=1e-10)


def test_gappy_and_late_symbols_recover_betas_on_their_own_sample(market: Market, book: Book, run: Run) -> None:
    batch = run.batch
    partial = np.flatnonzero(np.isin(book.kind, ["gaps", "late"]))
    assert (batch.n[partial] < market.sample.sum()).all() and (batch.n[partial] >= 60).all()
    assert {"full_history", "limited_history"} <= set(batch.quality[partial])
    worst = 0.0
    drift = np.zeros((partial.size, 8))
    for i, j in enumerate(partial):
        rows = market.sample & np.isfinite(run.returns[:, j])
        x = market.factors[rows]
        signal = x @ book.betas[j]  # noise-free returns (the constant alpha does not move slopes)
        for col in range(8):
            design = np.column_stack([np.ones(rows.sum()), x[:, [0, col]] if col else x[:, [0]]])
            truth = np.linalg.lstsq(design, signal, rcond=None)[0][-1]
            centred = design[:, 1:] - design[:, 1:].mean(axis=0)
            sd = book.noise[j] * np.sqrt(np.linalg.inv(centred.T @ centred)[-1, -1])
            z = (batch.beta[j, run.order[col]] - truth) / sd
            worst = max(worst, abs(z))
            drift[i, col] = truth - book.betas[j, col]
    assert worst <= SIGMAS
    # Off the full sample the factors are only nearly orthogonal (§4.3: FWL is approximate), so the
    # noise-free truth drifts from the planted beta by omitted-factor overlap: small and unbiased.
    spread = book.betas[book.kind == "full"].std(axis=0)
    assert np.all(np.median(np.abs(drift), axis=0) < 0.1 * spread)
    assert np.all(np.abs(drift.mean(axis=0)) < 4.0 * drift.std(axis=0) / np.sqrt(partial.size))


def test_short_histories_get_default_betas(book: Book, run: Run) -> None:
    batch = run.batch
    short = book.kind == "short"
    assert (batch.n[short] < 60).all()
    assert (batch.beta_source[short] == "default").all()
    assert (batch.quality[short] == "insufficient_history").all()
    np.testing.assert_array_equal(batch.beta[short][:, run.order], np.tile([1.0] + [0.0] * 7, (short.sum(), 1)))


def test_constant_prices_get_exact_zero_betas(book: Book, run: Run) -> None:
    batch = run.batch
    const = book.kind == "constant"
    np.testing.assert_array_equal(batch.beta[const], 0.0)
    assert all("no_variation" in compute.flag_names(int(b)) for b in batch.flags[const])
    assert (batch.beta_source[const] == "regression").all()


def test_bench_run_reports_the_regression_throughput() -> None:
    from factors import bench

    result = bench.run(symbols=400, repeats=2)
    assert result["symbols"] == 400 and result["days"] == 253 and result["returns"] == 252
    assert result["factors"] == 8 and result["repeats"] == 2
    assert result["model_median_seconds"] > 0 and result["regression_best_seconds"] > 0
    assert result["regression_best_seconds"] <= result["regression_median_seconds"]
    assert result["symbols_per_second"] == pytest.approx(400 / result["regression_median_seconds"])
    assert result["total_median_seconds"] >= result["regression_best_seconds"]
    assert 350 <= result["regressed"] < 400 and result["all_finite"]
