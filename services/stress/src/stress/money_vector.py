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
stress documents. `money_blocks` writes the JSON tokens of many values beside other text (fixed
pieces, texts taken from a `json_text.TextTable`) as the lines of the stored documents' items.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

import numpy as np

from common.formatting import money
from stress.json_text import END, FILLER, Taken, blank_lines, matrix_texts

# Relative slack around a half cent: ~4,000× the ≈ 2.3e-16 relative error of repr/product, far
# below a cent, so only genuinely ambiguous values (~1 in 300,000 on the benchmark books) take the
# exact Decimal path.
_TIE_TOLERANCE = 1e-12
# Beyond ~2^50 cents a float no longer holds whole cents exactly: use Decimal.
_MAX_CENTS = 1e15

_QUOTE, _MINUS, _POINT, _ZERO = (float(ord(c)) for c in '"-.0')
_FILLER_BYTE = ord(FILLER)
_NEGATIVE_ZERO = Decimal("-0.00")


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
    filler = float(_FILLER_BYTE)
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


class _Tokens:
    """The JSON token of money(v) of every value of an array — its quoted 2-dp string, `null` when not
    finite — as a piece of a line template: the exact cents in numpy, the rest with `money` itself."""

    def __init__(self, values: np.ndarray) -> None:
        self.cents = c = _Cents(values)
        self.null = np.flatnonzero(~c.finite)
        self.odd = np.flatnonzero(c.finite & ~c.exact)  # values near a half cent, or huge
        self.odd_texts = [f'"{money(float(v))}"'.encode() for v in c.values[self.odd].tolist()]
        self.width = max(c.width(quoted=True), 4 if self.null.size else 0, *map(len, self.odd_texts))

    def write(self, chars: np.ndarray, left: int) -> None:
        _write_money(chars, left, self.cents, quoted=True)
        field = chars[:, left : left + self.width]
        field[self.null] = _FILLER_BYTE
        field[self.null, :4] = np.frombuffer(b"null", dtype=np.uint8)
        field[self.odd] = _FILLER_BYTE
        for row, text in zip(self.odd.tolist(), self.odd_texts, strict=True):  # ~1 in 300,000 values
            field[row, : len(text)] = np.frombuffer(text, dtype=np.uint8)


def money_blocks(pieces: Sequence[str | np.ndarray | Taken]) -> list[np.ndarray]:
    """(lines, bytes) blocks (FILLER-padded) that, side by side, hold per line i the pieces back to
    back: a str as it is (JSON text, so without the control characters that mark filler and ends), a
    Taken as its text of line i, an array (all pieces of one length) as the JSON token of
    money(array[i]). Each is written in a narrow block of its own: a column written across a wide
    matrix touches a cache line per value."""
    if any(isinstance(p, str) and (FILLER in p or END in p) for p in pieces):
        raise ValueError("a fixed piece holds a control character")
    parts = [p.encode() if isinstance(p, str) else p if isinstance(p, Taken) else _Tokens(p) for p in pieces]
    n_lines = next(
        len(p.index) if isinstance(p, Taken) else len(p.cents.values) for p in parts if not isinstance(p, bytes)
    )
    blocks = []
    for part in parts:
        if isinstance(part, bytes):
            blocks.append(np.broadcast_to(np.frombuffer(part, dtype=np.uint8), (n_lines, len(part))))
        elif isinstance(part, Taken):
            blocks.append(part.table.chars[part.index])
        else:
            block = blank_lines(n_lines, part.width)
            part.write(block, 0)
            blocks.append(block)
    return blocks


def money_texts(pieces: Sequence[str | np.ndarray]) -> list[str]:
    """Per index i, the pieces back to back (see `money_blocks`; at least one array)."""
    blocks = money_blocks(pieces)
    return matrix_texts(np.concatenate([*blocks, np.full((len(blocks[0]), 1), ord(END), dtype=np.uint8)], axis=1))


def money_strings(values: np.ndarray) -> list[str | None]:
    """`[money(v) for v in values]` (None for NaN/inf) for a float array, in C order."""
    c = _Cents(values)
    width = c.width(quoted=False)
    chars = np.empty((len(c.values), width + 1), dtype=np.uint8)
    _write_money(chars, 0, c, quoted=False)
    chars[:, width] = ord(END)
    out = cast(list[str | None], matrix_texts(chars))
    for i in np.flatnonzero(~c.exact).tolist():
        out[i] = money(float(c.values[i])) if c.finite[i] else None
    return out


def money_decimals(values: np.ndarray) -> list[Decimal | None]:
    """`[round_money(v) for v in values]` (None for NaN/inf) for a float array, in C order: the
    Decimal of each money() text, a zero keeping the sign of its value as round_money's does
    (money() never writes "-0.00")."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    negative = np.signbit(flat).tolist()
    return [
        None if text is None else _NEGATIVE_ZERO if negative[i] and text == "0.00" else Decimal(text)
        for i, text in enumerate(money_strings(flat))
    ]
