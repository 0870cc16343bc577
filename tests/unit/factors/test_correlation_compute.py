"""Position correlations, pure maths (calculations.md §7.2–7.3, §10 Example 10b, §11.7)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from factors.correlation_compute import (
    BELOW_FILTER,
    INSUFFICIENT_HISTORY,
    MISSING_EXPOSURE,
    CorrelationFilters,
    PositionRow,
    build_nodes,
    candidate_mask,
    cluster_labels,
    compute_correlations,
    data_quality,
    direction_adjusted,
    find_clusters,
    inputs_hash,
    pairwise_correlations,
    passes_filter,
    portfolio_metrics,
    significance,
    simple_returns,
)

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
EXPOSURE = np.array([40_000.0, 30_000.0, -20_000.0, 10_000.0])
R_10B = np.array(
    [
        [1.00, 0.82, 0.75, 0.10],
        [0.82, 1.00, 0.68, -0.05],
        [0.75, 0.68, 1.00, 0.20],
        [0.10, -0.05, 0.20, 1.00],
    ]
)
NO_TAGS: list[tuple[str, ...]] = [(), (), (), ()]
NO_SECTORS: list[str | None] = [None, None, None, None]


def returns_with_exact_correlation(corr: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    """n × k returns whose sample correlation is exactly `corr` (whitened noise times a Cholesky factor)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, corr.shape[0]))
    z -= z.mean(axis=0)
    cov = z.T @ z / (n - 1)
    z = z @ np.linalg.inv(np.linalg.cholesky(cov)).T
    return 0.01 * z @ np.linalg.cholesky(corr).T


def closes_from_returns(returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return np.vstack([np.full(returns.shape[1], start), start * np.cumprod(1.0 + returns, axis=0)])


def trading_days(n: int, end: date = date(2026, 11, 24)) -> list[date]:
    days: list[date] = []
    d = end
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


def position(underlying: str, exposure: float | None, ptype: str = "LONG", **kw: object) -> PositionRow:
    mv = kw.pop("market_value", exposure)
    return PositionRow(uuid.uuid4(), underlying, ptype, exposure, mv, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Example 10b


def test_example_10b_summary_metrics() -> None:
    m = portfolio_metrics(R_10B, EXPOSURE, SYMBOLS)
    assert m.average_correlation == pytest.approx(0.416667, abs=5e-7)
    assert m.weighted_average_correlation == pytest.approx(0.587714, abs=5e-7)
    assert m.direction_adjusted_correlation == pytest.approx(-0.0111429, abs=5e-8)
    assert m.effective_positions_hhi == pytest.approx(3.33333, abs=5e-6)
    assert m.effective_positions_corr == pytest.approx(1.40568, abs=5e-6)
    assert (m.valid_pairs, m.null_pairs) == (6, 0)


def test_example_10b_clusters_merge_heights_and_concentration() -> None:
    labels, heights = cluster_labels(R_10B, 0.70)
    assert heights[0] == pytest.approx(0.18) and heights[1] == pytest.approx(0.285)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    summary = find_clusters(R_10B, EXPOSURE, SYMBOLS, NO_TAGS, NO_SECTORS, 0.70)
    assert len(summary.clusters) == 1
    cluster = summary.clusters[0]
    assert cluster.symbols == ("AAA", "BBB", "CCC")  # DDD stays alone
    assert cluster.avg_correlation == pytest.approx(0.75)
    assert cluster.correlation_to_cluster == pytest.approx((0.785, 0.750, 0.715))
    assert cluster.gross == pytest.approx(90_000) and cluster.net == pytest.approx(50_000)
    assert summary.concentration_gross == pytest.approx(0.90)
    assert summary.concentration_net == pytest.approx(0.50)
    assert cluster.share_of_gross == pytest.approx(0.90)
    assert cluster.member_share_of_gross == pytest.approx((0.4, 0.3, 0.2))
    assert (cluster.nickname, cluster.nickname_source) == ("AAA lookalikes", "largest_position")


def test_example_10b_significance() -> None:
    t, p = significance(0.82, 60)
    assert t == pytest.approx(10.9108, abs=5e-5)
    assert p == pytest.approx(1.11e-15, rel=5e-3)


def test_example_10b_end_to_end_from_prices_with_an_option_joining_its_underlying() -> None:
    returns = returns_with_exact_correlation(R_10B, 90)
    closes = closes_from_returns(returns)
    positions = [
        position("AAA", 30_000.0),
        position("AAA", 10_000.0, "LC", market_value=1_500.0),  # dollar delta of a call joins AAA
        position("BBB", 30_000.0),
        position("CCC", -20_000.0, "SHORT"),
        position("DDD", 10_000.0),
    ]
    nodes = build_nodes(positions)
    assert nodes.symbols == SYMBOLS
    assert nodes.exposure.tolist() == EXPOSURE.tolist()
    assert nodes.position_types[0] == ["LC", "LONG"] and len(nodes.position_ids[0]) == 2
    assert nodes.gross == 100_000.0  # G = Σ|E_i| over positions
    filters = CorrelationFilters()
    candidates = candidate_mask(nodes, filters)
    assert candidates.all()
    result = compute_correlations(nodes, candidates, closes, trading_days(91), filters)
    np.testing.assert_allclose(result.pairs.rho, R_10B, atol=1e-10)
    assert (result.pairs.n[np.triu_indices(4, 1)] == 90).all()
    m = result.metrics
    assert m.weighted_average_correlation == pytest.approx(0.587714, abs=5e-7)
    assert m.direction_adjusted_correlation == pytest.approx(-0.0111429, abs=5e-8)
    assert m.effective_positions_corr == pytest.approx(1.40568, abs=5e-6)
    assert result.clusters.concentration_gross == pytest.approx(0.90)
    assert result.data_quality == "sufficient"
    assert result.window_start == trading_days(91)[1] and result.window_end == date(2026, 11, 24)
    t_ab, p_ab = significance(0.82, 90)
    assert result.pairs.t_stat[0, 1] == pytest.approx(t_ab, rel=1e-8)
    assert result.pairs.p_value[0, 1] == pytest.approx(p_ab, rel=1e-6)


# ---------------------------------------------------------------- pairwise statistics


def test_pairwise_equals_pandas_corr_with_min_periods_30() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((90, 8)) * 0.01
    x[:, 1] += x[:, 0]
    x[rng.random(x.shape) < 0.25] = np.nan
    x[:65, 7] = np.nan  # 25 returns at most: every pair with it is NULL
    stats_ = pairwise_correlations(x)
    expected = pd.DataFrame(x).corr(min_periods=30).to_numpy()
    off = ~np.eye(8, dtype=bool)
    assert np.array_equal(np.isnan(stats_.rho[off]), np.isnan(expected[off]))
    np.testing.assert_allclose(stats_.rho[off], expected[off], atol=1e-12, equal_nan=True)
    assert np.isnan(stats_.rho[7, :7]).all() and np.isnan(stats_.p_value[7, :7]).all()


def test_pair_below_30_common_observations_is_null_not_zero_and_30_is_enough() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 3))
    x[:31, 1] = np.nan  # 29 common dates with column 0
    x[:30, 2] = np.nan  # 30 common dates with column 0
    s = pairwise_correlations(x)
    assert s.n[0, 1] == 29 and np.isnan(s.rho[0, 1]) and s.rho[0, 1] != 0
    assert s.n[0, 2] == 30 and np.isfinite(s.rho[0, 2])


def test_p_values_use_the_aligned_pair_sample() -> None:
    rng = np.random.default_rng(11)
    a = rng.standard_normal(80)
    b = 0.5 * a + rng.standard_normal(80)
    a[rng.random(80) < 0.3] = np.nan
    b[rng.random(80) < 0.3] = np.nan
    s = pairwise_correlations(np.column_stack([a, b]))
    both = np.isfinite(a) & np.isfinite(b)
    r, p = stats.pearsonr(a[both], b[both])
    assert s.n[0, 1] == both.sum()
    assert s.rho[0, 1] == pytest.approx(r, abs=1e-12)
    assert s.p_value[0, 1] == pytest.approx(p, rel=1e-9)
    # The legacy defect (§11.7 #51): each series NaN-dropped separately, then truncated to a common length.
    a_only, b_only = a[np.isfinite(a)], b[np.isfinite(b)]
    k = min(len(a_only), len(b_only))
    misaligned = stats.pearsonr(a_only[:k], b_only[:k])[0]
    assert abs(misaligned - s.rho[0, 1]) > 0.05


def test_returns_need_both_closes_and_are_never_forward_filled() -> None:
    closes = np.array([[100.0], [101.0], [np.nan], [103.02], [104.0]])
    r = simple_returns(closes)[:, 0]
    assert r[0] == pytest.approx(0.01)
    assert np.isnan(r[1]) and np.isnan(r[2])  # the gap is not booked to one day, nor replaced by 0
    assert r[3] == pytest.approx(104.0 / 103.02 - 1)


def test_direction_adjusted_correlation_shows_hedges_as_negative() -> None:
    rho = np.array([[1.0, 0.9], [0.9, 1.0]])
    d = direction_adjusted(rho, np.array([50_000.0, -50_000.0]))
    assert d[0, 1] == pytest.approx(-0.9) and d[0, 0] == 1.0
    m = portfolio_metrics(rho, np.array([50_000.0, -50_000.0]), ["LONG1", "SHORT1"])
    assert m.weighted_average_correlation == pytest.approx(0.9)
    assert m.direction_adjusted_correlation == pytest.approx(-0.9)
    summary = find_clusters(rho, np.array([50_000.0, -50_000.0]), ["LONG1", "SHORT1"], [(), ()], [None, None], 0.7)
    assert summary.concentration_gross == pytest.approx(1.0)
    assert summary.concentration_net == pytest.approx(0.0)  # a hedged cluster contributes nothing net


# ---------------------------------------------------------------- filters and nodes


def test_filter_modes() -> None:
    # G = 500,000: A passes both ($15,000, 3 %), B only the weight ($8,000, 1.6 %), C only the value
    # ($12,000 short but 2.4 %: both), D neither on value ($5,000) but exactly 1 % on weight.
    e = np.array([15_000.0, 8_000.0, -12_000.0, 5_000.0])
    g, kw = 500_000.0, {"min_value": 10_000.0, "min_weight": 0.01}
    assert passes_filter(e, g, mode="value_only", **kw).tolist() == [True, False, True, False]
    assert passes_filter(e, g, mode="weight_only", **kw).tolist() == [True, True, True, True]
    assert passes_filter(e, g, mode="both", **kw).tolist() == [True, False, True, False]
    assert passes_filter(e, g, mode="either", **kw).tolist() == [True, True, True, True]
    # G = 1,000,000: A 1.5 % and C 1.2 % pass on weight, B 0.8 % and D 0.5 % do not.
    assert passes_filter(e, 1_000_000.0, mode="weight_only", **kw).tolist() == [True, False, True, False]
    # G = 2,000,000: A 0.75 % fails the weight, so `both` drops it while `either` keeps it on value.
    assert passes_filter(e, 2_000_000.0, mode="both", **kw).tolist() == [False, False, False, False]
    assert passes_filter(e, 2_000_000.0, mode="either", **kw).tolist() == [True, False, True, False]
    assert passes_filter(e, 0.0, mode="weight_only", **kw).tolist() == [False] * 4
    with pytest.raises(ValueError):
        passes_filter(e, g, mode="bogus", **kw)


def test_option_exposure_uses_dollar_delta_so_options_pass_the_value_filter() -> None:
    # §11.7 #48: a call worth $1,500 of premium with $40,000 of dollar delta is a $40,000 node.
    nodes = build_nodes([position("XYZ", 40_000.0, "LC", market_value=1_500.0), position("ABC", 20_000.0)])
    assert candidate_mask(nodes, CorrelationFilters()).tolist() == [True, True]
    assert nodes.market_value.tolist() == [20_000.0, 1_500.0]


def test_nodes_without_any_exposure_are_flagged_missing_exposure() -> None:
    positions = [position("AAA", 50_000.0), position("BBB", 40_000.0), position("OPT", None, "LC", market_value=900.0)]
    nodes = build_nodes(positions)
    assert nodes.gross == 90_000.0  # G is over priced positions only
    candidates = candidate_mask(nodes, CorrelationFilters())
    closes = closes_from_returns(returns_with_exact_correlation(np.eye(3), 40))
    result = compute_correlations(nodes, candidates, closes, trading_days(41), CorrelationFilters())
    assert result.exclusion_reason == [None, None, MISSING_EXPOSURE]


def test_short_history_node_is_excluded_and_quality_is_limited() -> None:
    corr = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.2], [0.3, 0.2, 1.0]])
    closes = closes_from_returns(returns_with_exact_correlation(corr, 90))
    closes[:65, 2] = np.nan  # CCC: 25 returns
    nodes = build_nodes([position("AAA", 50_000.0), position("BBB", 40_000.0), position("CCC", 30_000.0)])
    result = compute_correlations(nodes, np.ones(3, dtype=bool), closes, trading_days(91), CorrelationFilters())
    assert result.exclusion_reason == [None, None, INSUFFICIENT_HISTORY]
    assert result.observations.tolist() == [90, 90, 25]
    assert result.included_index.tolist() == [0, 1]
    assert result.data_quality == "limited"
    assert "nodes_excluded_insufficient_history" in result.flags


def test_below_filter_nodes_are_listed_and_two_short_nodes_make_insufficient_quality() -> None:
    closes = closes_from_returns(returns_with_exact_correlation(np.eye(3), 90))
    closes[:70, 1:] = np.nan
    nodes = build_nodes([position("AAA", 500_000.0), position("BBB", 400_000.0), position("TINY", 100.0)])
    candidates = candidate_mask(nodes, CorrelationFilters())
    result = compute_correlations(nodes, candidates, closes, trading_days(91), CorrelationFilters())
    assert result.exclusion_reason == [None, INSUFFICIENT_HISTORY, BELOW_FILTER]
    assert result.data_quality == "insufficient"
    assert result.metrics.average_correlation is None


def test_data_quality_rules() -> None:
    assert data_quality(1, 0, 0, 0) == "insufficient"
    assert data_quality(3, 0, 3, 0) == "insufficient"
    assert data_quality(3, 3, 0, 0) == "sufficient"
    assert data_quality(3, 2, 1, 0) == "limited"
    assert data_quality(3, 3, 0, 1) == "limited"


def test_inputs_hash_changes_with_exposures_filters_and_date_only() -> None:
    nodes = build_nodes([position("AAA", 50_000.0), position("BBB", 40_000.0)])
    cand = np.ones(2, dtype=bool)
    f = CorrelationFilters()
    base = inputs_hash(nodes, f, as_of=date(2026, 11, 24), duration_days=90, candidates=cand)
    assert base == inputs_hash(nodes, f, as_of=date(2026, 11, 24), duration_days=90, candidates=cand)
    moved = build_nodes([position("AAA", 50_000.01), position("BBB", 40_000.0)])
    assert base != inputs_hash(moved, f, as_of=date(2026, 11, 24), duration_days=90, candidates=cand)
    assert base != inputs_hash(nodes, f, as_of=date(2026, 11, 23), duration_days=90, candidates=cand)
    other = CorrelationFilters(min_position_value=Decimal("20000"))
    assert base != inputs_hash(nodes, other, as_of=date(2026, 11, 24), duration_days=90, candidates=cand)


# ---------------------------------------------------------------- effective positions and clusters


def test_effective_positions_drop_the_node_with_most_null_pairs() -> None:
    rho = np.array(
        [
            [1.0, 0.5, np.nan, 0.2],
            [0.5, 1.0, np.nan, np.nan],
            [np.nan, np.nan, 1.0, 0.1],
            [0.2, np.nan, 0.1, 1.0],
        ]
    )
    e = np.array([40_000.0, 30_000.0, 20_000.0, 10_000.0])
    m = portfolio_metrics(rho, e, ["A", "B", "C", "D"])
    # B and C have 2 NULLs each; C has the smaller |e| and goes first, then R over A, B, D still has B–D
    # NULL: B (1 NULL, larger |e| than D's 1 NULL) stays and D goes.
    assert m.dropped_for_effective == ("C", "D")
    a = np.array([40_000.0, 30_000.0]) / 70_000.0
    r = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert m.effective_positions_corr == pytest.approx(1.0 / (a @ r @ a))
    assert m.null_pairs == 3 and m.valid_pairs == 3
    assert m.average_correlation == pytest.approx((0.5 + 0.2 + 0.1) / 3)


def test_effective_positions_are_clipped_to_one_and_n() -> None:
    e = np.array([10_000.0, 10_000.0, 10_000.0])
    ones = np.ones((3, 3))
    assert portfolio_metrics(ones, e, ["A", "B", "C"]).effective_positions_corr == pytest.approx(1.0)
    anti = np.array([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]])  # a'Ra = 0 → undefined
    m = portfolio_metrics(anti, e, ["A", "B", "C"])
    assert m.effective_positions_corr is None and "effective_positions_undefined" in m.flags
    mild = np.array([[1.0, -0.4, -0.4], [-0.4, 1.0, -0.4], [-0.4, -0.4, 1.0]])
    assert portfolio_metrics(mild, e, ["A", "B", "C"]).effective_positions_corr == pytest.approx(3.0)


def test_negative_correlations_are_never_similar() -> None:
    rho = np.array([[1.0, -0.95], [-0.95, 1.0]])
    summary = find_clusters(rho, np.array([10_000.0, 10_000.0]), ["A", "B"], [(), ()], [None, None], 0.0)
    assert summary.clusters == () and summary.concentration_gross == 0.0


def test_average_linkage_does_not_chain_unrelated_names() -> None:
    # A–B and B–C are similar but A–C are not: single linkage would chain all three at 0.7.
    rho = np.array([[1.0, 0.75, 0.10], [0.75, 1.0, 0.75], [0.10, 0.75, 1.0]])
    summary = find_clusters(rho, np.array([3.0, 2.0, 1.0]) * 1e4, ["A", "B", "C"], [(), (), ()], [None] * 3, 0.7)
    assert [c.symbols for c in summary.clusters] == [("A", "B")]


def test_nickname_prefers_a_tag_then_a_sector_then_the_largest_member() -> None:
    rho = np.full((4, 4), 0.9)
    np.fill_diagonal(rho, 1.0)
    e = np.array([10.0, 40.0, 20.0, 30.0]) * 1e3
    syms = ["A", "B", "C", "D"]
    tags = [("Tech",), ("Tech", "Core"), ("Tech",), ("Core",)]  # Tech on 75 %
    sectors: list[str | None] = ["Technology", "Technology", "Technology", "Energy"]
    assert find_clusters(rho, e, syms, tags, sectors, 0.7).clusters[0].nickname == "Tech"
    tags2 = [("Tech",), ("Core",), ("Tech",), ("Core",)]  # 50 % each: sector (75 %) wins
    c = find_clusters(rho, e, syms, tags2, sectors, 0.7).clusters[0]
    assert (c.nickname, c.nickname_source) == ("Technology", "sector")
    c = find_clusters(rho, e, syms, tags2, ["Technology", "Energy", "Unknown", None], 0.7).clusters[0]
    assert (c.nickname, c.nickname_source) == ("B lookalikes", "largest_position")
    assert c.symbols == ("B", "D", "C", "A")  # members by descending |e|


def test_threshold_on_read_recuts_the_same_pairs() -> None:
    strict = find_clusters(R_10B, EXPOSURE, SYMBOLS, NO_TAGS, NO_SECTORS, 0.80)
    assert [c.symbols for c in strict.clusters] == [("AAA", "BBB")]
    loose = find_clusters(R_10B, EXPOSURE, SYMBOLS, NO_TAGS, NO_SECTORS, 0.05)
    assert [set(c.symbols) for c in loose.clusters] == [{"AAA", "BBB", "CCC", "DDD"}]


def test_large_book_is_computed_without_per_pair_loops_quickly() -> None:
    import time

    rng = np.random.default_rng(0)
    k, t = 400, 252
    market = rng.standard_normal((t, 1)) * 0.01
    returns = market + rng.standard_normal((t, k)) * 0.01
    closes = closes_from_returns(returns)
    nodes = build_nodes([position(f"S{i:04d}", 50_000.0 + i) for i in range(k)])
    started = time.perf_counter()
    result = compute_correlations(
        nodes, np.ones(k, dtype=bool), closes, trading_days(t + 1), CorrelationFilters(min_portfolio_weight=0.0)
    )
    elapsed = time.perf_counter() - started
    assert result.metrics.valid_pairs == k * (k - 1) // 2
    assert elapsed < 2.0
