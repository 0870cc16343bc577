"""`summary_blocks` gives, portfolio by portfolio, exactly the per-portfolio `summary_block`.

Random P&L over 18 and 7 scenarios (odd and even counts, ties, zeros, negative zero, large and tiny
amounts) must give the very same dicts — same keys in the same order, same strings, same counts;
a portfolio with any non-finite P&L or correlation effect is left to the per-portfolio block (None).
"""

from __future__ import annotations

import numpy as np
import pytest

from stress.scenarios_present import summary_block
from stress.summary_vector import summary_blocks

CATEGORIES = ["market", "rates", "market", "rotation", "volatility", "historical"]


def per_portfolio(values: np.ndarray, effects: np.ndarray | None, keys: list[str], categories: list[str]) -> list:
    n_s, n_p = values.shape
    eff = effects if effects is not None else np.full((n_s, n_p), np.nan)
    return [
        summary_block(
            values=[float(v) for v in values[:, p]],
            keys=keys,
            categories=categories,
            effects=[float(v) for v in eff[:, p]],
            basis="correlated_pnl",
        )
        for p in range(n_p)
    ]


@pytest.mark.parametrize("n_s", [18, 7])
@pytest.mark.parametrize("with_effects", [True, False])
def test_every_finite_portfolio_gets_the_per_portfolio_block(n_s: int, with_effects: bool) -> None:
    rng = np.random.default_rng(n_s)
    n_p = 400
    values = rng.normal(0, 1, (n_s, n_p)) * 10.0 ** rng.integers(-2, 8, (n_s, n_p))
    values[:, :40] = np.round(values[:, :40], 0)  # ties
    values[0, 40:60] = 0.0
    values[1, 40:60] = -0.0
    values[:, 60:70] = 1234.565  # all equal, on a half cent
    effects = rng.normal(0, 100, (n_s, n_p)) if with_effects else None
    keys = [f"s{i}" for i in range(n_s)]
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(n_s)]
    fast = summary_blocks(values, effects, keys=keys, categories=categories, basis="correlated_pnl")
    slow = per_portfolio(values, effects, keys, categories)
    assert all(f is not None for f in fast)
    for f, s in zip(fast, slow, strict=True):
        assert f == s and list(f) == list(s) and list(f["category_breakdown"]) == list(s["category_breakdown"])


def test_portfolios_with_a_non_finite_value_are_left_to_the_per_portfolio_block() -> None:
    values = np.arange(12.0).reshape(3, 4) - 5
    effects = np.ones((3, 4))
    values[1, 1] = np.nan
    effects[2, 3] = np.inf
    blocks = summary_blocks(values, effects, keys=["a", "b", "c"], categories=["x", "y", "x"], basis="correlated_pnl")
    assert [b is None for b in blocks] == [False, True, False, True]
    assert blocks[0] == per_portfolio(values[:, :1], effects[:, :1], ["a", "b", "c"], ["x", "y", "x"])[0]
    assert summary_blocks(np.zeros((0, 2)), None, keys=[], categories=[], basis="direct_pnl") == [None, None]
