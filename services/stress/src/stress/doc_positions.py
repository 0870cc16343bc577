"""stress_result.top_positions documents of a whole batch (~180,000 position items per daily pass).

The text is what orjson gives for `ScenarioPresenter.positions_block` wrapped in
`{"correlated": [...]}` / `{"direct": [...]}`: each position's identity is serialised once per
batch (`position_heads`), an item's money fields in one numpy pass (`money_texts`), and a row's
template depends only on its item count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stress.json_text import END, RowTexts, dumps, fill, literal, plain_strings
from stress.money_vector import money_texts


def position_heads(ids: Sequence[str], symbols: Sequence[str | None], underlyings: Sequence[str | None]) -> np.ndarray:
    """'{"position_id":…,"symbol":…,"underlying":…' of every position of the book (an object array)."""
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
    return np.array(fill((template + END) * len(ids), args), dtype=object)


def top_documents(
    key: str,
    heads: np.ndarray,
    positions: np.ndarray,
    scenario: np.ndarray,
    counts: np.ndarray,
    money: dict[str, np.ndarray],
) -> RowTexts:
    """'{"<key>":[items]}' of every row: row r lists the next `counts[r]` ranked `positions` (of
    `scenario`), leaving out those whose first money field (the P&L) is not finite. `money` maps each
    item field after the identity to its (s, n) array, in item order."""
    names = list(money)
    first = money[names[0]][scenario, positions]
    keep = np.isfinite(first)  # a non-finite P&L is left out of the block
    row_of = np.repeat(np.arange(len(counts)), counts)
    kept_counts = np.bincount(row_of[keep], minlength=len(counts))
    positions, scenario = positions[keep], scenario[keep]
    pieces: list[str | np.ndarray] = []
    for j, name in enumerate(names):
        pieces += [f",{dumps(name)}:", first[keep] if j == 0 else money[name][scenario, positions]]
    args: list[str] = [""] * (2 * len(positions))
    args[0::2] = heads[positions].tolist()
    args[1::2] = money_texts([*pieces, "}"])
    opening = literal(f"{{{dumps(key)}:[")
    by_count = [opening + ",".join(["%s%s"] * k) + "]}" for k in range(int(counts.max(initial=0)) + 1)]
    return RowTexts(np.array(by_count, dtype=object)[kept_counts].tolist(), args)
