"""common.pg_binary: the COPY stream decodes (by the wire format, written out here) to the values put
in — NaN as NULL, ±0 / ±inf / extremes bit for bit, UTF-8 text, NULLs, empty and NULL-holding arrays."""

from __future__ import annotations

import math
import struct
import uuid
from datetime import date
from typing import Any

import pytest

from common import pg_binary as pgb


def _field(buf: bytes, at: int, kind: Any) -> tuple[Any, int]:
    (size,) = struct.unpack_from(">i", buf, at)
    at += 4
    if size == -1:
        return None, at
    raw = buf[at : at + size]
    if isinstance(kind, tuple):  # ("array", element kind, oid)
        ndim, has_null, oid = struct.unpack_from(">iii", raw, 0)
        assert oid == kind[2]
        if ndim == 0:
            assert has_null == 0
            return [], at + size
        count, lower = struct.unpack_from(">ii", raw, 12)
        assert (ndim, lower) == (1, 1)
        out, pos = [], 20
        for _ in range(count):
            value, pos = _field(raw, pos, kind[1])
            out.append(value)
        assert pos == size
        assert has_null == (None in out)
        return out, at + size
    decoded = {
        "f8": lambda b: struct.unpack(">d", b)[0],
        "i2": lambda b: struct.unpack(">h", b)[0],
        "i4": lambda b: struct.unpack(">i", b)[0],
        "text": lambda b: b.decode(),
        "uuid": lambda b: uuid.UUID(bytes=b),
        "date": lambda b: date.fromordinal(struct.unpack(">i", b)[0] + date(2000, 1, 1).toordinal()),
    }[kind](raw)
    return decoded, at + size


def decode(stream: bytes, kinds: list[Any]) -> list[tuple[Any, ...]]:
    assert stream.startswith(pgb.HEADER) and stream.endswith(pgb.TRAILER)
    rows, at = [], len(pgb.HEADER)
    while at < len(stream) - 2:
        (count,) = struct.unpack_from(">h", stream, at)
        assert count == len(kinds)
        at += 2
        row = []
        for kind in kinds:
            value, at = _field(stream, at, kind)
            row.append(value)
        rows.append(tuple(row))
    assert at == len(stream) - 2
    return rows


def bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack(">d", x)


def test_float_columns_keep_every_bit_and_store_nan_as_null() -> None:
    values = [1.5, math.nan, -0.0, 0.0, math.inf, -math.inf, 1.7976931348623157e308, 5e-324, -123456789.125]
    (rows,) = [decode(pgb.copy_stream(pgb.float8(values)), ["f8"])]
    assert [bits(r[0]) for r in rows] == [None if math.isnan(v) else bits(v) for v in values]


def test_rows_of_mixed_columns_decode_to_their_values() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    texts = ["SPY", "", "Zürich ✓", None]
    stream = pgb.copy_stream(
        pgb.uuids([ids[0], None, ids[2], ids[3]]),
        pgb.text(texts),
        pgb.int4([1, 0, -(2**31), 2**31 - 1]),
        pgb.int2([0, -32768, 32767, 7]),
        pgb.constant(b"\x00\x00\x00\x04abcd", 4),
    )
    assert decode(stream, ["uuid", "text", "i4", "i2", "text"]) == [
        (ids[0], "SPY", 1, 0, "abcd"),
        (None, "", 0, -32768, "abcd"),
        (ids[2], "Zürich ✓", -(2**31), 32767, "abcd"),
        (ids[3], None, 2**31 - 1, 7, "abcd"),
    ]


def test_arrays_take_their_counts_of_elements_empty_and_null_elements_included() -> None:
    counts = [2, 0, 3, 1, 0]
    floats = [0.5, math.nan, -0.0, 2.0, 1e300, math.nan]
    words = ["a", "", "ü", None, "x", "yz"]
    stream = pgb.copy_stream(
        pgb.array(pgb.float8(floats), counts, pgb.OID_FLOAT8),
        pgb.array(pgb.text(words), counts, pgb.OID_TEXT),
        pgb.array(pgb.int2([1, 2, 3, 4, 5, 6]), counts, pgb.OID_INT2),
    )
    rows = decode(stream, [("array", "f8", 701), ("array", "text", 25), ("array", "i2", 21)])
    assert [[bits(x) for x in r[0]] for r in rows] == [
        [bits(0.5), None],
        [],
        [bits(-0.0), bits(2.0), bits(1e300)],
        [None],
        [],
    ]
    assert [r[1] for r in rows] == [["a", ""], [], ["ü", None, "x"], ["yz"], []]
    assert [r[2] for r in rows] == [[1, 2], [], [3, 4, 5], [6], []]


def test_empty_streams_and_bad_input() -> None:
    assert pgb.copy_stream(pgb.float8([]), pgb.text([])) == pgb.HEADER + pgb.TRAILER
    with pytest.raises(ValueError, match="NUL"):
        pgb.text(["a\x00b"])
    with pytest.raises(OverflowError):
        pgb.int2([40000])
    with pytest.raises(ValueError, match="counts"):
        pgb.array(pgb.float8([1.0]), [2], pgb.OID_FLOAT8)
