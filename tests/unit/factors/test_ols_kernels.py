"""The symbols-last OLS kernels (factors.ols) and how regress_underlyings assembles them.

* `serial_matmul` splits a product into single-threaded blocks along its longer side, also when the
  left operand is a transposed view: every branch must give a @ b.
* `pair_slopes` writes the 2×2 systems out in closed form: it must give what the generic fit
  (`Moments.fit`) gives on each pair [x_0, x_k], for a shared X'X and for one X'X per regression.
* The VIFs come from the joint fit's inverse of X'X (diag(X'X⁻¹)·diag(X'X)); they must equal the
  diagonal of the inverse correlation matrix, also where a column has no variance.
* The shared-sample fit runs over every underlying and the others are overwritten: each underlying's
  outputs must be what it gets when regressed alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from factors import bench, compute, ols


@pytest.mark.parametrize(
    ("m", "k", "n", "transposed"),
    [
        (5, 7, 9, False),
        (8, 244, 3_000, False),
        (3_000, 244, 8, False),
        (5, 250, 8, True),
        (2_000, 250, 8, True),
        (20_001, 252, 7, True),
        (900, 250, 64, True),
        (150, 244, 64, True),
    ],
)
def test_serial_matmul_equals_the_plain_product_in_every_branch(m: int, k: int, n: int, transposed: bool) -> None:
    rng = np.random.default_rng(m + n)
    a = rng.standard_normal((k, m)).T if transposed else rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    assert a.flags.f_contiguous == transposed or m == 1

    out = ols.serial_matmul(a, b)

    assert out.shape == (m, n)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)


def _moments(shared: bool, g: int = 40, k: int = 5, seed: int = 3) -> ols.Moments:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((120, k)) @ (np.eye(k) + 0.3 * rng.standard_normal((k, k)))
    y = x @ rng.normal(0.0, 1.0, (k, g)) + rng.standard_normal((120, g))
    if not shared:
        y[rng.random(y.shape) < 0.1] = np.nan
    mu = x.mean(axis=0)
    xcs = x - mu
    ym = ols.y_moments(y.copy())
    weights = None if shared else ym.finite_all().astype(np.float64)
    return ols.group_moments(
        xcs, mu, ym.n.astype(np.float64), ym.sum_y, ym.syy, ols.serial_matmul(xcs.T, ym.ys), weights
    )


@pytest.mark.parametrize("shared", [True, False])
def test_pair_slopes_equal_the_generic_fit_of_each_pair(shared: bool) -> None:
    m = _moments(shared)
    assert m.cxx.shape[0] == (1 if shared else m.n.size)

    pairs = ols.pair_slopes(m)

    for j in range(1, m.cxy.shape[0]):
        fit = m.fit(np.array([0, j]))
        np.testing.assert_allclose(pairs.beta[j - 1], fit.beta[1], rtol=1e-12)
        np.testing.assert_allclose(pairs.bse[j - 1], fit.bse[1], rtol=1e-12)
        np.testing.assert_allclose(pairs.rsquared[j - 1], fit.rsquared, rtol=1e-12)
        np.testing.assert_allclose(pairs.rsquared_adj[j - 1], fit.rsquared_adj, rtol=1e-12)
        np.testing.assert_array_equal(pairs.df_resid, fit.df_resid)


def test_pair_fits_carry_intercepts_and_the_pair_slopes() -> None:
    m = _moments(shared=False)
    full = ols.pair_fits(m)
    pairs = ols.pair_slopes(m)
    assert full.params.shape == (m.n.size, m.cxy.shape[0] - 1, 3)
    np.testing.assert_allclose(full.params[:, :, 2], pairs.beta.T, rtol=1e-12)
    np.testing.assert_allclose(full.bse[:, :, 2], pairs.bse.T, rtol=1e-12)
    # The intercept: mean of y minus the slopes times the regressor means, for each symbol and pair.
    j = 2
    fit = m.full_fit(np.array([0, j]))
    np.testing.assert_allclose(full.params[:, j - 1, 0], fit.params[:, 0], rtol=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_vifs_from_the_joint_inverse_equal_the_inverse_correlation_diagonal(shared: bool) -> None:
    m = _moments(shared)
    cxx = m.cxx.copy()
    if not shared:
        cxx[3, 2, :] = cxx[3, :, 2] = 0.0  # a regressor with no variance in one sample
    inv = np.linalg.pinv(cxx) if not shared else np.linalg.inv(cxx)

    vif, cond = compute._standardised_diagnostics(cxx, inv)
    expected_vif, expected_cond = compute._standardised_diagnostics(cxx, None)

    np.testing.assert_allclose(vif, expected_vif, rtol=1e-11)
    np.testing.assert_array_equal(cond, expected_cond)
    assert np.isfinite(vif).all()


def test_each_underlying_gets_what_it_gets_when_regressed_alone() -> None:
    data = bench.synthetic_closes(60, seed=11)
    closes = data.underlyings.copy()
    closes[:-30, 4] = np.nan  # too little history: default betas
    closes[:, 5] = 25.0  # a constant series
    model = bench.build_model(data)
    returns = compute.simple_returns(closes)
    batch = compute.regress_underlyings(model, returns)
    assert len(set(batch.quality.tolist())) >= 2 and (batch.n < batch.n.max()).any()  # groups mixed

    for j in range(returns.shape[1]):
        alone = compute.regress_underlyings(model, returns[:, [j]])
        for name in ("beta", "std_error", "t_stat", "p_value", "r_squared", "adj_r_squared", "vif", "joint_beta"):
            np.testing.assert_allclose(getattr(batch, name)[j], getattr(alone, name)[0], rtol=1e-9, atol=1e-15)
        for name in ("alpha", "alpha_p_value", "residual_volatility", "r_squared_joint", "condition_number"):
            np.testing.assert_allclose(getattr(batch, name)[j], getattr(alone, name)[0], rtol=1e-9, atol=1e-15)
        assert batch.flags[j] == alone.flags[0] and batch.quality[j] == alone.quality[0]
