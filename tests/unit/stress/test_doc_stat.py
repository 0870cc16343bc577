"""`stat_values` gives exactly `[stat(v, digits) for v in values]`: the same floats, bit for bit.

The values cover every magnitude a fraction of equity or a factor move takes, decimal ties (half a
unit of the last digit, where numpy's rounding of the binary product and Python's correctly
rounded `round` may differ) and values within a few ulps of them, ±0 and negatives that round to
-0.0, NaN, ±inf, the end of exact integers (2^52 units) and huge, tiny and subnormal numbers.
Floats are compared by repr, which tells 0.0 from -0.0.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.formatting import stat
from stress.doc_stat import stat_values
from stress.result_documents import pct_values
from stress.scenarios_present import pct


def _values(seed: int, digits: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    unit = 10.0**-digits
    random = rng.choice([-1.0, 1.0], 30_000) * 10.0 ** rng.uniform(-12, 12, 30_000)
    ties = np.round(rng.normal(0.0, 1e3, 10_000), digits) + rng.choice([-0.5, 0.5], 10_000) * unit
    near_ties = ties * (1.0 + rng.integers(-8, 9, 10_000) * 2.0**-52)
    limit = 2.0**52 * unit
    special = [0.0, -0.0, -1e-9, 1e-9, -0.4 * unit, 0.5 * unit, -0.5 * unit, 1.5 * unit, 2.5 * unit, 0.1, 0.7]
    special += [limit - 0.5 * unit, limit, limit + 1.0, -limit, 1e300, -1e300, 1e-300, 5e-324, -5e-324]
    special += [1.7976931348623157e308, np.nan, np.inf, -np.inf]
    return np.concatenate([random, ties, near_ties, special])


@pytest.mark.parametrize("digits", [6, 8])
def test_every_value_rounds_as_stat(digits: int) -> None:
    values = _values(digits, digits)
    got = stat_values(values, digits)
    assert [repr(v) for v in got] == [repr(stat(float(v), digits)) for v in values]


def test_two_dimensional_arrays_round_in_c_order() -> None:
    values = _values(1, 6)[:5_000].reshape(50, 100).T
    assert [repr(v) for v in stat_values(values)] == [repr(stat(float(v))) for v in values.ravel()]
    assert stat_values(np.zeros(0)) == []


def test_pct_values_is_pct_element_wise() -> None:
    rng = np.random.default_rng(17)
    pnl = np.concatenate([rng.normal(0.0, 1e5, 5_000), [1.0, -1.0, 5.0, np.nan, 3.0, 1e308, -0.0, 2.0]])
    equity = np.concatenate([rng.normal(1e5, 1e5, 5_000), [0.0, -5.0, np.inf, 1.0, np.nan, 1e-10, 7.0, 4e6]])
    assert [repr(v) for v in pct_values(pnl, equity)] == [
        repr(pct(float(p), float(e))) for p, e in zip(pnl, equity, strict=True)
    ]
