"""`common.formatting.money` over a whole array at once, with the very same strings.

`money(x)` rounds `Decimal(repr(x))` to cents half-even. Far from a half cent, rounding the binary
product `x * 100` half-even (`np.rint`) lands on the same cent: repr(x) is within half an ulp of x
and the product within half an ulp of 100·x, so 100·repr(x) and the product are both within
~2.3e-16 · |100·x| of 100·x — a half cent between them (or a decimal tie) is that close to the
product. Values within a far larger tolerance of a half cent (or too large for exact float cents)
go through `money` itself, so the result is identical value for value while ~all values skip the
Decimal arithmetic.

The text of the exact cents is written by numpy too (`_write_money`): a byte matrix with one row per
value and one column per character position, digits by float division (exact below 2^53), a filler
byte where a value has no character (leading zeros, absent signs) that `bytes.translate` then drops.
Formatting each float in Python ("%.2f") cost ~0.15 µs a value, the largest part of building the
stress documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from common.formatting import money
from stress.json_text import END

# Relative slack around a half cent: ~4,000× the ≈ 2.3e-16 relative error of repr/product, far
# below a cent, so only genuinely ambiguous values (~1 in 300,000 on the benchmark books) take the
# exact Decimal path.
_TIE_TOLERANCE = 1e-12
# Beyond ~2^50 cents a float no longer holds whole cents exactly: use Decimal.
_MAX_CENTS = 1e15

_QUOTE, _MINUS, _POINT, _ZERO = (float(ord(c)) for c in '"-.0')
# Marks the character positions a value does not use; no text written here holds it (JSON text
# escapes control characters, and the fixed pieces are JSON text).
_FILLER = "\x01"


def scaled_product(
    values: np.ndarray, scale: float, *, limit: float, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, finite, values × scale, exact) for a float array (flattened, C order). `exact` marks
    where rounding the binary product half-even gives the same whole number as the exact decimal
    rounding: the value is finite, the product below `limit` (whole numbers still exact) and farther
    than `tolerance` (relative) from a half unit. Elsewhere the callers use the scalar function."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(v)
    with np.errstate(over="ignore", invalid="ignore"):  # a product overflowing to inf is not exact
        scaled = np.where(finite, v, 0.0) * scale
        frac = np.abs(scaled - np.trunc(scaled))
    size = np.abs(scaled)
    exact = finite & (size < limit) & (np.abs(frac - 0.5) > tolerance * (1.0 + size))
    return v, finite, scaled, exact


class _Cents:
    """Exact whole cents (as floats) of a float array wherever `exact` (0 elsewhere)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.finite, scaled, self.exact = scaled_product(
            values, 100.0, limit=_MAX_CENTS, tolerance=_TIE_TOLERANCE
        )
        self.cents = np.where(self.exact, np.rint(scaled), 0.0)
        # Digits of the largest whole-dollar part (at least the units digit).
        self.n_digits = max(1, len(str(int(np.abs(self.cents).max(initial=0.0)) // 100)))

    def width(self, *, quoted: bool) -> int:
        return self.n_digits + 4 + (2 if quoted else 0)  # [quote] minus digits point 2 decimals [quote]


def _write_money(chars: np.ndarray, left: int, c: _Cents, *, quoted: bool) -> None:
    """Columns left … left + width of the (values, characters) matrix: money() of every value's cents
    ("-1234.50"; never "-0.00": zero cents have no sign), between quotes when `quoted`."""
    filler = float(ord(_FILLER))
    magnitude = np.abs(c.cents)
    dollars = np.floor(magnitude / 100.0)  # whole floats below 1e15: every step below is exact
    fraction = magnitude - dollars * 100.0
    column = left
    if quoted:
        chars[:, column] = chars[:, left + c.width(quoted=True) - 1] = _QUOTE
        column += 1
    chars[:, column] = np.where(c.cents < 0, _MINUS, filler)
    units = column + c.n_digits
    rest = dollars
    for j in range(c.n_digits):  # the digit of 10^j; leading zeros dropped (never the units)
        quotient = np.floor(rest / 10.0)
        digit = rest - quotient * 10.0 + _ZERO
        chars[:, units - j] = np.where(dollars >= 10.0**j, digit, filler) if j else digit
        rest = quotient
    chars[:, units + 1] = _POINT
    tens = np.floor(fraction / 10.0)
    chars[:, units + 2] = tens + _ZERO
    chars[:, units + 3] = fraction - tens * 10.0 + _ZERO


def _texts(chars: np.ndarray) -> list[str]:
    """Every row of the matrix without its filler bytes, each ending at END."""
    return chars.tobytes().translate(None, _FILLER.encode()).decode().split(END)[:-1]


def _json_token(value: float) -> str:
    text = money(value)
    return "null" if text is None else f'"{text}"'


def money_texts(pieces: Sequence[str | np.ndarray]) -> list[str]:
    """Per index i, the pieces back to back: a str as it is (JSON text, so without the control
    characters that mark filler and ends here), an array (at least one; all of one length) as the
    JSON token of money(array[i]) — its quoted 2-dp string, `null` when not finite."""
    if any(isinstance(p, str) and (_FILLER in p or END in p) for p in pieces):
        raise ValueError("a fixed piece holds a control character")
    parts = [p if isinstance(p, str) else _Cents(p) for p in pieces]
    cents = [p for p in parts if isinstance(p, _Cents)]
    encoded = [p.encode() if isinstance(p, str) else b"" for p in parts]
    widths = [len(e) if isinstance(p, str) else p.width(quoted=True) for p, e in zip(parts, encoded, strict=True)]
    chars = np.empty((len(cents[0].values), sum(widths) + 1), dtype=np.uint8)
    left = 0
    for part, text, width in zip(parts, encoded, widths, strict=True):
        if isinstance(part, str):
            chars[:, left : left + width] = np.frombuffer(text, dtype=np.uint8)
        else:
            _write_money(chars, left, part, quoted=True)
        left += width
    chars[:, left] = ord(END)
    out = _texts(chars)
    for i in np.flatnonzero(~np.logical_and.reduce([c.exact for c in cents])).tolist():  # with money() itself
        values = iter(c.values[i] for c in cents)
        out[i] = "".join(p if isinstance(p, str) else _json_token(float(next(values))) for p in pieces)
    return out


def money_strings(values: np.ndarray) -> list[str | None]:
    """`[money(v) for v in values]` (None for NaN/inf) for a float array, in C order."""
    c = _Cents(values)
    width = c.width(quoted=False)
    chars = np.empty((len(c.values), width + 1), dtype=np.uint8)
    _write_money(chars, 0, c, quoted=False)
    chars[:, width] = ord(END)
    out = cast(list[str | None], _texts(chars))
    for i in np.flatnonzero(~c.exact).tolist():
        out[i] = money(float(c.values[i])) if c.finite[i] else None
    return out
