"""`money_strings` gives exactly `[money(v) for v in values]` (the per-value formatter it replaces)."""

from __future__ import annotations

import numpy as np

from common.formatting import money
from stress.money_vector import money_json, money_strings


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
    assert money_json(values) == expected
    assert money_json(np.zeros(0)) == []
