"""Closes read as one packed pair of columns per symbol, scattered into a (days × symbols) grid with numpy.

The price reads return, per symbol, the calendar-day offsets of its closes from the window's first
day and the closes themselves, each as one bytea of big-endian binary values (int4send / float8send
aggregated in SQL): numpy reads them in place, with no Python object per close. (Arrays of int4 and
float8 came back as Python lists, one int and one float per close: ~0.5M of each per model build.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np

# The per-symbol aggregates of a packed read. Both aggregate the same rows of a group in the same
# order, so the i-th offset and the i-th close belong to one price row. A NULL close is sent as NaN
# (string_agg would skip a NULL and misalign the columns).
PACKED_OFFSETS = "string_agg(int4send(price_date - {lo}), ''::bytea)"
PACKED_CLOSES = "string_agg(coalesce(float8send({close}), float8send('NaN')), ''::bytea)"


def scatter_series(rows: Sequence[Any], *, days: Sequence[date], symbols: Sequence[str]) -> np.ndarray:
    """A (len(days), len(symbols)) float matrix from rows of (symbol, offsets, values): offsets are
    calendar days from days[0] (packed big-endian int4), values packed big-endian float8; values on
    dates that are not in `days` are ignored; NaN where no value (a NaN value stays NaN). A symbol
    listed twice fills its last column."""
    out = np.full((len(days), len(symbols)), np.nan)
    if not rows or not days:
        return out
    first = days[0]
    span = (days[-1] - first).days + 1
    row_of_offset = np.full(span, -1, dtype=np.int64)  # calendar offset → row of the grid
    row_of_offset[[(d - first).days for d in days]] = np.arange(len(days))
    column = {s: j for j, s in enumerate(symbols)}
    offsets = np.frombuffer(b"".join(r[1] for r in rows), dtype=">i4").astype(np.int64)
    values = np.frombuffer(b"".join(r[2] for r in rows), dtype=">f8").astype(np.float64)
    counts = np.fromiter((len(r[1]) // 4 for r in rows), dtype=np.int64, count=len(rows))
    cols = np.repeat(np.fromiter((column[r[0]] for r in rows), dtype=np.int64, count=len(rows)), counts)
    inside = (offsets >= 0) & (offsets < span)
    grid_rows = np.full(offsets.shape, -1, dtype=np.int64)
    grid_rows[inside] = row_of_offset[offsets[inside]]
    keep = grid_rows >= 0
    out[grid_rows[keep], cols[keep]] = values[keep]
    return out
