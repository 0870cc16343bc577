"""Pure shaping helpers of the factor routes: matrix diagnostics, raw-series mapping, data_status,
the #46 ORDER BY and the §4.9 attribution arithmetic."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from factors import compute
from factors.factor_attribution import contributions
from factors.factor_read import correlation_diagnostics, data_status, dense_cells, high_pairs, order_by, series_codes


def test_diagnostics_match_the_series_statistics_of_compute() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 4))
    x[:, 2] = 0.9 * x[:, 1] + 0.3 * x[:, 2]  # a collinear pair
    names = ["market", "value", "growth", "size"]
    stats = compute.matrix_stats(x, names)
    diag = correlation_diagnostics(stats.correlation, names)
    assert diag["condition_number"] == pytest.approx(stats.condition_number, rel=1e-5)
    assert [diag["vif"][n] for n in names] == pytest.approx(stats.vif.tolist(), rel=1e-5)
    assert diag["eigenvalues"] == pytest.approx(stats.eigenvalues.tolist(), abs=1e-6)
    assert diag["min_off_diagonal"] == pytest.approx(stats.off_diagonal_min, abs=1e-6)
    assert diag["mean_off_diagonal"] == pytest.approx(stats.off_diagonal_mean, abs=1e-6)
    pairs = high_pairs(stats.correlation, names)
    assert [(p["factor_1"], p["factor_2"]) for p in pairs] == [(a, b) for a, b, _ in stats.high_pairs]


def test_vif_of_two_series_with_rho_minus_0_9() -> None:
    corr = np.array([[1.0, -0.9], [-0.9, 1.0]])
    diag = correlation_diagnostics(corr, ["value", "growth"])
    assert diag["vif"] == {"value": pytest.approx(1 / 0.19), "growth": pytest.approx(1 / 0.19)}
    assert diag["condition_number"] == pytest.approx(math.sqrt(1.9 / 0.1))
    assert high_pairs(corr, ["value", "growth"]) == [{"factor_1": "value", "factor_2": "growth", "correlation": -0.9}]


def test_incomplete_matrix_has_no_diagnostics() -> None:
    corr, _ = dense_cells(["a", "b"], [("a", "a", 1.0, 1.0), ("b", "b", 1.0, 1.0), ("a", "b", 0.5, 0.5)])
    assert np.isnan(corr[1, 0])
    assert correlation_diagnostics(corr, ["a", "b"])["condition_number"] is None


def test_raw_series_map_back_to_codes() -> None:
    proxies = {"SPY": "market", "VTV": "value", "DGS10": "interest_rate"}
    assert series_codes(["SPY", "VTV", "dy10"], proxies) == ["market", "value", "interest_rate"]
    assert series_codes(["market", "value"], proxies) == ["market", "value"]


def test_data_status() -> None:
    d0, d1 = date(2026, 11, 23), date(2026, 11, 24)
    assert data_status(d1, d1, False) == "fresh"
    assert data_status(d1, d1, True) == "partial"
    assert data_status(d0, d1, True) == "stale"
    assert data_status(d1, None, False) == "fresh"


def test_order_by_binds_beta_codes_and_ends_with_the_id() -> None:
    sql, params = order_by([("beta.market", True), ("symbol", False)])
    assert sql == (
        "ORDER BY (pos.betas ->> :sort_code_0)::float8 DESC NULLS LAST, pos.symbol ASC NULLS LAST, pos.position_id ASC"
    )
    assert params == {"sort_code_0": "market"}


def test_attribution_contributions() -> None:
    # Two days; day 2 has no exposures on the previous day and is left out.
    returns = np.array([[0.01, 0.02, 0.001], [0.02, 0.0, 0.0]])  # market, value, Δy
    exposures = np.array([[1000.0, 500.0, -20000.0], [np.nan, np.nan, np.nan]])
    loadings = np.array([[np.nan, 0.9, 0.05], [np.nan, 0.9, 0.05]])
    used, totals = contributions(returns, exposures, loadings)
    assert used.tolist() == [True, False]
    assert totals[0] == pytest.approx(1000 * 0.01)  # X_M · r_M (exact)
    assert totals[1] == pytest.approx(500 * (0.02 - 0.9 * 0.01))  # X_V · f_V
    assert totals[2] == pytest.approx(-20000 * (0.001 - 0.05 * 0.01))
