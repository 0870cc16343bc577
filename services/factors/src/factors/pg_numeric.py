"""numeric(20, 2) money in binary COPY fields (the form numeric_recv reads), from integer cents.

`float8_numeric_cents` gives the cents PostgreSQL itself stores when a float8 is cast to a scale-2
numeric (an INSERT … SELECT from a float8 column), so a binary COPY of those cents stores the same
values as that cast would.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from common import pg_binary as pgb

_NUMERIC_GROUPS = 5  # base-10000 digit groups before the decimal point: numeric(20, 2) has 18 digits
_NUMERIC_ROW = np.dtype(
    [
        ("length", ">i4"),
        ("ndigits", ">i2"),
        ("weight", ">i2"),
        ("sign", ">u2"),
        ("dscale", ">i2"),
        ("digits", ">i2", (_NUMERIC_GROUPS + 1,)),
    ]
)
_NUMERIC_NEGATIVE = 0x4000
# float8 → numeric prints the double with DBL_DIG significant digits (PostgreSQL 15 float8_numeric).
_FLOAT8_DIGITS = 15
_CENT = Decimal("0.01")
# Below 1e15 cents a cent value has at most 15 significant digits: the double nearest to it prints
# back as exactly that value with 15 digits, so the server keeps it unchanged.
_EXACT_CENTS = 1e15


def fixed_fields(rows: np.ndarray, nulls: np.ndarray) -> pgb.Fields:
    """Fields from fixed-width records that start with their int32 length word (-1 for a NULL row,
    which keeps only that word)."""
    width = rows.dtype.itemsize
    sizes = np.where(nulls, 4, width).astype(np.int64)
    matrix = rows.view(np.uint8).reshape(len(rows), width)
    return pgb.Fields(matrix[np.arange(width) < sizes[:, None]], sizes, nulls)


def numeric_cents(cents: np.ndarray, nulls: np.ndarray) -> pgb.Fields:
    """numeric fields of cents / 100 with scale 2 (NULL where `nulls`), in the binary form numeric_recv
    reads: digit groups of base 10000, the first of weight 4 (leading zero groups are stripped by the
    server, which also applies the column's typmod, as for any numeric it receives)."""
    c = np.asarray(cents, dtype=np.int64)
    whole, frac = np.abs(c) // 100, np.abs(c) % 100
    rows = np.zeros(len(c), dtype=_NUMERIC_ROW)
    rows["length"] = np.where(nulls, -1, _NUMERIC_ROW.itemsize - 4)
    rows["ndigits"] = _NUMERIC_GROUPS + 1
    rows["weight"] = _NUMERIC_GROUPS - 1
    rows["sign"] = np.where(c < 0, _NUMERIC_NEGATIVE, 0)
    rows["dscale"] = 2
    for g in range(_NUMERIC_GROUPS):
        rows["digits"][:, g] = (whole // 10_000 ** (_NUMERIC_GROUPS - 1 - g)) % 10_000
    rows["digits"][:, _NUMERIC_GROUPS] = frac * 100  # .cc → the group .cc00
    return fixed_fields(rows, np.asarray(nulls, dtype=bool))


def float8_numeric_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cents as int64, NULL mask) that PostgreSQL stores for float8 `values` cast to numeric(p, 2):
    the value printed with 15 significant digits, rounded half away from zero to cents; NaN → NULL.

    A value already on a cent (the double nearest to k / 100, e.g. from np.round(x, 2)) with
    |k| < 1e15 is stored as exactly k / 100, and rint(value · 100) = k: vectorised. Any other finite
    value takes the server's steps in Decimal. Raises ValueError for ±inf (numeric(p, 2) cannot hold
    it: the cast fails too) and OverflowError beyond int64 cents (±9.2e16 USD)."""
    v = np.asarray(values, dtype=np.float64)
    nulls = np.isnan(v)
    if np.isinf(v).any():
        raise ValueError("an infinite amount cannot be stored as numeric money")
    scaled = np.rint(np.where(nulls, 0.0, v) * 100.0)
    on_cent = (np.abs(scaled) < _EXACT_CENTS) & (scaled / 100.0 == np.where(nulls, 0.0, v))
    cents = np.where(on_cent, scaled, 0.0).astype(np.int64)
    for i in np.flatnonzero(~on_cent & ~nulls).tolist():
        printed = Decimal(f"{float(v[i]):.{_FLOAT8_DIGITS}g}")
        cents[i] = int(printed.quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))
    return cents, nulls


def rounded_float_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cents as int64, NULL mask) that PostgreSQL stores for Python's round(v, 2) of each value sent
    as a float to a numeric(p, 2) column (asyncpg sends the float's repr, the server rounds it half
    away from zero to the scale); non-finite → NULL (cents 0).

    round(v, 2) rounds the exact binary value of v to cents. Away from a half cent that is rint(v·100):
    the float product is within a few units in the last place of the exact one, far less than the
    1e-3 kept from the tie (below 2^36 cents, where a unit in the last place is under 2e-5), and the
    repr of the rounded float is then exactly those cents. Near-ties and huge values take the Python
    steps themselves."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    scaled = np.where(finite, v, 0.0) * 100.0
    sure = (np.abs(scaled) < 2.0**36) & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3)
    cents = np.rint(np.where(sure, scaled, 0.0)).astype(np.int64)
    for i in np.flatnonzero(finite & ~sure).tolist():
        sent = Decimal(repr(round(float(v[i]), 2)))
        cents[i] = int(sent.quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))
    return cents, ~finite
