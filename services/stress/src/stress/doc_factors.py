"""stress_result.direct_factor_impacts / correlated_factor_impacts documents of a whole batch.

The text is what orjson gives for `ScenarioPresenter.factor_block`. A scenario's shocked factors,
their shocks and conditional moves are the same for every portfolio, so each (scenario, shocked
factor) has a fixed head and tail serialised once; rows are p-major with every scenario once per
portfolio, so the items of a whole batch are one portfolio's repeated — each one line of a byte
matrix (`money_blocks`) filled with the money of its (portfolio, shocked factor): exposure X_k and its
P&L X_k · g_k — and `ItemRows` frames them into the rows' lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.formatting import stat
from stress.compute.scenarios import MODEL_FACTORS
from stress.json_text import ItemRows, TextTable, dumps
from stress.money_vector import money_blocks


def factor_documents(
    shocked: Sequence[Sequence[int]],
    shock_stats: Sequence[dict[int, float | None]],
    exposures: np.ndarray,
    factor_pnl: np.ndarray,
    moves: np.ndarray | None,
    portfolios: Sequence[int],
) -> ItemRows:
    """The documents of the rows (p, s), p in `portfolios`, s in order: exposures (P, k), factor_pnl
    (s, P, k); moves (s, k) adds each factor's `conditional_move` (the correlated block)."""
    heads, tails = [], []
    for s, ks in enumerate(shocked):
        for k in ks:
            heads.append(f'{{"factor":{dumps(MODEL_FACTORS[k])},"shock":{dumps(shock_stats[s][k])},"exposure_dollar":')
            tails.append("}" if moves is None else f',"conditional_move":{dumps(stat(float(moves[s, k]), 8))}}}')
    ports = np.asarray(portfolios, dtype=np.int64)
    factor = np.array([k for ks in shocked for k in ks], dtype=np.int64)  # every (s, shocked k), in order
    scenario = np.repeat(np.arange(len(shocked)), [len(ks) for ks in shocked])
    # (portfolio, shocked factor of a scenario), p-major as the rows.
    exposure = exposures[ports][:, factor]
    pnl = factor_pnl[scenario, :, factor][:, ports].T
    pair = np.tile(np.arange(len(factor)), len(ports))
    items = money_blocks([TextTable(heads).take(pair), exposure, ',"pnl":', pnl, TextTable(tails).take(pair)])
    counts = np.tile([len(ks) for ks in shocked], len(ports))
    return ItemRows(items, counts, "[", "]")
