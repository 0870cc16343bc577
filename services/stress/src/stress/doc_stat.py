"""`common.formatting.stat` over a whole array at once, with the very same floats.

`stat(x, d)` is Python's `round(x, d)`: the double nearest to n·10^-d, n being x·10^d rounded
half-even exactly (from the binary value of x). Away from a half unit, rounding the binary product
(`np.rint(x * 10^d)`) picks the same n — the product is off by at most half an ulp (≈ 1e-16
relative), far less than the distance to the rounding boundary — and for |n| < 2^52 the IEEE
quotient n / 10^d is the double nearest to n·10^-d, as Python's strtod gives (such a quotient is
never halfway between two doubles). The signs of zero agree too (`rint(-0.3)` is -0.0, as
`round(-3e-7, 6)`). Values near a half unit, too large for exact integers, or not finite go through
`stat` itself.
"""

from __future__ import annotations

import numpy as np

from common.formatting import stat
from stress.money_vector import scaled_product

# Relative slack around a half unit: far above the product's rounding error, far below one unit.
_TIE_TOLERANCE = 1e-9
# Below 2^52 every integer and every half-integer is a double: rint and the quotient are exact.
_MAX_SCALED = 2.0**52


def stat_values(values: np.ndarray, digits: int = 6) -> list[float | None]:
    """`[stat(v, digits) for v in values]` (None for NaN/inf) for a float array, in C order."""
    scale = float(10**digits)  # exact for digits ≤ 22
    v, _, scaled, exact = scaled_product(values, scale, limit=_MAX_SCALED, tolerance=_TIE_TOLERANCE)
    out: list[float | None] = (np.rint(scaled) / scale).tolist()
    for i in np.flatnonzero(~exact).tolist():
        out[i] = stat(float(v[i]), digits)
    return out
