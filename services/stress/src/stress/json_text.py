"""JSON text of many values at once, spelled exactly as `orjson.dumps` spells each of them.

The stored stress documents are ~30 MB of JSON per daily pass. Built as one `%` template filled from
one tuple, the formatting loop runs in C instead of one f-string (and one Python frame) per item;
each piece of the result ends at a NUL, which JSON text never holds unescaped, so one `split` cuts
the filled text back into its documents — or straight into the JSON arrays a stored run holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

END = "\x00"

# What orjson escapes (", \ and control characters) or refuses (lone surrogates, not UTF-8):
# a string without any of them is dumped as itself between quotes.
_NEEDS_ORJSON = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def plain_strings(values: Sequence[Any]) -> bool:
    """Every value a str that orjson dumps as itself between quotes."""
    return set(map(type, values)) <= {str} and not _NEEDS_ORJSON.search("".join(values))


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

    def per_run(self, n_runs: int) -> list[str]:
        """The JSON array of each run's rows (`len(templates) // n_runs` consecutive rows; `null` where a
        row has no document): the text `orjson.dumps` gives for the list of the run's documents."""
        rows = ["null" if t is None else t for t in self.templates]
        size = len(rows) // n_runs if n_runs else 0
        template = "".join("[" + ",".join(rows[r * size : (r + 1) * size]) + "]" + END for r in range(n_runs))
        return fill(template, self.args)
