"""calculations.md §10 Example 4 (exposures of a mixed book, both views, leverage) and the §2.5 invariants."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.ingest.test_compute_valuation import make_input

from ingest import compute
from ingest.compute import NA, Book, group_sums, portfolio_sums, ratios, value_positions


def example_4_valued() -> compute.ValuationResult:
    return value_positions(
        make_input(
            qty=[1000, -400, 10, 5],
            mult=[1, 1, 100, 100],
            entry=[50.0, 75.0, 3.0, 2.5],
            close_t=[50.0, 75.0, 3.0, 2.5],
            close_p=[50.0, 75.0, 3.0, 2.5],
            is_call=[False, False, True, False],
            strike=[0, 0, 50, 75],
            underlying=[None, None, 50.0, 75.0],
            delta=[np.nan, np.nan, 0.60, -0.35],
        )
    )


def book_of(result: compute.ValuationResult, qty_sign: list[int], is_option: list[bool]) -> Book:
    n = result.n
    return Book(
        market_value=result.market_value,
        dollar_exposure=result.dollar_exposure,
        notional=result.notional,
        unrealized_pnl=result.unrealized_pnl,
        daily_pnl=result.daily_pnl,
        quantity_sign=np.array(qty_sign, dtype=np.int8),
        is_option=np.array(is_option),
        dollar_gamma_1pct=np.full(n, np.nan),
        theta=np.full(n, np.nan),
        vega=np.full(n, np.nan),
        rho=np.full(n, np.nan),
    )


def test_example_4_position_values_notional_and_delta_adjusted_exposure() -> None:
    result = example_4_valued()
    assert (result.market_value // 100).tolist() == [50_000, -30_000, 3_000, 1_250]
    assert (result.notional // 100).tolist() == [50_000, 30_000, 50_000, 37_500]
    assert (result.dollar_exposure // 100).tolist() == [50_000, -30_000, 30_000, -13_125]


def test_example_4_capital_and_directional_views_with_leverage() -> None:
    result = example_4_valued()
    sums = portfolio_sums(book_of(result, [1, -1, 1, 1], [False, False, True, True]))
    totals = {k: int(v[0]) // 100 for k, v in sums.sums.items()}
    assert totals["long_mv"] == 54_250
    assert totals["short_mv"] == -30_000
    assert totals["gross_mv"] == 84_250
    assert totals["net_mv"] == 24_250
    assert totals["long_exposure"] == 80_000
    assert totals["short_exposure"] == -43_125
    assert totals["gross_exposure"] == 123_125
    assert totals["net_exposure"] == 36_875
    assert totals["notional"] == 167_500
    r = ratios(4_575_000, {k: int(v[0]) for k, v in sums.sums.items()})
    assert r.equity == 7_000_000
    assert r.gross_leverage == pytest.approx(1.75893, rel=1e-4)
    assert r.net_leverage == pytest.approx(0.526786, rel=1e-4)
    # By holding side 3 long / 1 short; by direction the long put is short exposure.
    assert int(result.dollar_exposure[3] < 0) == 1


def test_premium_times_delta_is_not_the_exposure() -> None:
    result = example_4_valued()
    assert int(result.dollar_exposure[2]) != 180_000  # the wrong "premium × delta" value
    assert int(result.dollar_exposure[3]) != -43_750


def test_zero_exposure_counts_neither_long_nor_short() -> None:
    zero = np.array([0, 500], dtype=np.int64)
    book = Book(
        market_value=zero,
        dollar_exposure=zero,
        notional=zero,
        unrealized_pnl=zero,
        daily_pnl=zero,
        quantity_sign=np.array([1, 1], dtype=np.int8),
        is_option=np.array([True, False]),
        dollar_gamma_1pct=np.zeros(2),
        theta=np.zeros(2),
        vega=np.zeros(2),
        rho=np.zeros(2),
    )
    sums = portfolio_sums(book).sums
    assert int(sums["short_exposure"][0]) == 0 and int(sums["long_exposure"][0]) == 500


def test_equity_at_or_below_zero_leaves_ratios_undefined() -> None:
    r = ratios(
        0,
        {
            "long_mv": 0,
            "short_mv": -100,
            "gross_mv": 100,
            "net_mv": -100,
            "long_exposure": 0,
            "short_exposure": -100,
            "gross_exposure": 100,
            "net_exposure": -100,
        },
    )
    assert r.equity == -100
    assert r.gross_leverage is None and r.net_mv_pct is None


def random_book(seed: int, n: int = 40) -> tuple[Book, np.ndarray]:
    rng = np.random.default_rng(seed)
    mv = rng.integers(-5_000_000, 5_000_000, n).astype(np.int64)
    ex = np.where(rng.random(n) < 0.1, NA, mv + rng.integers(-100_000, 100_000, n)).astype(np.int64)
    mv[rng.random(n) < 0.05] = NA
    book = Book(
        market_value=mv,
        dollar_exposure=np.where(mv == NA, NA, ex),
        notional=np.where(mv == NA, NA, np.abs(mv) * 3),
        unrealized_pnl=np.where(mv == NA, NA, mv // 7),
        daily_pnl=np.where(mv == NA, NA, mv // 50),
        quantity_sign=np.sign(rng.integers(-3, 3, n)).astype(np.int8),
        is_option=rng.random(n) < 0.3,
        dollar_gamma_1pct=rng.normal(size=n),
        theta=rng.normal(size=n),
        vega=rng.normal(size=n),
        rho=rng.normal(size=n),
    )
    return book, rng.integers(0, 6, n)


@pytest.mark.parametrize("seed", range(5))
def test_additive_grouping_sums_to_the_portfolio_total_and_views_are_consistent(seed: int) -> None:
    book, keys = random_book(seed)
    total = portfolio_sums(book)
    codes, labels = compute.factorize(np.array([f"g{k}" for k in keys], dtype=object))
    groups = group_sums(book, np.arange(book.n, dtype=np.int64), codes, len(labels))
    assert int(groups.count.sum()) == book.n
    for field in compute.SUM_FIELDS:
        assert int(groups.sums[field].sum()) == int(total.sums[field][0]), field
    for name in compute.GREEK_FIELDS:
        assert groups.greeks[name].sum() == pytest.approx(total.greeks[name][0])
    s = {k: int(v[0]) for k, v in total.sums.items()}
    assert s["gross_mv"] >= abs(s["net_mv"]) and s["gross_exposure"] >= abs(s["net_exposure"])
    assert s["gross_mv"] == s["long_mv"] - s["short_mv"] and s["net_mv"] == s["long_mv"] + s["short_mv"]
    assert s["gross_exposure"] == s["long_exposure"] - s["short_exposure"]
    assert s["net_exposure"] == s["long_exposure"] + s["short_exposure"]


def test_overlapping_grouping_counts_a_position_once_per_group() -> None:
    book, _ = random_book(7, n=3)
    members = np.array([0, 0, 1, 2], dtype=np.int64)  # position 0 carries two tags
    groups = np.array([0, 1, 1, 2], dtype=np.int64)
    sums = group_sums(book, members, groups, 3)
    assert sums.count.tolist() == [1, 2, 1]
    assert int(sums.sums["gross_mv"].sum()) >= int(portfolio_sums(book).sums["gross_mv"][0])


def test_stock_only_book_has_exposure_equal_to_market_value_and_notional_to_gross() -> None:
    result = value_positions(
        make_input(qty=[10, -20, 30], mult=[1, 1, 1], entry=[1, 2, 3], close_t=[5, 6, 7], close_p=[5, 6, 7])
    )
    assert result.dollar_exposure.tolist() == result.market_value.tolist()
    s = portfolio_sums(book_of(result, [1, -1, 1], [False] * 3)).sums
    assert int(s["gross_exposure"][0]) == int(s["gross_mv"][0]) == int(s["notional"][0])
