"""The header line: canonical columns, accepted aliases and the file-stopping header rules (§2)."""

from __future__ import annotations

import re

from ingest.csv_format.result import CheckResult
from ingest.csv_format.text import TRIM

COLUMNS: tuple[str, ...] = ("ticker", "quantity", "entry_price", "entry_date", "tags")
REQUIRED_COLUMNS: tuple[str, ...] = COLUMNS[:4]
ALIASES: dict[str, str] = {
    "symbol": "ticker",
    "qty": "quantity",
    "price": "entry_price",
    "trade_date": "entry_date",
    "tag": "tags",
}
COLUMN_ORDER = {name: i for i, name in enumerate(COLUMNS)}

_HEADER_SEP = re.compile(r"[\s\-]+")


def normalise_header(header: str) -> str:
    """Trim, lower-case, runs of spaces or hyphens → one underscore (`Entry Price` → `entry_price`)."""
    return _HEADER_SEP.sub("_", header.strip(TRIM).lower())


def check_header(cells: list[str], result: CheckResult) -> dict[str, int] | None:
    """Map canonical columns to field positions; None when a file-level header error stops the check."""
    found: dict[str, list[tuple[int, str]]] = {}
    rank: dict[str | None, int] = {}
    rank.update(COLUMN_ORDER)
    for idx, cell in enumerate(cells):
        original = cell.strip(TRIM)
        norm = normalise_header(original)
        canonical = norm if norm in COLUMN_ORDER else ALIASES.get(norm)
        if canonical is None:
            if not norm:  # an unnamed column (trailing comma of a spreadsheet export) carries nothing
                continue
            rank.setdefault(norm, len(COLUMNS) + idx)
            result.ignored_columns.append(original)
            result.warn(1, norm, "IGNORED_COLUMN", f"column '{original}' is not used and was ignored", None)
            continue
        found.setdefault(canonical, []).append((idx, original))
        result.header_map[original] = canonical
        if canonical != norm:
            result.warn(1, canonical, "HEADER_ALIAS", f"column '{original}' was read as '{canonical}'", None)
    result.column_rank = rank
    ok = True
    for column in REQUIRED_COLUMNS:
        if column not in found:
            result.add(1, column, "MISSING_COLUMN", f"required column '{column}' is missing", None)
            ok = False
    for column in COLUMNS:
        hits = found.get(column, [])
        if len(hits) > 1:
            headers = ", ".join(h for _, h in hits)
            result.add(1, column, "DUPLICATE_COLUMN", f"more than one column maps to '{column}' ({headers})", None)
            ok = False
    if not ok:
        return None
    return {column: hits[0][0] for column, hits in found.items()}
