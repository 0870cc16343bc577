"""From bytes to fields: UTF-8 decoding, physical lines, RFC 4180 fields, blank lines (§1-§2)."""

from __future__ import annotations

import csv
import re

from ingest.csv_format.limits import VALUE_MAX_CHARS
from ingest.csv_format.model import Issue

# Cells and headers are trimmed of spaces and tabs only (never of other Unicode white space).
TRIM = " \t"
WHITESPACE = re.compile(r"\s+")


def clip(value: str | None) -> str | None:
    """An issue's `value`: the cell as written, cut to 100 characters; None for an empty cell."""
    if value is None or value == "":
        return None
    return value[:VALUE_MAX_CHARS]


def decode_utf8(content: bytes) -> str | Issue:
    """UTF-8 text without a leading BOM, or the INVALID_ENCODING issue."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Issue(
            1,
            None,
            "INVALID_ENCODING",
            "error",
            f"file is not valid UTF-8 (first invalid byte at offset {exc.start})",
            None,
        )
    return text[1:] if text.startswith("\ufeff") else text


def physical_lines(text: str) -> list[str]:
    """The file's lines; LF and CRLF endings are both accepted."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            lines[i] = line[:-1]
    return lines


def is_blank_line(line: str) -> bool:
    """A line of nothing but spaces, tabs, commas and quotes (an empty spreadsheet row)."""
    return not line.strip(' \t,"')


def last_non_blank(lines: list[str]) -> int:
    """Index of the last line that is not blank; -1 when every line is (trailing blanks are ignored)."""
    last = len(lines) - 1
    while last >= 0 and is_blank_line(lines[last]):
        last -= 1
    return last


def split_fields(line: str) -> list[str]:
    """RFC 4180 fields of one physical line (`""` inside quotes is a literal quote)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader((line,), skipinitialspace=True))


def split_lines(lines: list[str]) -> list[list[str]]:
    """`split_fields` for many lines at once: one C csv reader over every line whose quotes balance.

    A line with an odd number of quotes would swallow the next line in a reader over all lines,
    so it is parsed alone (its open quote ends at the end of the line: rows never span lines).
    """
    out: list[list[str] | None] = [None] * len(lines)
    quoted: list[int] = []
    for i, line in enumerate(lines):
        if '"' not in line:
            out[i] = line.split(",")
        elif line.count('"') % 2 == 0:
            quoted.append(i)
        else:
            out[i] = split_fields(line)
    if quoted:
        for i, fields in zip(quoted, csv.reader([lines[i] for i in quoted], skipinitialspace=True), strict=True):
            out[i] = fields
    return [f if f is not None else [] for f in out]
