"""Factor dollar exposures (calculations.md §4.7–4.8) against §10 Example 6 (book of Example 4)."""

from __future__ import annotations

import numpy as np
import pytest

from factors.exposures import (
    NO_COVERAGE,
    NO_POSITIONS,
    PositionBook,
    dv01,
    equity,
    portfolio_exposures,
    position_exposures,
)

CODES = ("market", "value", "growth", "momentum", "quality", "size", "low_volatility", "interest_rate")
XYZ = [1.20, -0.30, 0.45, 0.20, 0.10, -0.15, -0.25, -2.0]
ABC = [0.85, 0.50, -0.35, -0.10, 0.30, 0.40, 0.35, 1.5]
# Example 4: XYZ stock, ABC short stock, XYZ long call (dollar delta 10·100·0.60·50), ABC long put.
EXPOSURE = np.array([50_000.0, -30_000.0, 30_000.0, -13_125.0])
MARKET_VALUE = np.array([50_000.0, -30_000.0, 3_000.0, 1_250.0])
UNDERLYING = np.array([0, 1, 0, 1])  # XYZ, ABC
CASH = 45_750.0


def example_book(**overrides: object) -> PositionBook:
    fields: dict[str, object] = {
        "portfolio": np.zeros(4, dtype=np.int64),
        "underlying": UNDERLYING,
        "exposure": EXPOSURE,
        "beta": np.array([XYZ, ABC])[UNDERLYING],
        "regression": np.ones(4, dtype=bool),
        "quality": np.array(["full_history"] * 4),
    }
    fields.update(overrides)
    return PositionBook(**fields)  # type: ignore[arg-type]


def test_equity_is_cash_plus_market_values() -> None:
    v = equity(np.array([CASH]), MARKET_VALUE, np.zeros(4, dtype=np.int64), 1)
    assert v[0] == pytest.approx(70_000.0)


def test_position_exposures_of_the_stock_and_the_short() -> None:
    x = position_exposures(EXPOSURE, np.array([XYZ, ABC])[UNDERLYING])
    assert x[0, :7] == pytest.approx([60_000, -15_000, 22_500, 10_000, 5_000, -7_500, -12_500])
    assert x[1, :7] == pytest.approx([-25_500, -15_000, 10_500, 3_000, -9_000, -12_000, -10_500])
    # A long put has a negative dollar delta, hence a negative market exposure.
    assert x[3, 0] == pytest.approx(-13_125 * 0.85)


def test_example_6_portfolio_exposures_betas_and_rate() -> None:
    out = portfolio_exposures(example_book(), equity=np.array([70_000.0]), n_underlyings=2)
    expected = [59_343.75, -45_562.50, 51_093.75, 20_312.50, -4_937.50, -29_250.00, -35_093.75]
    assert out.exposure_dollar[0, :7] == pytest.approx(expected, abs=1e-6)
    assert out.beta[0, :7] == pytest.approx(
        [0.847768, -0.650893, 0.729911, 0.290179, -0.0705357, -0.417857, -0.501339], abs=5e-7
    )
    assert out.beta_gross[0, :7] == pytest.approx(
        [0.481980, -0.370051, 0.414975, 0.164975, -0.0401015, -0.237563, -0.285025], abs=5e-7
    )
    assert out.gross_exposure[0] == pytest.approx(123_125.0)
    assert out.exposure_dollar[0, 7] == pytest.approx(-224_687.50)
    assert dv01(out.exposure_dollar[0, 7]) == pytest.approx(-22.46875)
    # +100 bp on X_R: −2,246.88.
    assert out.exposure_dollar[0, 7] * 0.01 == pytest.approx(-2_246.875)
    # Market scenarios are linear in X_M: ±5 % → ±2,967.19.
    assert out.exposure_dollar[0, 0] * 0.05 == pytest.approx(2_967.1875)
    assert (out.status == "ok").all() and out.coverage_pct[0] == pytest.approx(1.0)
    assert out.contributing[0].tolist() == [4] * 8
    assert out.positions_full[0] == 4 and out.positions_default[0] == 0


def test_the_old_weighted_average_method_is_not_what_is_computed() -> None:
    out = portfolio_exposures(example_book(), equity=np.array([70_000.0]), n_underlyings=2)
    assert out.exposure_dollar[0, 0] != pytest.approx(90_162.50)


def test_largest_contributor_nets_positions_on_the_same_underlying() -> None:
    out = portfolio_exposures(example_book(), equity=np.array([70_000.0]), n_underlyings=2)
    # Market: XYZ 96,000 (stock + call) vs ABC −36,656.25; value: XYZ −24,000 vs ABC −21,562.5.
    assert out.largest_contributor[0, 0] == 0 and out.largest_contributor[0, 1] == 0
    # Quality: XYZ 8,000 vs ABC −15,562.5 → ABC.
    assert out.largest_contributor[0, 4] == 1


def test_default_betas_are_uncovered_and_unknown_exposures_excluded() -> None:
    beta = np.array([XYZ, ABC])[UNDERLYING].copy()
    beta[1] = [1.0, 0, 0, 0, 0, 0, 0, 0]  # ABC short stock on default betas
    exposure = EXPOSURE.copy()
    exposure[3] = np.nan  # the put has no delta
    book = example_book(
        beta=beta,
        exposure=exposure,
        regression=np.array([True, False, True, True]),
        quality=np.array(["full_history", "insufficient_history", "limited_history", "full_history"]),
    )
    out = portfolio_exposures(book, equity=np.array([70_000.0]), n_underlyings=2)
    assert out.gross_exposure[0] == pytest.approx(110_000.0)
    assert out.coverage_pct[0] == pytest.approx(80_000.0 / 110_000.0)
    assert out.exposure_dollar[0, 0] == pytest.approx(96_000.0 - 30_000.0)
    assert (out.positions_full[0], out.positions_limited[0], out.positions_default[0]) == (1, 1, 1)
    assert out.positions_excluded[0] == 1
    assert out.contributing[0, 0] == 3


def test_non_positive_equity_leaves_equity_betas_null_but_keeps_gross_ones() -> None:
    out = portfolio_exposures(example_book(), equity=np.array([-5_000.0]), n_underlyings=2)
    assert out.equity_undefined[0]
    assert np.isnan(out.beta[0]).all()
    assert out.beta_gross[0, 0] == pytest.approx(0.481980, abs=5e-7)
    assert out.exposure_dollar[0, 0] == pytest.approx(59_343.75)
    assert (out.status[0] == "ok").all()


def test_not_calculated_reasons() -> None:
    # Portfolio 0: Example 4; portfolio 1: only default betas; portfolio 2: nothing valued.
    book = PositionBook(
        portfolio=np.array([0, 0, 0, 0, 1], dtype=np.int64),
        underlying=np.array([0, 1, 0, 1, 0]),
        exposure=np.append(EXPOSURE, 10_000.0),
        beta=np.vstack([np.array([XYZ, ABC])[UNDERLYING], [1.0, 0, 0, 0, 0, 0, 0, 0]]),
        regression=np.array([True, True, True, True, False]),
        quality=np.array(["full_history"] * 4 + ["insufficient_history"]),
    )
    reasons: list[str | None] = [None] * 7 + ["rate_data_missing"]
    out = portfolio_exposures(book, equity=np.array([70_000.0, 10_000.0, 0.0]), n_underlyings=2, factor_reasons=reasons)
    assert (out.status[0, :7] == "ok").all() and out.status[0, 7] == "not_calculated"
    assert out.reason[0, 7] == "rate_data_missing" and np.isnan(out.exposure_dollar[0, 7])
    assert set(out.reason[1, :7]) == {NO_COVERAGE} and np.isnan(out.exposure_dollar[1]).all()
    assert set(out.reason[2, :7]) == {NO_POSITIONS} and out.gross_exposure[2] == 0
    assert np.isnan(out.beta[2]).all() and np.isnan(out.beta_gross[2]).all()
    assert (out.largest_contributor[1:] == -1).all()


def test_a_factor_without_any_beta_is_not_calculated() -> None:
    beta = np.array([XYZ, ABC])[UNDERLYING].copy()
    beta[:, 2] = np.nan  # growth degenerate for both underlyings
    out = portfolio_exposures(example_book(beta=beta), equity=np.array([70_000.0]), n_underlyings=2)
    assert out.status[0, 2] == "not_calculated" and out.reason[0, 2] == "factor_unavailable"
    assert out.status[0, 0] == "ok"
