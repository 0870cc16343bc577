"""PostgreSQL binary COPY streams built a column at a time with numpy (no per-value Python work).

asyncpg encodes COPY records and array parameters value by value (a type check and a call per
float); for the bulk writes of the daily cycle that dominated their Python CPU. Here a column is a
`Fields`: the binary fields of its rows (each an int32 length word, -1 = NULL, then the value) laid
end to end, with each row's byte count. Rows are assembled from columns with one numpy scatter, and
`copy_stream` frames them as a `COPY … FROM STDIN (FORMAT binary)` stream for `copy_to_table`.

Only NaN becomes NULL in float columns (as `common.formatting.nan_as_null`); ±inf and -0.0 are kept
bit for bit, exactly what asyncpg would send.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# COPY binary signature, flags word, header-extension length; the trailer is a field count of -1.
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"
# Element type oids of the arrays written here (pg_type).
OID_INT2, OID_INT4, OID_TEXT, OID_FLOAT8, OID_UUID = 21, 23, 25, 701, 2950


@dataclass(frozen=True)
class Fields:
    """One binary field per row, end to end in `data`; `sizes[i]` = bytes of row i (length word
    included); `nulls[i]` = row i is NULL (needed for an array's has-null flag)."""

    data: np.ndarray  # uint8
    sizes: np.ndarray  # int64
    nulls: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.sizes)


# A column of a COPY row: one field per row, possibly still in consecutive parts (see `array`).
Column = Fields | tuple[Fields, ...]


def _leading(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The first keep[i] bytes of every row of a (n, w) uint8 matrix, end to end."""
    if bool((keep == matrix.shape[1]).all()):
        return matrix.reshape(-1)
    return matrix[np.arange(matrix.shape[1]) < keep[:, None]]


def _fixed(values: np.ndarray, dtype: str, nulls: np.ndarray) -> Fields:
    """Fixed-width values (big-endian `dtype`); NULL rows keep only their length word (-1)."""
    n = len(values)
    width = np.dtype(dtype).itemsize
    rows = np.empty(n, dtype=[("len", ">i4"), ("value", dtype)])
    rows["len"] = np.where(nulls, -1, width)
    rows["value"] = values
    sizes = np.where(nulls, 4, 4 + width).astype(np.int64)
    return Fields(_leading(rows.view(np.uint8).reshape(n, 4 + width), sizes), sizes, nulls)


def float8(values: Sequence[float] | np.ndarray) -> Fields:
    """float8 fields; NaN → NULL."""
    v = np.asarray(values, dtype=np.float64)
    return _fixed(v, ">f8", np.isnan(v))


def int2(values: Sequence[int] | np.ndarray) -> Fields:
    v = np.asarray(values, dtype=np.int64)
    if len(v) and (v.min() < -32768 or v.max() > 32767):
        raise OverflowError("value out of int2 range")
    return _fixed(v, ">i2", np.zeros(len(v), dtype=bool))


def int4(values: Sequence[int] | np.ndarray) -> Fields:
    v = np.asarray(values, dtype=np.int64)
    if len(v) and (v.min() < -(2**31) or v.max() >= 2**31):
        raise OverflowError("value out of int4 range")
    return _fixed(v, ">i4", np.zeros(len(v), dtype=bool))


def uuids(values: Sequence[uuid.UUID | None]) -> Fields:
    """uuid fields (any object with `.bytes`, e.g. asyncpg's UUID); None → NULL."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    raw = b"".join(bytes(16) if v is None else v.bytes for v in values)
    return _fixed(np.frombuffer(raw, dtype="V16"), "V16", nulls)


def text(values: Sequence[str | None]) -> Fields:
    """text fields (UTF-8); None → NULL. All strings are encoded in one call: joined behind 4-byte NUL
    gaps (no PostgreSQL text value contains NUL), the gaps are then overwritten by the length words."""
    n = len(values)
    gap = "\x00\x00\x00\x00"
    try:
        joined = gap + gap.join(values)  # type: ignore[arg-type]  # None raises: the NULL path below
        nulls = np.zeros(n, dtype=bool)
    except TypeError:
        nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
        joined = gap + gap.join(v or "" for v in values)
    data = np.frombuffer(joined.encode(), dtype=np.uint8).copy() if n else np.zeros(0, dtype=np.uint8)
    zeros = np.flatnonzero(data == 0)
    if len(zeros) != 4 * n:
        raise ValueError("a text value contains NUL, which PostgreSQL text cannot store")
    starts = zeros[::4]  # gap k = zeros[4k : 4k + 4]: payloads hold no NUL
    sizes = np.diff(np.append(starts, len(data)))
    data[zeros] = np.where(nulls, -1, sizes - 4).astype(">i4").view(np.uint8)
    return Fields(data, sizes.astype(np.int64), nulls)


def constant(field: bytes, n: int) -> Fields:
    """The same encoded field (length word included) in each of n rows."""
    data = np.tile(np.frombuffer(field, dtype=np.uint8), n)
    return Fields(data, np.full(n, len(field), dtype=np.int64), np.zeros(n, dtype=bool))


def concat(*parts: Fields, nulls: np.ndarray | None = None) -> Fields:
    """Row i = part 0's row i, then part 1's row i, …: one scatter per part (each byte goes to its
    row's start + the bytes of the earlier parts of that row)."""
    n = len(parts[0])
    sizes: np.ndarray = np.zeros(n, dtype=np.int64)
    for p in parts:
        sizes += p.sizes
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    offset = starts
    for p in parts:
        source = np.cumsum(p.sizes) - p.sizes
        out[np.repeat(offset - source, p.sizes) + np.arange(len(p.data))] = p.data
        offset = offset + p.sizes
    return Fields(out, sizes, np.zeros(n, dtype=bool) if nulls is None else nulls)


def _group_sums(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of values[starts[i] : starts[i] + counts[i]] for every i (empty groups sum to 0)."""
    total = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    result: np.ndarray = total[starts + counts] - total[starts]
    return result


def array(elements: Fields, counts: Sequence[int] | np.ndarray, oid: int) -> Column:
    """One-dimensional array fields: row i holds the next counts[i] elements (an empty row is '{}')."""
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    if int(counts.sum()) != len(elements) or (counts < 0).any():
        raise ValueError("array counts do not add up to the elements")
    starts = np.cumsum(counts) - counts
    payload = _group_sums(elements.sizes, starts, counts)
    has_null = _group_sums(elements.nulls, starts, counts) > 0
    head = np.where(counts > 0, 24, 16)  # a dimension (length, lower bound 1) only when non-empty
    header = np.empty((n, 6), dtype=">i4")
    header[:, 0] = head - 4 + payload
    header[:, 1] = counts > 0
    header[:, 2] = has_null
    header[:, 3] = oid
    header[:, 4] = counts
    header[:, 5] = 1
    fixed = Fields(_leading(header.view(np.uint8).reshape(n, 24), head), head, np.zeros(n, dtype=bool))
    # Two parts (the rows' headers, their elements) placed by the final concat: every byte moves once.
    return (fixed, Fields(elements.data, payload, has_null))


def copy_stream(*columns: Column) -> bytes:
    """A complete binary COPY stream of the rows made of these columns (in COPY column order)."""
    parts = [p for c in columns for p in ((c,) if isinstance(c, Fields) else c)]
    count = constant(len(columns).to_bytes(2, "big", signed=True), len(parts[0]))
    return HEADER + concat(count, *parts).data.tobytes() + TRAILER


async def copy_binary(conn: Any, table: str, *, schema: str, columns: Sequence[str], stream: bytes) -> None:
    """COPY a `copy_stream` into schema.table on an asyncpg connection (inside its transaction)."""
    # A memoryview: asyncpg would take plain bytes for a file path (os.fspath accepts bytes).
    await conn.copy_to_table(
        table, schema_name=schema, columns=list(columns), source=memoryview(stream), format="binary"
    )
