"""The batched regressions equal statsmodels OLS, symbol by symbol (calculations.md §4.3–4.5).

Every stored number of `regress_underlyings` — betas, standard errors, t, p, R², adjusted R², alpha
and its p-value, residual volatility, the joint fit, VIF and the standardised condition number — is
recomputed with one statsmodels fit per symbol and regression on that symbol's own sample (the inner
join of its returns with the factor sample), for full, gappy, limited, insufficient and constant
histories. Tolerance: 1e-8 relative (1e-10 absolute for values near zero).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.outliers_influence import variance_inflation_factor

from factors import compute

RTOL, ATOL = 1e-8, 1e-10
DAYS = 252


def close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def factor_model(seed: int = 5) -> compute.FactorModel:
    rng = np.random.default_rng(seed)
    market = 0.0003 + 0.0105 * rng.standard_normal(DAYS)
    common = 0.013 * rng.standard_normal(DAYS)  # shared style noise: VIFs of 5–11 (warn and severe)
    others = {
        code: (0.75 + 0.08 * i) * market + (common if i % 2 else -common) + 0.0045 * rng.standard_normal(DAYS)
        for i, code in enumerate(compute.STYLE_CODES)
    }
    rate = 0.0007 * rng.standard_normal(DAYS) - 0.015 * market
    rate[rng.choice(DAYS, 6, replace=False)] = np.nan  # FRED holidays
    others[compute.RATE] = rate
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(DAYS)]
    return compute.build_factor_model(days, market, others)


@dataclass
class Universe:
    returns: np.ndarray  # (T, N)
    kind: list[str]


def universe(model: compute.FactorModel, seed: int = 9) -> Universe:
    """Symbols of every kind the engine must handle, with returns driven by the model factors."""
    rng = np.random.default_rng(seed)
    x = np.nan_to_num(model.design)
    k = x.shape[1]
    columns: list[np.ndarray] = []
    kind: list[str] = []

    def add(label: str, count: int, mutate: object = None) -> None:
        for _ in range(count):
            beta = np.concatenate([[rng.normal(1.0, 0.4)], rng.normal(0.0, 0.5, k - 1)])
            y = 0.0002 + x @ beta + rng.uniform(0.005, 0.03) * rng.standard_normal(DAYS)
            if callable(mutate):
                mutate(y)
            columns.append(y)
            kind.append(label)

    def gaps(y: np.ndarray) -> None:
        y[rng.random(DAYS) < rng.uniform(0.02, 0.2)] = np.nan

    def nan_everywhere_but(n_keep: int) -> object:
        def mutate(y: np.ndarray) -> None:
            y[: DAYS - n_keep] = np.nan  # a late listing: only the last n_keep returns exist

        return mutate

    add("full", 60)
    add("gaps", 40, gaps)
    for n_keep in (59, 60, 61, 120, 201, 202, 203, 240):
        add(f"history_{n_keep}", 1, nan_everywhere_but(n_keep))
    for n_keep in rng.integers(62, 200, 12):
        add("limited", 1, nan_everywhere_but(int(n_keep)))
    for n_keep in (0, 1, 2, 30):
        add("insufficient", 1, nan_everywhere_but(n_keep))
    add("constant", 1, lambda y: y.fill(0.0))
    add("constant", 1, lambda y: y.fill(0.0004))

    def constant_with_gaps(y: np.ndarray) -> None:
        y.fill(0.0)
        gaps(y)

    add("constant", 1, constant_with_gaps)
    add("all_nan", 1, lambda y: y.fill(np.nan))
    return Universe(np.column_stack(columns), kind)


@pytest.fixture(scope="module")
def oracle_case() -> tuple[compute.FactorModel, Universe, compute.RegressionBatch]:
    model = factor_model()
    uni = universe(model)
    batch = compute.regress_underlyings(model, uni.returns.copy(), keep_fits=True)
    return model, uni, batch


def symbol_rows(model: compute.FactorModel, y: np.ndarray) -> np.ndarray:
    return model.sample & np.isfinite(y)


def test_the_universe_covers_every_case(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, _, batch = oracle_case
    n_sample = int(model.sample.sum())
    assert n_sample < DAYS  # the rate's FRED holidays shrink the factor sample
    n = batch.n
    assert (n == n_sample).sum() >= 60
    assert ((n >= 202) & (n < n_sample)).any()
    assert ((n >= 60) & (n < 202)).sum() >= 10
    assert (n < 60).sum() >= 5
    names = [name for bits in batch.flags for name in compute.flag_names(int(bits))]
    assert {"collinearity_warn", "collinearity_severe", "low_significance", "no_variation"} <= set(names)


def test_quality_source_and_sample_bounds(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, uni, batch = oracle_case
    for j in range(uni.returns.shape[1]):
        rows = symbol_rows(model, uni.returns[:, j])
        n = int(rows.sum())
        assert batch.n[j] == n
        expected = "full_history" if n >= 202 else "limited_history" if n >= 60 else "insufficient_history"
        assert batch.quality[j] == expected
        assert batch.beta_source[j] == ("regression" if n >= 60 else "default")
        idx = np.flatnonzero(rows)
        assert (batch.first[j], batch.last[j]) == ((idx[0], idx[-1]) if n else (-1, -1))


def test_insufficient_history_gets_default_betas(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    _, _, batch = oracle_case
    short = batch.n < 60
    assert short.sum() >= 5
    # §4.4: β_M = 1.0, all others 0, beta_source default; nothing else is computed.
    np.testing.assert_array_equal(batch.beta[short, 0], 1.0)
    np.testing.assert_array_equal(batch.beta[short, 1:], 0.0)
    for arr in (batch.std_error, batch.t_stat, batch.p_value, batch.r_squared, batch.vif):
        assert np.isnan(arr[short]).all()
    assert np.isnan(batch.alpha[short]).all() and np.isnan(batch.condition_number[short]).all()


def test_constant_series_have_exact_zero_betas(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    _, uni, batch = oracle_case
    const = np.array([k == "constant" for k in uni.kind])
    np.testing.assert_array_equal(batch.beta[const], 0.0)  # a legitimate zero (§4.5 no_variation)
    np.testing.assert_array_equal(batch.joint_beta[const], 0.0)
    assert np.isnan(batch.std_error[const]).all() and np.isnan(batch.p_value[const]).all()
    for bits in batch.flags[const]:
        names = compute.flag_names(int(bits))
        assert "no_variation" in names and "low_significance" not in names


def regressed(uni: Universe, batch: compute.RegressionBatch) -> list[int]:
    return [j for j in range(len(uni.kind)) if batch.n[j] >= 60 and uni.kind[j] != "constant"]


def test_market_regression_equals_statsmodels(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, uni, batch = oracle_case
    r_m = model.design[:, 0]
    for j in regressed(uni, batch):
        rows = symbol_rows(model, uni.returns[:, j])
        fit = sm.OLS(uni.returns[rows, j], sm.add_constant(r_m[rows])).fit()
        close(batch.beta[j, 0], fit.params[1])
        close(batch.std_error[j, 0], fit.bse[1])
        close(batch.t_stat[j, 0], fit.tvalues[1])
        close(batch.p_value[j, 0], fit.pvalues[1])
        close(batch.r_squared[j, 0], fit.rsquared)
        close(batch.adj_r_squared[j, 0], fit.rsquared_adj)
        close(batch.alpha[j], fit.params[0])
        close(batch.alpha_p_value[j], fit.pvalues[0])
        close(batch.residual_volatility[j], np.sqrt(fit.mse_resid) * np.sqrt(252))
        low = "low_significance" in compute.flag_names(int(batch.flags[j]))
        assert low == (fit.pvalues[1] > 0.05)


def test_market_controlled_factor_regressions_equal_statsmodels(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, uni, batch = oracle_case
    assert batch.pair_fit is not None
    for j in regressed(uni, batch):
        rows = symbol_rows(model, uni.returns[:, j])
        y = uni.returns[rows, j]
        for col in range(1, len(model.codes)):
            out = batch.codes.index(model.codes[col])
            fit = sm.OLS(y, sm.add_constant(model.design[rows][:, [0, col]])).fit()
            close(batch.beta[j, out], fit.params[2])
            close(batch.std_error[j, out], fit.bse[2])
            close(batch.t_stat[j, out], fit.tvalues[2])
            close(batch.p_value[j, out], fit.pvalues[2])
            close(batch.r_squared[j, out], fit.rsquared)
            close(batch.adj_r_squared[j, out], fit.rsquared_adj)
            close(batch.pair_fit.params[j, col - 1], fit.params)


def test_joint_fit_vif_and_condition_number_equal_statsmodels(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, uni, batch = oracle_case
    joint = [model.codes.index(c) for c in model.joint_codes]
    assert model.joint_codes == ("market", *compute.STYLE_CODES)  # the rate is not in the joint fit
    rate_col = batch.codes.index(compute.RATE)
    for j in regressed(uni, batch):
        rows = symbol_rows(model, uni.returns[:, j])
        x = model.design[rows][:, joint]
        design = sm.add_constant(x)
        fit = sm.OLS(uni.returns[rows, j], design).fit()
        close(batch.joint_beta[j], fit.params[1:])
        close(batch.joint_std_error[j], fit.bse[1:])
        close(batch.r_squared_joint[j], fit.rsquared)
        vif = [variance_inflation_factor(design, i) for i in range(1, design.shape[1])]
        close(batch.vif[j, [batch.codes.index(c) for c in model.joint_codes]], vif)
        assert np.isnan(batch.vif[j, rate_col])
        z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
        close(batch.condition_number[j], np.linalg.cond(z))
        names = compute.flag_names(int(batch.flags[j]))
        severe = max(vif) > 10 or np.linalg.cond(z) > 30
        assert ("collinearity_severe" in names) == severe
        assert ("collinearity_warn" in names) == (not severe and max(vif) > 5)


def test_keep_fits_matches_statsmodels_for_every_parameter(
    oracle_case: tuple[compute.FactorModel, Universe, compute.RegressionBatch],
) -> None:
    model, uni, batch = oracle_case
    assert batch.market_fit is not None and batch.joint_fit is not None
    j = regressed(uni, batch)[-1]
    rows = symbol_rows(model, uni.returns[:, j])
    joint = [model.codes.index(c) for c in model.joint_codes]
    fit = sm.OLS(uni.returns[rows, j], sm.add_constant(model.design[rows][:, joint])).fit()
    close(batch.joint_fit.params[j], fit.params)
    close(batch.joint_fit.bse[j], fit.bse)
    assert batch.joint_fit.tvalues is not None and batch.joint_fit.pvalues is not None
    close(batch.joint_fit.tvalues[j], fit.tvalues)
    close(batch.joint_fit.pvalues[j], fit.pvalues)
    close(batch.joint_fit.rsquared_adj[j], fit.rsquared_adj)
    assert batch.joint_fit.df_resid[j] == fit.df_resid and batch.joint_fit.nobs[j] == fit.nobs
    unfitted = batch.n < 60
    assert np.isnan(batch.market_fit.params[unfitted]).all()


@pytest.mark.parametrize(("n_symbols", "gappy"), [(6_000, False), (7_000, True)])
def test_large_batches_keep_exact_p_values(n_symbols: int, gappy: bool) -> None:
    """Big batches use the interpolated Student-t table (one df) or parallel chunks (mixed df): both
    must still equal scipy's two-sided t tail, and a sample of symbols must equal statsmodels."""
    model = factor_model(seed=21)
    rng = np.random.default_rng(4)
    x = np.nan_to_num(model.design)
    beta = np.column_stack([rng.normal(1.0, 0.5, n_symbols), rng.normal(0.0, 0.5, (n_symbols, x.shape[1] - 1))])
    y = x @ beta.T + rng.uniform(0.002, 0.04, n_symbols) * rng.standard_normal((DAYS, n_symbols))
    if gappy:
        y[rng.random(y.shape) < 0.05] = np.nan
    batch = compute.regress_underlyings(model, y.copy())
    df = batch.n[:, None] - np.array([2] + [3] * (x.shape[1] - 1))[None, :]
    expected = 2.0 * stats.t.sf(np.abs(batch.t_stat), df)
    np.testing.assert_allclose(batch.p_value, expected, rtol=RTOL, atol=1e-300)
    for j in rng.choice(n_symbols, 8, replace=False):
        rows = symbol_rows(model, y[:, j])
        fit = sm.OLS(y[rows, j], sm.add_constant(model.design[rows][:, [0, 3]])).fit()
        out = batch.codes.index(model.codes[3])
        close(
            [batch.beta[j, out], batch.std_error[j, out], batch.p_value[j, out]],
            [fit.params[2], fit.bse[2], fit.pvalues[2]],
        )


def test_a_factor_constant_on_a_symbols_sample_is_null_and_the_rest_equal_statsmodels() -> None:
    """§4.5 factor_degenerate per regression: std < 1e-8 on the symbol's own sample."""
    model = factor_model()
    design = model.design.copy()
    rate, quality = model.codes.index(compute.RATE), model.codes.index("quality")
    design[:100, rate] = np.where(model.sample[:100], 0.0003, np.nan)  # Δy flat early in the window
    design[150:, quality] = np.where(model.sample[150:], -0.0001, np.nan)
    degenerate = dataclasses.replace(model, design=design)
    rng = np.random.default_rng(0)
    y = np.nan_to_num(design) @ rng.normal(0.5, 0.3, design.shape[1]) + 0.01 * rng.standard_normal(DAYS)
    returns = np.column_stack([y, y, y])
    returns[100:, 0] = np.nan  # sees a flat rate factor
    returns[:150, 1] = np.nan  # sees a flat quality factor
    returns[::7, 2] = np.nan  # sees no flat factor
    batch = compute.regress_underlyings(degenerate, returns)
    assert np.isnan(batch.beta[0, batch.codes.index(compute.RATE)])
    assert np.isnan(batch.beta[1, batch.codes.index("quality")])
    assert np.isnan(batch.joint_beta[1]).all() and np.isnan(batch.condition_number[1])  # quality is in the joint fit
    assert np.isfinite(batch.joint_beta[0]).all()  # the rate is not
    assert np.isfinite(batch.beta[2]).all()
    for j, flat in ((0, rate), (1, quality), (2, -1)):
        assert ("factor_degenerate" in compute.flag_names(int(batch.flags[j]))) == (flat >= 0)
        rows = degenerate.sample & np.isfinite(returns[:, j])
        for col in range(1, len(model.codes)):
            if col == flat:
                continue
            fit = sm.OLS(returns[rows, j], sm.add_constant(design[rows][:, [0, col]])).fit()
            out = batch.codes.index(model.codes[col])
            close(
                [batch.beta[j, out], batch.std_error[j, out], batch.p_value[j, out]],
                [fit.params[2], fit.bse[2], fit.pvalues[2]],
            )
        fit = sm.OLS(returns[rows, j], sm.add_constant(design[rows][:, 0])).fit()
        close([batch.beta[j, 0], batch.std_error[j, 0], batch.alpha[j]], [fit.params[1], fit.bse[1], fit.params[0]])


@pytest.mark.parametrize("df", [1.0, 2.0, 5.0, 57.0, 199.0, 249.0, 1000.0])
def test_interpolated_student_t_tail_is_exact_to_1e_10(df: float) -> None:
    t = np.concatenate([np.random.default_rng(1).uniform(0.0, 45.0, 50_000), [0.0, 39.999, 40.0, 40.001, 60.0]])
    p = compute.t_and_p(t, np.ones_like(t), np.full_like(t, df))[1]
    np.testing.assert_allclose(p, 2.0 * stats.t.sf(t, df), rtol=1e-10, atol=0)


def test_misaligned_returns_are_rejected() -> None:
    model = factor_model()
    with pytest.raises(ValueError, match=r"aligned with model\.dates"):
        compute.regress_underlyings(model, np.zeros((DAYS - 1, 3)))
