"""stress_result.direct_factor_impacts / correlated_factor_impacts documents of a whole batch.

The text is what orjson gives for `ScenarioPresenter.factor_block`. A scenario's shocked factors,
their shocks and conditional moves are the same for every portfolio, so they are fixed text of the
scenario's template; rows are p-major with every scenario once per portfolio, so the templates of a
whole batch are one portfolio's repeated, filled with the money of every (portfolio, shocked factor)
— exposure X_k and its P&L X_k · g_k — written in one numpy pass (`money_texts`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.formatting import stat
from stress.compute.scenarios import MODEL_FACTORS
from stress.json_text import RowTexts, dumps, literal
from stress.money_vector import money_texts


def factor_documents(
    shocked: Sequence[Sequence[int]],
    shock_stats: Sequence[dict[int, float | None]],
    exposures: np.ndarray,
    factor_pnl: np.ndarray,
    moves: np.ndarray | None,
    portfolios: Sequence[int],
) -> RowTexts:
    """The documents of the rows (p, s), p in `portfolios`, s in order: exposures (P, k), factor_pnl
    (s, P, k); moves (s, k) adds each factor's `conditional_move` (the correlated block)."""
    templates = []
    for s, ks in enumerate(shocked):
        items = []
        for k in ks:
            head = f'{{"factor":{dumps(MODEL_FACTORS[k])},"shock":{dumps(shock_stats[s][k])},"exposure_dollar":'
            tail = "}" if moves is None else f',"conditional_move":{dumps(stat(float(moves[s, k]), 8))}}}'
            items.append(literal(head) + "%s" + literal(tail))
        templates.append("[" + ",".join(items) + "]")
    ports = np.asarray(portfolios, dtype=np.int64)
    factor = np.array([k for ks in shocked for k in ks], dtype=np.int64)  # every (s, shocked k), in order
    scenario = np.repeat(np.arange(len(shocked)), [len(ks) for ks in shocked])
    # (portfolio, shocked factor of a scenario), p-major as the rows: '<X_k>,"pnl":<X_k · g_k>'.
    exposure = exposures[ports][:, factor]
    pnl = factor_pnl[scenario, :, factor][:, ports].T
    return RowTexts(templates * len(ports), money_texts([exposure, ',"pnl":', pnl]))
