"""`common.formatting.money` over a whole array at once, with the very same strings.

`money(x)` rounds `Decimal(repr(x))` to cents half-even. Far from a half cent, rounding the binary
product `x * 100` half-even (`np.rint`) lands on the same cent: the decimal repr and the product
differ from the exact value by a few ulps, far less than the distance to the rounding boundary.
Values within a tolerance of a half cent (or too large for exact float cents) go through `money`
itself, so the result is identical value for value while ~all values skip the Decimal arithmetic
that dominated the stress step's row building.
"""

from __future__ import annotations

import numpy as np

from common.formatting import money

# Relative slack around a half cent: far above the few-ulp (≈ 1e-15) error of repr/product, far below
# a cent, so only genuinely ambiguous values take the exact Decimal path.
_TIE_TOLERANCE = 1e-9
# Beyond ~2^50 cents a float no longer holds whole cents exactly: use Decimal.
_MAX_CENTS = 1e15


def _cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, finite, exact, dollars): `dollars` is the cent-rounded value wherever `exact`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(v)
    scaled = np.where(finite, v, 0.0) * 100.0
    frac = np.abs(scaled - np.trunc(scaled))
    exact = finite & (np.abs(scaled) < _MAX_CENTS) & (np.abs(frac - 0.5) > _TIE_TOLERANCE * (1.0 + np.abs(scaled)))
    # + 0.0 turns -0.0 into 0.0: money() never prints "-0.00". c / 100 is the double nearest to the
    # cents value, which ".2f" prints back exactly for |c| < 1e15.
    dollars = (np.rint(scaled) + 0.0) / 100.0
    return v, finite, exact, dollars


def money_strings(values: np.ndarray) -> list[str | None]:
    """`[money(v) for v in values]` (None for NaN/inf) for a 1-D float array."""
    v, finite, exact, dollars = _cents(values)
    out: list[str | None] = [f"{d:.2f}" if ok else None for d, ok in zip(dollars.tolist(), exact.tolist(), strict=True)]
    for i in np.flatnonzero(finite & ~exact).tolist():
        out[i] = money(float(v[i]))
    return out


def money_json(values: np.ndarray) -> list[str]:
    """money() of each value as a JSON token: the quoted 2-dp string, `null` where not finite.

    The bulk goes through one `%` over a tuple (the formatting loop runs in C, ~25 % faster than a
    comprehension over f-strings; "%.2f" and ".2f" print the same digits), then the few values that
    are not exact are patched."""
    v, finite, exact, dollars = _cents(values)
    out = ('"%.2f"\x00' * len(v) % tuple(dollars.tolist())).split("\x00")[:-1]
    for i in np.flatnonzero(~exact).tolist():
        out[i] = f'"{money(float(v[i]))}"' if finite[i] else "null"
    return out
