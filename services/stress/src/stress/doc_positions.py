"""stress_result.top_positions documents of a whole batch (~180,000 position items per daily pass).

The text is what orjson gives for `ScenarioPresenter.positions_block` wrapped in
`{"correlated": [...]}` / `{"direct": [...]}`: each position's identity is serialised once per
batch (`position_heads`), and every item is one line of a byte matrix — its position's identity
copied from that table, its money fields written by numpy (`money_blocks`) — framed into the rows'
documents and the runs' arrays by `ItemRows`, with no Python object per item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stress.json_text import END, ItemRows, Taken, TextTable, dumps, fill, literal, plain_strings
from stress.money_vector import money_blocks


def position_heads(ids: Sequence[str], symbols: Sequence[str | None], underlyings: Sequence[str | None]) -> TextTable:
    """'{"position_id":…,"symbol":…,"underlying":…' of every position of the book."""
    columns: list[Sequence[str | None]] = [ids, symbols, underlyings]
    values: Sequence[Sequence[str | None]] = columns
    spelling = '"%s"'  # the usual case: each string as it is, between quotes
    if not all(plain_strings(column) for column in columns):
        spelling, values = "%s", [[dumps(v) for v in column] for column in columns]
    args: list[str | None] = [None] * (3 * len(ids))
    for j, column in enumerate(values):
        args[j::3] = column
    template = (
        literal('{"position_id":') + spelling + literal(',"symbol":') + spelling + literal(',"underlying":') + spelling
    )
    return TextTable(fill((template + END) * len(ids), args))


def top_documents(
    key: str,
    heads: TextTable,
    positions: np.ndarray,
    scenario: np.ndarray,
    counts: np.ndarray,
    money: dict[str, np.ndarray],
) -> ItemRows:
    """'{"<key>":[items]}' of every row: row r lists the next `counts[r]` ranked `positions` (of
    `scenario`), leaving out those whose first money field (the P&L) is not finite. `money` maps each
    item field after the identity to its (s, n) array, in item order."""
    names = list(money)
    first = money[names[0]][scenario, positions]
    keep = np.isfinite(first)  # a non-finite P&L is left out of the block
    row_of = np.repeat(np.arange(len(counts)), counts)
    kept_counts = np.bincount(row_of[keep], minlength=len(counts))
    positions, scenario = positions[keep], scenario[keep]
    pieces: list[str | np.ndarray | Taken] = [heads.take(positions)]
    for j, name in enumerate(names):
        pieces += [f",{dumps(name)}:", first[keep] if j == 0 else money[name][scenario, positions]]
    items = money_blocks([*pieces, "}"])
    return ItemRows(items, kept_counts, f"{{{dumps(key)}:[", "]}")
