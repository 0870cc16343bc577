"""stress.stress_result rows of a whole batch built column-wise (the daily step's hot path).

The per-row presenter (`ScenarioPresenter.positions_block` / `factor_block` / `flags`, kept for the
#37/#38 bodies) built ~1,150 rows × ~25 dicts per batch and formatted every position's money of
every scenario; orjson then serialised the dicts again. Here each jsonb document is produced as
the very text orjson gives for those dicts (same keys, same order, same number and string
spellings — `tests/unit/stress/test_result_documents.py` compares them byte for byte): the parts
that do not depend on the portfolio (a position's identity, a shocked factor's shock and
conditional move, a scenario's implied moves) are serialised once per batch, money is formatted
only for the values written, vectorised (`money_strings`), and the documents travel as
`RawJson` strings that the bulk upsert sends unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
import orjson

from common.formatting import stat
from stress.bulk_upsert import RawJson
from stress.compute.scenarios import MODEL_FACTORS, Impacts
from stress.money_vector import money_json, money_strings

if TYPE_CHECKING:  # the presenter imports this module
    from stress.scenarios_present import ScenarioPresenter


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_money(values: np.ndarray) -> list[str]:
    """money() of each value as a JSON token: a quoted 2-dp string, `null` when not finite."""
    return money_json(values)


def _stat_list(values: np.ndarray, digits: int = 6) -> list[float | None]:
    """`stat` of every value (Python's correctly rounded `round`, as the per-row path did)."""
    return [stat(v, digits) for v in values.tolist()]


class ResultDocuments:
    """Columns of the stress_result rows of (portfolio p with a run id) × (scenario s), p-major."""

    def __init__(self, presenter: ScenarioPresenter, run_ids: Sequence[UUID | None]) -> None:
        self.pr = presenter
        self.ports = [p for p, rid in enumerate(run_ids) if rid is not None]
        self.run_ids = [run_ids[p] for p in self.ports]
        self.n_scen = len(presenter.c.scenarios)
        # Row r is (p_of[r], s_of[r]); every column below is in this order.
        self.p_of = np.repeat(np.asarray(self.ports, dtype=np.int64), self.n_scen)
        self.s_of = np.tile(np.arange(self.n_scen, dtype=np.int64), len(self.ports))

    # -- top positions -------------------------------------------------------------------------

    def _items(self, impacts: Impacts, top: list[list[np.ndarray]], direct: Impacts | None) -> list[str]:
        """The position items of every row, as the JSON text inside the row's list."""
        a = self.pr.a
        chosen = [top[s][p] for p, s in zip(self.p_of.tolist(), self.s_of.tolist(), strict=True)]
        counts = np.array([len(c) for c in chosen], dtype=np.int64)
        idx = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        scen = np.repeat(self.s_of, counts)
        pnl = impacts.position_pnl[scen, idx]
        keep = np.isfinite(pnl)  # a non-finite P&L is left out of the block
        idx, scen, pnl = idx[keep], scen[keep], pnl[keep]
        row_of = np.repeat(np.arange(len(counts)), counts)
        kept_counts = np.bincount(row_of[keep], minlength=len(counts))
        ids = [str(x) for x in a.position_ids]
        # '{"position_id":"…","symbol":…,"underlying":…,"pnl":' once per position of the book.
        heads = [
            f'{{"position_id":{_dumps(i)},"symbol":{_dumps(sym)},"underlying":{_dumps(und)},"pnl":'
            for i, sym, und in zip(ids, a.symbols, a.position_underlyings, strict=True)
        ]
        pnl_s = _json_money(pnl)
        lin_s = _json_money(impacts.position_linear[scen, idx])
        if direct is None:
            items = [
                f'{heads[i]}{p},"linear_pnl":{lin}}}' for i, p, lin in zip(idx.tolist(), pnl_s, lin_s, strict=True)
            ]
        else:
            dir_s = _json_money(direct.position_pnl[scen, idx])
            items = [
                f'{heads[i]}{p},"linear_pnl":{lin},"direct_pnl":{d}}}'
                for i, p, lin, d in zip(idx.tolist(), pnl_s, lin_s, dir_s, strict=True)
            ]
        ends = np.cumsum(kept_counts).tolist()
        starts = [0, *ends[:-1]]
        return [",".join(items[b:e]) for b, e in zip(starts, ends, strict=True)]

    def top_positions(self) -> list[RawJson]:
        """{"correlated": [...]} (items carry their direct P&L too) when the correlated impact was
        computed, else {"direct": [...]}: #40 serves exactly that list, so the direct ranking of a
        correlated run (half of each ~3 kB document) is not stored."""
        c, pr = self.pr.c, self.pr
        if c.correlated is None or pr._top_corr is None:
            return [RawJson(f'{{"direct":[{d}]}}') for d in self._items(c.direct, pr._top_direct, None)]
        corr = self._items(c.correlated.impacts, pr._top_corr, c.direct)
        return [RawJson(f'{{"correlated":[{k}]}}') for k in corr]

    # -- factor blocks ---------------------------------------------------------------------------

    def factor_impacts(self, impacts: Impacts, *, with_move: bool) -> list[RawJson]:
        """Per row: [{factor, shock, exposure_dollar, pnl[, conditional_move]}] over the shocked factors."""
        pr = self.pr
        n_factors = pr.exposures.shape[1]
        exposure = _json_money(pr.exposures)  # (P, k) flattened
        # Only the shocked factors' P&L is written (≈ 2 of the k factors per scenario): scenario s's
        # block of `pnl` is factor_pnl[s][:, shocked] flattened (P, m_s), starting at offsets[s].
        chosen = [impacts.factor_pnl[s][:, ks].ravel() for s, ks in enumerate(pr._shocked)]
        pnl = _json_money(np.concatenate(chosen)) if chosen else []
        offsets = np.cumsum([0, *(x.size for x in chosen)]).tolist()
        heads: list[list[tuple[int, str, str]]] = []
        for s, ks in enumerate(pr._shocked):
            row = []
            for k in ks:
                head = (
                    f'{{"factor":{_dumps(MODEL_FACTORS[k])},"shock":{_dumps(pr._shock_stats[s][k])},"exposure_dollar":'
                )
                tail = f',"conditional_move":{_dumps(stat(float(impacts.moves[s, k]), 8))}}}' if with_move else "}"
                row.append((k, head, tail))
            heads.append(row)
        out = []
        for p, s in zip(self.p_of.tolist(), self.s_of.tolist(), strict=True):
            base_e, base_p = p * n_factors, offsets[s] + p * len(heads[s])
            parts = [f'{h}{exposure[base_e + k]},"pnl":{pnl[base_p + j]}{t}' for j, (k, h, t) in enumerate(heads[s])]
            out.append(RawJson("[" + ",".join(parts) + "]"))
        return out

    def implied_moves(self) -> list[RawJson | None]:
        per_scenario = [self.pr._implied_moves(s) for s in range(self.n_scen)]
        texts = [None if m is None else RawJson(_dumps(m)) for m in per_scenario]
        return [texts[s] for s in self.s_of.tolist()]

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
        return [MODEL_FACTORS[kk] if good else None for kk, good in zip(k.tolist(), ok.tolist(), strict=True)]

    def flags(self) -> list[list[str]]:
        """`ScenarioPresenter.flags` of every row: per-scenario flags, then loss_exceeds_equity."""
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
        equity = pr.a.book.equity[self.p_of]
        loss = loss_exceeds_values(c.direct.total[self.s_of, self.p_of], equity)
        if c.correlated is not None:
            loss |= loss_exceeds_values(c.correlated.impacts.total[self.s_of, self.p_of], equity)
        return [
            [*per_scenario[s], "loss_exceeds_equity"] if lost else list(per_scenario[s])
            for s, lost in zip(self.s_of.tolist(), loss.tolist(), strict=True)
        ]

    def columns(self) -> dict[str, list[Any]]:
        """Every stored column but the keys, one value per row (p-major)."""
        c = self.pr.c
        s_of, p_of = self.s_of, self.p_of
        direct, corr = c.direct, c.correlated
        d_total, d_lin = direct.total[s_of, p_of], direct.linear[s_of, p_of]
        nan = np.full(len(s_of), np.nan)
        c_total = corr.impacts.total[s_of, p_of] if corr is not None else nan
        c_lin = corr.impacts.linear[s_of, p_of] if corr is not None else nan
        equity = self.pr.a.book.equity[p_of]
        return {
            "direct_pnl": money_strings(d_total),
            "direct_linear_pnl": money_strings(d_lin),
            "correlated_pnl": money_strings(c_total),
            "correlated_linear_pnl": money_strings(c_lin),
            "correlation_effect": money_strings(c_total - d_total),
            "direct_pnl_pct": pct_values(d_total, equity),
            "correlated_pnl_pct": pct_values(c_total, equity),
            "worst_factor": self.worst_factors(),
            "implied_factor_moves": self.implied_moves(),
            "direct_factor_impacts": self.factor_impacts(direct, with_move=False),
            "correlated_factor_impacts": (
                self.factor_impacts(corr.impacts, with_move=True) if corr is not None else [None] * len(s_of)
            ),
            "top_positions": self.top_positions(),
            "floored_positions": direct.floored[s_of, p_of].astype(np.int64).tolist(),
            "correlated_floored_positions": (
                corr.impacts.floored[s_of, p_of].astype(np.int64).tolist() if corr is not None else [None] * len(s_of)
            ),
            "flags": self.flags(),
        }

    def sets(self, scenario_ids: Sequence[UUID], portfolio_ids: Sequence[UUID], as_of: date) -> list[dict[str, Any]]:
        """One `stress.stress_result_set` row per run: each column's values of the run's scenarios."""
        return result_sets(self.columns(), self.run_ids, [portfolio_ids[p] for p in self.ports], scenario_ids, as_of)


def result_sets(
    columns: dict[str, list[Any]],
    run_ids: Sequence[UUID | None],
    portfolio_ids: Sequence[UUID],
    scenario_ids: Sequence[UUID],
    as_of: date,
) -> list[dict[str, Any]]:
    """`stress_result_set` rows from per-row columns (run-major, `len(scenario_ids)` rows per run).

    Array columns take the run's slice; a JSON column becomes one JSON array of the run's documents
    (`null` for a missing one, as the per-row table stored SQL None); flags a JSON array of lists.
    Percentages are finite or None (`stat` maps ±inf to None), so every value fits in JSON."""
    n = len(scenario_ids)
    ids = [str(i) for i in scenario_ids]
    out = []
    for r, (run_id, pid) in enumerate(zip(run_ids, portfolio_ids, strict=True)):
        b, e = r * n, (r + 1) * n
        row: dict[str, Any] = {
            "stress_run_id": run_id,
            "portfolio_id": pid,
            "calculation_date": as_of,
            "scenario_ids": ids,
        }
        for name, values in columns.items():
            part = values[b:e]
            if name in DOCUMENT_COLUMNS:
                row[name] = RawJson("[" + ",".join("null" if v is None else v for v in part) + "]")
            elif name == "flags":
                row[name] = RawJson(_dumps(part))
            else:
                row[name] = part
        out.append(row)
    return out


DOCUMENT_COLUMNS = frozenset(
    {"implied_factor_moves", "direct_factor_impacts", "correlated_factor_impacts", "top_positions"}
)


def loss_exceeds_values(pnl: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """`loss_exceeds_equity` element-wise (the same float comparisons)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(pnl) & np.isfinite(equity) & (-pnl > equity) & (pnl < 0)


def pct_values(pnl: np.ndarray, equity: np.ndarray) -> list[float | None]:
    """`pct` element-wise: stat(pnl / equity), None when equity ≤ 0 or either is not finite."""
    ok = np.isfinite(pnl) & np.isfinite(equity) & (equity > 0)
    return [
        stat(x / e) if good else None for x, e, good in zip(pnl.tolist(), equity.tolist(), ok.tolist(), strict=True)
    ]
