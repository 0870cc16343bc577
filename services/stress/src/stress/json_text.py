"""JSON text of many values at once, spelled exactly as `orjson.dumps` spells each of them.

The stored stress documents are ~30 MB of JSON per daily pass. Built as one `%` template filled from
one tuple, the formatting loop runs in C instead of one f-string (and one Python frame) per item;
each piece of the result ends at a NUL, which JSON text never holds unescaped, so one `split` cuts
the filled text back into its documents — or straight into the JSON arrays a stored run holds.

The bulk of the documents (lists of many small items) is written as UTF-8 bytes into a matrix
instead, one line per item and one column per byte (`ItemRows`): variable-length texts are padded
with a FILLER byte that one `bytes.translate` drops at the end, so no Python object is made per
item or per value. FILLER (0x01) and END (0x00) never occur in JSON text (it escapes control
characters) nor inside a UTF-8 multi-byte sequence (whose bytes are all ≥ 0x80).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, cast

import numpy as np
import orjson

END = "\x00"
FILLER = "\x01"
_FILLER_BYTE = ord(FILLER)

# What orjson escapes (", \ and control characters) or refuses (lone surrogates, not UTF-8):
# a string without any of them is dumped as itself between quotes.
_NEEDS_ORJSON = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def plain_strings(values: Sequence[Any]) -> bool:
    """Every value a str that orjson dumps as itself between quotes."""
    if not set(map(type, values)) <= {str}:
        return False
    text = "".join(values)
    if text.isascii():  # the usual case, told by numpy: ASCII needs an escape for ", \ and controls only
        codes = np.frombuffer(text.encode(), dtype=np.uint8)
        return not bool(((codes < 0x20) | (codes == ord('"')) | (codes == ord("\\"))).any())
    return not _NEEDS_ORJSON.search(text)


def literal(text: str) -> str:
    """Fixed text for a `%` template: its own `%` signs doubled."""
    return text.replace("%", "%%")


def fill(template: str, args: Sequence[Any]) -> list[str]:
    """The END-terminated pieces of `template % args` (the template ends every piece with END)."""
    return (template % tuple(args)).split(END)[:-1]


@dataclass(frozen=True)
class RowTexts:
    """The JSON documents of many rows: one `%` template per row (None where a row has no document:
    SQL None in the per-row table) and the values filling them all, in row order."""

    templates: Sequence[str | None]
    args: Sequence[Any]

    def per_row(self) -> list[str | None]:
        """Each row's document (None where it has none)."""
        texts = fill("".join(t + END for t in self.templates if t is not None), self.args)
        if None not in self.templates:
            return cast(list[str | None], texts)
        filled = iter(texts)
        return [None if t is None else next(filled) for t in self.templates]

    def per_run(self, n_runs: int, text: type[str] = str) -> list[str]:
        """The JSON array of each run's rows (`len(templates) // n_runs` consecutive rows; `null` where a
        row has no document): the text `orjson.dumps` gives for the list of the run's documents, as a
        `text` (a str subclass marking JSON text, say)."""
        rows = ["null" if t is None else t for t in self.templates]
        size = len(rows) // n_runs if n_runs else 0
        template = "".join("[" + ",".join(rows[r * size : (r + 1) * size]) + "]" + END for r in range(n_runs))
        texts = fill(template, self.args)
        return texts if text is str else [text(t) for t in texts]


class TextTable:
    """Texts to copy into many matrix lines: their UTF-8 bytes, one FILLER-padded row per text."""

    def __init__(self, texts: Sequence[str]) -> None:
        if "".join(texts).isascii():  # the usual case: one byte per character, padded as str
            self.width = max(map(len, texts), default=0)
            padded = "".join([t.ljust(self.width, FILLER) for t in texts]).encode()
        else:
            encoded = [t.encode() for t in texts]
            self.width = max(map(len, encoded), default=0)
            padded = b"".join([e.ljust(self.width, FILLER.encode()) for e in encoded])
        self.chars = np.frombuffer(padded, dtype=np.uint8).reshape(len(texts), self.width)

    def take(self, index: np.ndarray) -> Taken:
        """The texts `index` picks, one per line."""
        return Taken(self, np.asarray(index, dtype=np.int64))


@dataclass(frozen=True)
class Taken:
    """One text of a TextTable per line (a piece of a line template)."""

    table: TextTable
    index: np.ndarray


def blank_lines(n_lines: int, width: int) -> np.ndarray:
    """A (lines, bytes) matrix of FILLER, to write texts into."""
    return np.full((n_lines, width), _FILLER_BYTE, dtype=np.uint8)


def matrix_texts(chars: np.ndarray) -> list[str]:
    """The END-terminated texts a byte matrix holds, without its FILLER bytes."""
    return chars.tobytes().translate(None, FILLER.encode()).decode().split(END)[:-1]


@dataclass(frozen=True)
class ItemRows:
    """Documents of many rows, each `opening` + its items' JSON joined by "," + `closing` (e.g. a
    JSON list, or an object holding one). The items' text is held as FILLER-padded byte blocks
    (n_items, width) to be put side by side, one line per item, the rows' items back to back in row
    order (`counts[r]` items in row r)."""

    blocks: Sequence[np.ndarray]
    counts: np.ndarray  # (n_rows,) int
    opening: str
    closing: str

    def per_row(self) -> list[str]:
        """Each row's document."""
        return self._framed(len(self.counts), 1, str, in_runs=False)

    def per_run(self, n_runs: int, text: type[str] = str) -> list[str]:
        """The JSON array of each run's rows (`len(counts) // n_runs` consecutive rows), as
        `RowTexts.per_run` gives it."""
        size = len(self.counts) // n_runs if n_runs else 0
        if size == 0:
            return [text("[]") for _ in range(n_runs)]
        return self._framed(n_runs * size, size, text, in_runs=True)

    def _framed(self, n_rows: int, size: int, text: type[str], *, in_runs: bool) -> list[str]:
        """The first `n_rows` rows as texts: every row alone, or (`in_runs`) each run of `size` rows
        as a JSON array. A row without items takes one line holding only its frame."""
        counts = np.asarray(self.counts[:n_rows], dtype=np.int64)
        lines = np.maximum(counts, 1)
        ends = np.cumsum(lines)
        n_lines = int(ends[-1]) if n_rows else 0
        first, last = np.zeros(n_lines, dtype=bool), np.zeros(n_lines, dtype=bool)
        first[ends - lines], last[ends - 1] = True, True
        opening, closing = (("[" if in_runs else "") + self.opening).encode(), self.closing.encode()
        lead = blank_lines(n_lines, max(len(opening), 1))
        lead[first, lead.shape[1] - len(opening) :] = np.frombuffer(opening, dtype=np.uint8)
        lead[~first, -1] = ord(",")
        tail = blank_lines(n_lines, len(closing) + 1)
        tail[last, : len(closing)] = np.frombuffer(closing, dtype=np.uint8)
        if in_runs:  # "[" opens only the first row of a run, "]" closes its last, "," follows the others
            position = np.arange(n_rows) % size
            lead[np.flatnonzero(first)[position > 0], lead.shape[1] - len(opening)] = _FILLER_BYTE
            tail[last, -1] = np.where(position == size - 1, ord("]"), ord(","))
        items = [block[: int(counts.sum())] for block in self.blocks]
        if n_lines != int(counts.sum()):  # rows without items: blank lines between
            body = blank_lines(n_lines, sum(block.shape[1] for block in items))
            body[np.flatnonzero(np.repeat(counts > 0, lines))] = np.concatenate(items, axis=1)
            items = [body]
        # One matrix of every line (a column written across a wide matrix would touch a cache line per
        # line, so the narrow blocks are joined once); each text is then translated alone, as cutting
        # one long text at END bytes cost as much again.
        chars = np.concatenate([lead, *items, tail], axis=1)
        bounds = np.concatenate(([0], ends[size - 1 :: size])).tolist()
        drop = FILLER.encode()
        return [text(chars[a:b].tobytes().translate(None, drop), "utf-8") for a, b in pairwise(bounds)]


# The documents of many rows, as either builder holds them.
Documents = RowTexts | ItemRows
