"""The building blocks of the batched regressions: sample moments of gappy series and Student-t p-values.

`_y_moments` masks only the columns with a missing row; it must give what a masked pass over every
column gives. The p-value table must agree with scipy wherever it is used, including NaN and
infinite t and the smallest batch that takes the table.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from factors import compute, ols, student_t


def _masked_moments(ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """The plain definition: every column masked, counted and summed."""
    fin = np.isfinite(ys)
    clean = np.where(fin, ys, 0.0)
    return fin.sum(axis=0), clean.sum(axis=0), (clean * clean).sum(axis=0), fin, clean


@pytest.mark.parametrize("gappy_share", [0.0, 0.03, 0.5, 1.0])
def test_y_moments_equal_a_masked_pass_over_every_column(gappy_share: float) -> None:
    rng = np.random.default_rng(int(gappy_share * 100))
    ys = 0.02 * rng.standard_normal((250, 400))
    gappy = rng.random(400) < gappy_share
    holes = (rng.random(ys.shape) < 0.1) & gappy
    ys[holes] = np.nan
    if gappy.any():
        first = np.flatnonzero(gappy)[0]
        ys[:, first] = np.nan  # a column with no finite row at all
        ys[3, np.flatnonzero(gappy)[-1]] = np.inf  # an infinite value counts as missing
    n, sum_y, syy, fin, clean = _masked_moments(ys)

    ym = ols.y_moments(ys.copy())

    np.testing.assert_array_equal(ym.n, n)
    np.testing.assert_array_equal(ym.finite_all(), fin)
    np.testing.assert_array_equal(ym.ys, clean)
    np.testing.assert_array_equal(ym.gappy, np.flatnonzero(~fin.all(axis=0)))
    np.testing.assert_allclose(ym.sum_y, sum_y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ym.syy, syy, rtol=1e-13, atol=1e-15)
    some = ym.gappy[::2]
    np.testing.assert_array_equal(ym.finite(some), fin[:, some])


def test_y_moments_of_complete_series_have_no_gappy_columns() -> None:
    ys = np.random.default_rng(3).standard_normal((60, 9))
    ym = ols.y_moments(ys.copy())
    assert ym.gappy.size == 0 and ym.gappy_finite.shape == (60, 0)
    assert (ym.n == 60).all()
    np.testing.assert_array_equal(ym.sum_y, ys.sum(axis=0))


@pytest.mark.parametrize("size", [student_t._TABLE_MIN - 1, student_t._TABLE_MIN, 5_000])
@pytest.mark.parametrize("df", [3.0, 60.0, 250.0])
def test_p_values_match_scipy_on_both_sides_of_the_table_threshold(size: int, df: float) -> None:
    t = np.random.default_rng(size).normal(0.0, 4.0, size)
    t[:4] = [0.0, 39.995, -40.005, 55.0]  # the table's last interval and a value past it
    _, p = compute.t_and_p(t, np.ones_like(t), np.full_like(t, df))
    np.testing.assert_allclose(p, 2.0 * stats.t.sf(np.abs(t), df), rtol=1e-10, atol=0)


def test_p_values_of_nan_and_infinite_t_in_a_table_batch() -> None:
    t = np.linspace(-10.0, 10.0, 2_000)
    t[[5, 6, 7]] = [np.nan, np.inf, -np.inf]
    se = np.ones_like(t)
    se[8] = 0.0  # no standard error: no t, no p
    t_out, p = compute.t_and_p(t, se, np.full_like(t, 120.0))
    assert np.isnan(p[5]) and np.isnan(p[8]) and np.isnan(t_out[8])
    assert p[6] == 0.0 and p[7] == 0.0  # what scipy's stdtr gives for |t| = ∞
    assert 2.0 * special.stdtr(120.0, -np.inf) == 0.0
