"""`summarise` takes the median of the finite P&Ls exactly as `np.median` does (its shortcut must
not change a stored summary by one ulp)."""

from __future__ import annotations

import numpy as np

from stress.compute.scenarios import summarise


def test_median_is_numpys_for_odd_and_even_counts() -> None:
    rng = np.random.default_rng(20261125)
    for n in range(1, 41):
        for scale in (1e-3, 1.0, 1e5, 1e12):
            pnl = rng.normal(0.0, scale, n)
            assert summarise(pnl).median == float(np.median(pnl))


def test_median_skips_non_finite_values() -> None:
    pnl = np.array([np.nan, 3.0, -1.0, np.inf, 2.0, 10.0])
    summary = summarise(pnl)
    assert summary.median == float(np.median([3.0, -1.0, 2.0, 10.0])) == 2.5
    assert summarise(np.array([np.nan])).median is None
    assert summarise(np.array([0.1, 0.2])).median == float(np.median([0.1, 0.2]))
