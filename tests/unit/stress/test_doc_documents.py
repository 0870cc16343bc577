"""The batch-built stress documents are, byte for byte, `orjson.dumps` of the per-row dicts.

`top_documents` against the presenter's `positions_block` items and `factor_documents` against its
`factor_block` items (money by `money`, moves by `stat`), on random books whose P&L includes ties,
NaN and ±inf, and whose symbols need JSON escapes, are not ASCII, hold `%` or are missing; and
`RowTexts` against `orjson.dumps` of each run's list of documents (None as null).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from common.formatting import money, stat
from stress.compute.scenarios import MODEL_FACTORS
from stress.doc_factors import factor_documents
from stress.doc_positions import position_heads, top_documents
from stress.json_text import RowTexts, literal, plain_strings

AWKWARD = ['Q"1', "back\\slash", "tab\there", "ctl\x01", "é€😀", "100%", "%s", "a/b", "", None]


def _money_table(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    values = rng.normal(0.0, 1e4, shape) * 10.0 ** rng.integers(-3, 4, shape)
    values[rng.random(shape) < 0.05] = np.round(rng.normal(0.0, 1e3), 2) + 0.005  # a tie
    for special, share in ((np.nan, 0.08), (np.inf, 0.02), (-np.inf, 0.02), (-0.0, 0.02)):
        values[rng.random(shape) < share] = special
    return values


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@pytest.mark.parametrize("awkward", [False, True])
@pytest.mark.parametrize("with_direct", [False, True])
def test_top_documents_are_the_dumped_position_blocks(awkward: bool, with_direct: bool) -> None:
    rng = np.random.default_rng(int(awkward) * 2 + int(with_direct))
    n_s, n = 4, 50
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(n)]
    symbols: list[str | None] = [f"S{i}" for i in range(n)]
    underlyings: list[str | None] = [f"U{i % 7}" for i in range(n)]
    if awkward:
        symbols[: len(AWKWARD)] = AWKWARD
        underlyings[-len(AWKWARD) :] = AWKWARD
    money_fields = {"pnl": _money_table(rng, (n_s, n)), "linear_pnl": _money_table(rng, (n_s, n))}
    if with_direct:
        money_fields["direct_pnl"] = _money_table(rng, (n_s, n))
    counts = rng.integers(0, 8, 30)
    positions = rng.integers(0, n, int(counts.sum()))
    scenario = np.repeat(rng.integers(0, n_s, len(counts)), counts)
    heads = position_heads(ids, symbols, underlyings)
    texts = top_documents("correlated", heads, positions, scenario, counts, money_fields)

    expected = []
    start = 0
    for count in counts.tolist():
        items = []
        for i, s in zip(positions[start : start + count].tolist(), scenario[start : start + count].tolist()):
            if not np.isfinite(money_fields["pnl"][s, i]):
                continue
            item = {"position_id": ids[i], "symbol": symbols[i], "underlying": underlyings[i]}
            items.append(item | {name: money(float(values[s, i])) for name, values in money_fields.items()})
        expected.append(_dumps({"correlated": items}))
        start += count
    assert texts.per_row() == expected
    assert texts.per_run(5) == ["[" + ",".join(expected[r * 6 : r * 6 + 6]) + "]" for r in range(5)]


@pytest.mark.parametrize("with_move", [False, True])
def test_factor_documents_are_the_dumped_factor_blocks(with_move: bool) -> None:
    rng = np.random.default_rng(7)
    n_s, n_p, k = 6, 9, len(MODEL_FACTORS)
    shocked = [[], [0], [1, 4], [0, 2, 5, 7], [3], list(range(k))]
    shock_stats = [{f: stat(float(rng.normal(0.0, 0.1))) for f in fs} for fs in shocked]
    shock_stats[1][0] = None  # a shock that is not finite
    exposures, factor_pnl = _money_table(rng, (n_p, k)), _money_table(rng, (n_s, n_p, k))
    moves = rng.normal(0.0, 0.05, (n_s, k))
    moves[2, 1] = np.nan
    ports = [0, 3, 4, 8]
    texts = factor_documents(shocked, shock_stats, exposures, factor_pnl, moves if with_move else None, ports)

    expected = []
    for p in ports:
        for s, fs in enumerate(shocked):
            items = []
            for f in fs:
                item = {
                    "factor": MODEL_FACTORS[f],
                    "shock": shock_stats[s][f],
                    "exposure_dollar": money(float(exposures[p, f])),
                    "pnl": money(float(factor_pnl[s, p, f])),
                }
                if with_move:
                    item["conditional_move"] = stat(float(moves[s, f]), 8)
                items.append(item)
            expected.append(_dumps(items))
    assert texts.per_row() == expected
    assert factor_documents(shocked, shock_stats, exposures, factor_pnl, None, []).per_row() == []


def test_row_texts_hold_missing_documents_and_fixed_text() -> None:
    templates: list[str | None] = [literal('{"a":"50%"}'), None, '{"b":%s}', None, "[%s,%s]", literal('"%%"')]
    texts = RowTexts(templates, ["1", '"x"', "null"])
    assert texts.per_row() == ['{"a":"50%"}', None, '{"b":1}', None, '["x",null]', '"%%"']
    assert texts.per_run(2) == ['[{"a":"50%"},null,{"b":1}]', '[null,["x",null],"%%"]']
    assert texts.per_run(1) == [_dumps([orjson.loads(t) if t else None for t in texts.per_row()])]
    assert RowTexts([], []).per_run(3) == ["[]", "[]", "[]"]  # runs of no scenarios
    assert RowTexts([], []).per_row() == [] and RowTexts([], []).per_run(0) == []


def test_plain_strings_are_those_orjson_leaves_as_they_are() -> None:
    for value in AWKWARD:
        assert plain_strings([value]) == (value is not None and _dumps(value) == f'"{value}"')
    assert plain_strings(["a", "b/c", "é"]) and not plain_strings(["a", None]) and plain_strings([])
