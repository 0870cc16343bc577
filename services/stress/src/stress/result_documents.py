"""stress.stress_result rows of a whole batch built column-wise (the daily step's hot path).

The per-row presenter (`ScenarioPresenter.positions_block` / `factor_block` / `flags`, kept for the
#37/#38 bodies) built ~1,150 rows × ~25 dicts per batch and formatted every position's money of
every scenario; orjson then serialised the dicts again. Here each jsonb document is produced as
the very text orjson gives for those dicts (same keys, same order, same number and string
spellings — `tests/integration/stress/test_stress_result_documents.py` compares them byte for
byte): the parts that do not depend on the portfolio (a position's identity, a shocked factor's
shock and conditional move, a scenario's implied moves and flags) are serialised once per batch,
money is formatted only for the values written, vectorised (`money_vector`), and the items of
whole columns of documents are written as lines of one byte matrix each (`doc_positions`,
`doc_factors`, framed into each run's JSON array by `json_text.ItemRows`). The stored set of a run
(`sets`) takes the documents as text. (The per-row view the tests compare it with lives in
tests/integration/stress/result_rows.py; tests/unit/stress/test_stress_generated_books.py compares
the sets with per-row documents on generated books.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np

from stress.bulk_upsert import RawJson
from stress.compute.scenarios import MODEL_FACTORS, Impacts
from stress.doc_factors import factor_documents
from stress.doc_positions import position_heads, top_documents
from stress.doc_stat import stat_values
from stress.json_text import Documents, RowTexts, dumps, literal
from stress.money_vector import money_strings

if TYPE_CHECKING:  # the presenter imports this module
    from stress.scenarios_present import ScenarioPresenter


class ResultDocuments:
    """Columns of the stress_result rows of (portfolio p with a run id) × (scenario s), p-major."""

    def __init__(self, presenter: ScenarioPresenter, run_ids: Sequence[UUID | None]) -> None:
        self.pr = presenter
        self.ports = [p for p, rid in enumerate(run_ids) if rid is not None]
        self.run_ids = [run_ids[p] for p in self.ports]
        self.n_scen = len(presenter.c.scenarios)
        # Row r is (p_of[r], s_of[r]); every column below is in this order, each portfolio's rows
        # holding every scenario in order (so a per-scenario value repeats once per portfolio).
        self.p_of = np.repeat(np.asarray(self.ports, dtype=np.int64), self.n_scen)
        self.s_of = np.tile(np.arange(self.n_scen, dtype=np.int64), len(self.ports))

    # -- documents (JSON text) -----------------------------------------------------------------

    def top_positions(self) -> Documents:
        """{"correlated": [...]} (items carry their direct P&L too) when the correlated impact was
        computed, else {"direct": [...]}: #40 serves exactly that list, so the direct ranking of a
        correlated run (half of each ~3 kB document) is not stored."""
        pr, direct, corr = self.pr, self.pr.c.direct, self.pr.c.correlated
        heads = position_heads(pr._position_ids, pr.a.symbols, pr.a.position_underlyings)
        if corr is None:
            positions, scenario, counts = pr.ranking(direct).rows(self.ports)
            money = {"pnl": direct.position_pnl, "linear_pnl": direct.position_linear}
            return top_documents("direct", heads, positions, scenario, counts, money)
        positions, scenario, counts = pr.ranking(corr.impacts).rows(self.ports)
        money = {
            "pnl": corr.impacts.position_pnl,
            "linear_pnl": corr.impacts.position_linear,
            "direct_pnl": direct.position_pnl,
        }
        return top_documents("correlated", heads, positions, scenario, counts, money)

    def factor_impacts(self, impacts: Impacts, *, with_move: bool) -> Documents:
        """Per row: [{factor, shock, exposure_dollar, pnl[, conditional_move]}] over the shocked factors."""
        pr = self.pr
        moves = impacts.moves if with_move else None
        return factor_documents(pr._shocked, pr._shock_stats, pr.exposures, impacts.factor_pnl, moves, self.ports)

    def implied_moves(self) -> RowTexts:
        """The same per scenario for every portfolio: serialised once per scenario."""
        moves = map(self.pr._implied_moves, range(self.n_scen))
        per_scenario = [None if m is None else literal(dumps(m)) for m in moves]
        return RowTexts(per_scenario * len(self.ports), [])

    def flag_texts(self) -> RowTexts:
        """`flags` of every row: one text per (scenario, loss_exceeds_equity) pair, serialised once."""
        per_scenario = self._scenario_flags()
        texts = np.array(
            [
                [literal(dumps(f)) for f in per_scenario],
                [literal(dumps([*f, "loss_exceeds_equity"])) for f in per_scenario],
            ],
            dtype=object,
        ).reshape(2, self.n_scen)
        return RowTexts(texts[self._loss_exceeds().astype(np.int64), self.s_of].tolist(), [])

    # -- scalar columns --------------------------------------------------------------------------

    def worst_factors(self) -> list[str | None]:
        """`ScenarioPresenter.worst_factor` of every row (None where the direct impact is not computed)."""
        c = self.pr.c
        corr = c.correlated.impacts if c.correlated is not None else c.direct
        use_corr = corr.computed  # (s,): correlated when computed, else direct
        factor_pnl = np.where(use_corr[:, None, None], corr.factor_pnl, c.direct.factor_pnl)
        values = np.where(c.scenarios.shocked[:, None, :], factor_pnl, np.inf)  # (s, P, k)
        v = values[self.s_of, self.p_of]  # (rows, k)
        if v.shape[1] == 0:
            return [None] * len(self.s_of)
        k = np.argmin(v, axis=1)
        best = v[np.arange(len(k)), k]
        ok = np.isfinite(v).any(axis=1) & (best < 0) & c.direct.computed[self.s_of]
        names = np.array([*MODEL_FACTORS, None], dtype=object)
        return names[np.where(ok, k, len(MODEL_FACTORS))].tolist()

    def _scenario_flags(self) -> list[list[str]]:
        """The flags of every scenario that do not depend on the portfolio."""
        pr, c = self.pr, self.pr.c
        per_scenario = []
        for s in range(self.n_scen):
            out: list[str] = []
            invalid = pr.meta.invalid[s] if s < len(pr.meta.invalid) else None
            if invalid == "invalid_scenario":
                out.append(invalid)
            elif not c.direct.computed[s]:
                out.append("factor_unavailable")
            if c.correlated is None:
                out.append("correlation_unavailable")
            elif c.correlated.conditional.ill_conditioned[s]:
                out.append("ill_conditioned_scenario")
            per_scenario.append(out)
        return per_scenario

    def _loss_exceeds(self) -> np.ndarray:
        c = self.pr.c
        equity = self.pr.a.book.equity[self.p_of]
        loss = loss_exceeds_values(c.direct.total[self.s_of, self.p_of], equity)
        if c.correlated is not None:
            loss |= loss_exceeds_values(c.correlated.impacts.total[self.s_of, self.p_of], equity)
        return loss

    # -- the rows --------------------------------------------------------------------------------

    def _scalars(self) -> dict[str, list[Any]]:
        """The stored columns that are not JSON, one value per row (p-major)."""
        c = self.pr.c
        s_of, p_of = self.s_of, self.p_of
        direct, corr = c.direct, c.correlated
        d_total, d_lin = direct.total[s_of, p_of], direct.linear[s_of, p_of]
        nan = np.full(len(s_of), np.nan)
        c_total = corr.impacts.total[s_of, p_of] if corr is not None else nan
        c_lin = corr.impacts.linear[s_of, p_of] if corr is not None else nan
        equity = self.pr.a.book.equity[p_of]
        money = ("direct_pnl", "direct_linear_pnl", "correlated_pnl", "correlated_linear_pnl", "correlation_effect")
        # Every amount formatted in one pass (one block of rows per column).
        texts = money_strings(np.stack([d_total, d_lin, c_total, c_lin, c_total - d_total]))
        n = len(s_of)
        pcts = pct_values(np.concatenate([d_total, c_total]), np.concatenate([equity, equity]))
        return {name: texts[i * n : (i + 1) * n] for i, name in enumerate(money)} | {
            "direct_pnl_pct": pcts[:n],
            "correlated_pnl_pct": pcts[n:],
            "worst_factor": self.worst_factors(),
            "floored_positions": direct.floored[s_of, p_of].astype(np.int64).tolist(),
            "correlated_floored_positions": (
                corr.impacts.floored[s_of, p_of].astype(np.int64).tolist() if corr is not None else [None] * len(s_of)
            ),
        }

    def _documents(self) -> dict[str, Documents]:
        """The jsonb documents of every row (None where SQL None was stored)."""
        direct, corr = self.pr.c.direct, self.pr.c.correlated
        return {
            "implied_factor_moves": self.implied_moves(),
            "direct_factor_impacts": self.factor_impacts(direct, with_move=False),
            "correlated_factor_impacts": (
                self.factor_impacts(corr.impacts, with_move=True)
                if corr is not None
                else RowTexts([None] * len(self.s_of), [])
            ),
            "top_positions": self.top_positions(),
        }

    def sets(self, scenario_ids: Sequence[UUID], portfolio_ids: Sequence[UUID], as_of: date) -> list[dict[str, Any]]:
        """One `stress.stress_result_set` row per run: each column's values of the run's scenarios, the
        JSON columns filled straight into each run's arrays (no per-row text)."""
        n_runs = len(self.ports)
        json = self._documents() | {"flags": self.flag_texts()}
        arrays = {name: texts.per_run(n_runs, RawJson) for name, texts in json.items()}
        values = self._scalars() | arrays
        columns = {name: values[name] for name in COLUMNS}
        return stored_sets(columns, self.run_ids, [portfolio_ids[p] for p in self.ports], scenario_ids, as_of)


def stored_sets(
    columns: dict[str, list[Any]],
    run_ids: Sequence[UUID | None],
    portfolio_ids: Sequence[UUID],
    scenario_ids: Sequence[UUID],
    as_of: date,
) -> list[dict[str, Any]]:
    """The rows: a JSON column holds one value per run, an array column one per row and each run takes
    its slice. Percentages are finite or None (`stat` maps ±inf to None), so every value fits in JSON."""
    n = len(scenario_ids)
    ids = [str(i) for i in scenario_ids]
    starts = [r * n for r in range(len(run_ids))]
    per_run = [
        values if name in JSON_COLUMNS else [values[b : b + n] for b in starts] for name, values in columns.items()
    ]
    names = ("stress_run_id", "portfolio_id", "calculation_date", "scenario_ids", *columns)
    return [
        dict(zip(names, (run_id, pid, as_of, ids, *values), strict=True))
        for run_id, pid, *values in zip(run_ids, portfolio_ids, *per_run, strict=True)
    ]


COLUMNS = (
    "direct_pnl",
    "direct_linear_pnl",
    "correlated_pnl",
    "correlated_linear_pnl",
    "correlation_effect",
    "direct_pnl_pct",
    "correlated_pnl_pct",
    "worst_factor",
    "implied_factor_moves",
    "direct_factor_impacts",
    "correlated_factor_impacts",
    "top_positions",
    "floored_positions",
    "correlated_floored_positions",
    "flags",
)
DOCUMENT_COLUMNS = frozenset(
    {"implied_factor_moves", "direct_factor_impacts", "correlated_factor_impacts", "top_positions"}
)
JSON_COLUMNS = DOCUMENT_COLUMNS | {"flags"}


def loss_exceeds_values(pnl: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """`loss_exceeds_equity` element-wise (the same float comparisons)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(pnl) & np.isfinite(equity) & (-pnl > equity) & (pnl < 0)


def pct_values(pnl: np.ndarray, equity: np.ndarray) -> list[float | None]:
    """`pct` element-wise: stat(pnl / equity), None when equity ≤ 0 or either is not finite (the
    IEEE quotient numpy computes is the one Python computes, rounded by `stat_values`)."""
    ok = np.isfinite(pnl) & np.isfinite(equity) & (equity > 0)
    with np.errstate(over="ignore"):  # an overflowing quotient is inf, as in Python, and stat maps it to None
        quotient = np.divide(pnl, equity, out=np.full(len(ok), np.nan), where=ok)
    return stat_values(quotient)
