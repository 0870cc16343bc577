"""`money_strings` and `money_texts` give exactly what `money` (the per-value formatter they replace) gives."""

from __future__ import annotations

from decimal import InvalidOperation

import numpy as np
import pytest

from common.formatting import money
from stress.money_vector import money_strings, money_texts


def test_matches_money_on_random_and_tie_values() -> None:
    rng = np.random.default_rng(20261124)
    values = np.concatenate(
        [
            rng.normal(0.0, 1e5, 20_000),
            rng.normal(0.0, 1.0, 5_000),
            np.round(rng.normal(0.0, 1e4, 5_000), 3),  # many exact half cents in decimal
            np.round(rng.normal(0.0, 1e3, 5_000), 2) + 0.005,
        ]
    )
    assert money_strings(values) == [money(float(v)) for v in values]


def test_edge_values() -> None:
    values = np.array([0.0, -0.0, 0.005, -0.005, 1.005, 1.015, 2.675, -2.675, 0.125, -0.004, 1e14 + 0.125, 1e16, -1e17])
    expected = [money(float(v)) for v in values]
    assert money_strings(values) == expected
    assert expected[:2] == ["0.00", "0.00"] and expected[5] == "1.02"  # never "-0.00"; half-even on the repr


def test_non_finite_values_are_none() -> None:
    assert money_strings(np.array([np.nan, np.inf, -np.inf, 1.0])) == [None, None, None, "1.00"]


def test_json_tokens_are_the_quoted_strings_or_null() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.normal(0.0, 1e5, 5_000),
            np.round(rng.normal(0.0, 1e3, 2_000), 2) + 0.005,  # ties: the exact Decimal path
            np.array([0.0, -0.0, 2.675, 1e16, -1e17, np.nan, np.inf, -np.inf]),
        ]
    )
    expected = [
        "null" if m is None else f'"{m}"' for m in (money(float(v)) if np.isfinite(v) else None for v in values)
    ]
    assert money_texts([values]) == expected
    assert money_texts([np.zeros(0)]) == []


def _awkward_values(seed: int) -> np.ndarray:
    """Random amounts over every magnitude money meets, and the values the fast path must hand over
    to `money` itself: decimal half cents (ties), values within a few ulps of one, ±0, NaN, ±inf, the
    limit of exact float cents (1e13 dollars), huge (up to what Decimal cents hold), tiny and
    subnormal numbers."""
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(-6, 16, 40_000)
    random = rng.choice([-1.0, 1.0], 40_000) * magnitudes
    half_cents = np.round(rng.normal(0.0, 1e6, 10_000), 2) + rng.choice([-0.005, 0.005], 10_000)
    near_ties = half_cents * (1.0 + rng.integers(-4, 5, 10_000) * 2.0**-52)
    cents = np.round(rng.normal(0.0, 1e5, 5_000), 2)  # whole cents: far from any tie
    boundary = np.array([9_999_999_999_999.99, 9_999_999_999_999.995, 1e13, 1e13 + 0.01, 1e15 / 100 - 0.005])
    special = np.array(
        [0.0, -0.0, 0.005, -0.005, 0.015, 2.675, -2.675, 1e-300, -1e-300, 5e-324, -5e-324, 0.004999999999999999]
    )
    special = np.concatenate([special, [1e20, -1e25, np.nan, np.inf, -np.inf]])
    return np.concatenate([random, half_cents, near_ties, cents, boundary, special])


def test_every_kind_of_value_formats_as_money() -> None:
    values = _awkward_values(20261125)
    assert money_strings(values) == [money(float(v)) for v in values]
    assert money_texts([values]) == ["null" if m is None else f'"{m}"' for m in (money(float(v)) for v in values)]


def test_two_dimensional_arrays_format_in_c_order() -> None:
    values = _awkward_values(3)[:6_000].reshape(60, 100)
    assert money_strings(values.T) == [money(float(v)) for v in values.T.ravel()]
    assert money_strings(np.zeros(0)) == [] and money_texts([np.zeros((0, 8))]) == []


def test_texts_put_every_token_between_the_fixed_pieces() -> None:
    values = _awkward_values(11)
    rng = np.random.default_rng(5)
    others = rng.permutation(values)

    def token(v: float) -> str:
        m = money(float(v))
        return "null" if m is None else f'"{m}"'

    texts = money_texts([',"pnl":', values, ',"linear_pnl":', others, "}"])
    assert texts == [f',"pnl":{token(a)},"linear_pnl":{token(b)}}}' for a, b in zip(values, others, strict=True)]
    assert money_texts([values[:3], "%é"]) == [f"{token(v)}%é" for v in values[:3]]  # any text, as it is
    with pytest.raises(ValueError, match="control character"):
        money_texts([values, "\x01"])


def test_amounts_beyond_decimal_cents_fail_as_money_fails() -> None:
    with pytest.raises(InvalidOperation):
        money_strings(np.array([1.0, 1e300]))
    with pytest.raises(InvalidOperation):
        money_texts([np.array([1.0, 1e300])])
    with pytest.raises(InvalidOperation):
        money(1e300)
