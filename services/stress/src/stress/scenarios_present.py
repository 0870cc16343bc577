"""Rows and response bodies from scenario computations (pure: no I/O).

Money leaves as 2-dp strings (`common.formatting.money`; `money_strings` over whole arrays for the
stored rows, which numeric_in stores as the very cents `round_money` gives), Decimal cents elsewhere;
fractions of equity (`_pct`) and factor moves stay floats. Equity-relative numbers are null when
equity ≤ 0 (calculations.md §2.1, flag `equity_undefined`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np

from common.formatting import money, round_money, stat
from stress.catalogue import SEVERITY_ORDER
from stress.compute.market_risk import MarketRisk
from stress.compute.scenarios import MODEL_FACTORS, CorrelatedImpacts, Impacts, ScenarioSet, summarise
from stress.doc_ranking import Ranking
from stress.money_vector import money_strings
from stress.result_documents import ResultDocuments, loss_exceeds_values, pct_values
from stress.scenarios_inputs import AssembledBook, ScenarioMeta
from stress.summary_vector import summary_blocks

TOP_POSITIONS = 10


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def pct(pnl: float, equity: float) -> float | None:
    """P&L as a fraction of equity; None when equity ≤ 0 or either is unknown."""
    if not (_finite(pnl) and _finite(equity)) or equity <= 0:
        return None
    return stat(pnl / equity)


def loss_exceeds_equity(pnl: float, equity: float) -> bool:
    """A loss larger than equity (reported in full, never capped: calculations.md §6.5 invariant 2)."""
    return _finite(pnl) and _finite(equity) and -pnl > equity and pnl < 0


def _money_or_none(value: float) -> str | None:
    return money(value) if _finite(value) else None


@dataclass(frozen=True)
class StressComputation:
    """Direct and (when a covariance exists) correlated impacts of a ScenarioSet on a book."""

    scenarios: ScenarioSet
    direct: Impacts
    correlated: CorrelatedImpacts | None


class ScenarioPresenter:
    """Builds stored rows and response blocks of one computation (many portfolios × scenarios)."""

    def __init__(self, assembled: AssembledBook, meta: ScenarioMeta, computation: StressComputation) -> None:
        self.a = assembled
        self.meta = meta
        self.c = computation
        self.exposures = assembled.book.factor_exposures()  # (P, k)
        self._rankings: dict[int, Ranking] = {}
        self._position_ids = [str(x) for x in assembled.position_ids]
        self._money_rows: dict[tuple[int, int], list[str | None]] = {}
        # Formatted once per presenter, not once per (portfolio, scenario) row.
        self._factor_rows: dict[tuple[int, int], list[list[str | None]]] = {}
        self._exposure_money: list[list[str | None]] | None = None
        self._implied: dict[int, dict[str, float] | None] = {}
        scenarios = computation.scenarios
        self._shocked = [np.flatnonzero(row).tolist() for row in scenarios.shocked]
        self._shock_stats = [{k: stat(float(scenarios.shocks[s, k])) for k in ks} for s, ks in enumerate(self._shocked)]

    # -- rankings ----------------------------------------------------------------------------

    def ranking(self, impacts: Impacts) -> Ranking:
        """Largest |P&L| positions of every (scenario, portfolio) of `impacts`, ranked on first use (the
        stored rows of a correlated run keep only the correlated ranking). Keyed by the impacts'
        identity, which is stable: they belong to `self.c` and live as long as the presenter."""
        ranking = self._rankings.get(id(impacts))
        if ranking is None:
            book = self.a.book
            ranking = Ranking(impacts.position_pnl, book.portfolio_index, book.n_portfolios, TOP_POSITIONS)
            self._rankings[id(impacts)] = ranking
        return ranking

    @property
    def _top_direct(self) -> list[list[np.ndarray]]:
        """The ranked positions of every direct P&L row: per scenario, one index array per portfolio."""
        return self.ranking(self.c.direct).lists()

    @property
    def _top_corr(self) -> list[list[np.ndarray]] | None:
        """The same of the correlated P&L (None without a correlated computation)."""
        return None if self.c.correlated is None else self.ranking(self.c.correlated.impacts).lists()

    # -- blocks ----------------------------------------------------------------------------

    def _money_row(self, values: np.ndarray, s: int) -> list[str | None]:
        """money() of every position of scenario row s of `values` (position_pnl / position_linear),
        formatted once per presenter: the result rows need ~50k of them per batch. Keyed by the array's
        identity, which is stable: the arrays belong to `self.c` and live as long as the presenter."""
        key = (id(values), s)
        row = self._money_rows.get(key)
        if row is None:
            row = self._money_rows[key] = money_strings(values[s])
        return row

    def positions_block(
        self, impacts: Impacts, top: list[np.ndarray], s: int, p: int, direct: Impacts | None = None
    ) -> list[dict[str, Any]]:
        """Largest |P&L| positions of portfolio p in scenario s (non-finite P&L left out)."""
        pnl = self._money_row(impacts.position_pnl, s)
        linear = self._money_row(impacts.position_linear, s)
        ids, symbols, underlyings = self._position_ids, self.a.symbols, self.a.position_underlyings
        chosen = [i for i in top[p].tolist() if pnl[i] is not None]
        if direct is None:
            return [
                {
                    "position_id": ids[i],
                    "symbol": symbols[i],
                    "underlying": underlyings[i],
                    "pnl": pnl[i],
                    "linear_pnl": linear[i],
                }
                for i in chosen
            ]
        direct_pnl = self._money_row(direct.position_pnl, s)
        return [
            {
                "position_id": ids[i],
                "symbol": symbols[i],
                "underlying": underlyings[i],
                "pnl": pnl[i],
                "linear_pnl": linear[i],
                "direct_pnl": direct_pnl[i],
            }
            for i in chosen
        ]

    def _factor_money(self, impacts: Impacts, s: int) -> list[list[str | None]]:
        """money() of X_k · g_k for every (portfolio, factor) of scenario s, formatted once."""
        key = (id(impacts.factor_pnl), s)
        table = self._factor_rows.get(key)
        if table is None:
            n_factors = impacts.factor_pnl.shape[2]
            flat = money_strings(impacts.factor_pnl[s])
            table = self._factor_rows[key] = [
                flat[p * n_factors : (p + 1) * n_factors] for p in range(len(flat) // max(n_factors, 1))
            ]
        return table

    def factor_block(self, impacts: Impacts, s: int, p: int, *, with_move: bool) -> list[dict[str, Any]]:
        """Per shocked factor: shock, factor dollar exposure X_k, and its linear P&L X_k · g_k."""
        if self._exposure_money is None:
            n_factors = self.exposures.shape[1]
            flat = money_strings(self.exposures)
            self._exposure_money = [flat[q * n_factors : (q + 1) * n_factors] for q in range(self.exposures.shape[0])]
        exposure = self._exposure_money[p]
        pnl = self._factor_money(impacts, s)[p]
        out = []
        for k in self._shocked[s]:
            item: dict[str, Any] = {
                "factor": MODEL_FACTORS[k],
                "shock": self._shock_stats[s][k],
                "exposure_dollar": exposure[k],
                "pnl": pnl[k],
            }
            if with_move:
                item["conditional_move"] = stat(float(impacts.moves[s, k]), 8)
            out.append(item)
        return out

    def implied_moves(self, s: int) -> dict[str, float] | None:
        """ΔF_o = Σ_os Σ_ss⁻¹ ΔF_s of the unshocked factors (None when not computed); the same for every
        portfolio, so computed once per scenario (a fresh dict each call: rows never share one)."""
        if s not in self._implied:
            self._implied[s] = self._implied_moves(s)
        moves = self._implied[s]
        return None if moves is None else dict(moves)

    def _implied_moves(self, s: int) -> dict[str, float] | None:
        if self.c.correlated is None or not self.c.correlated.conditional.computed[s]:
            return None
        implied = self.c.correlated.conditional.implied[s]
        return {MODEL_FACTORS[k]: stat(float(implied[k]), 8) for k in np.flatnonzero(np.isfinite(implied))}

    def worst_factor(self, s: int, p: int) -> str | None:
        """The shocked factor with the most negative linear contribution (correlated when computed)."""
        impacts = self.c.correlated.impacts if self.c.correlated is not None else self.c.direct
        if not impacts.computed[s]:
            impacts = self.c.direct
        shocked = self.c.scenarios.shocked[s]
        values = np.where(shocked, impacts.factor_pnl[s, p], np.inf)
        if not np.isfinite(values).any():
            return None
        k = int(np.argmin(values))
        return MODEL_FACTORS[k] if values[k] < 0 else None

    def flags(self, s: int, p: int) -> list[str]:
        """Scenario flags of portfolio p: factor_unavailable, ill_conditioned_scenario, loss_exceeds_equity,
        correlation_unavailable."""
        out: list[str] = []
        equity = float(self.a.book.equity[p])
        invalid = self.meta.invalid[s] if s < len(self.meta.invalid) else None
        if invalid == "invalid_scenario":
            out.append(invalid)
        elif not self.c.direct.computed[s]:
            out.append("factor_unavailable")
        if self.c.correlated is None:
            out.append("correlation_unavailable")
        elif self.c.correlated.conditional.ill_conditioned[s]:
            out.append("ill_conditioned_scenario")
        totals = [float(self.c.direct.total[s, p])]
        if self.c.correlated is not None:
            totals.append(float(self.c.correlated.impacts.total[s, p]))
        if any(loss_exceeds_equity(t, equity) for t in totals):
            out.append("loss_exceeds_equity")
        return out

    # -- stored rows -----------------------------------------------------------------------

    def result_sets(self, run_ids: Sequence[UUID | None], as_of: date) -> list[dict[str, Any]]:
        """The stored results: one stress.stress_result_set row per run (the view `stress.stress_result`
        returns one row per run and scenario), built column-wise (`stress.result_documents`)."""
        documents = ResultDocuments(self, run_ids)
        return documents.sets(self.meta.ids, self.a.portfolio_ids, as_of)

    def correlated_or_direct(self, p: int) -> tuple[np.ndarray, str]:
        """The per-scenario P&L the summary is over: correlated when computed, else direct."""
        if self.c.correlated is not None:
            return self.c.correlated.impacts.total[:, p], "correlated_pnl"
        return self.c.direct.total[:, p], "direct_pnl"

    def summaries(self) -> list[dict[str, Any]]:
        """`summary(p)` of every portfolio: the all-finite ones column-wise (`summary_blocks`)."""
        corr, direct = self.c.correlated, self.c.direct
        values, basis = (corr.impacts.total, "correlated_pnl") if corr is not None else (direct.total, "direct_pnl")
        blocks = summary_blocks(
            values,
            corr.impacts.total - direct.total if corr is not None else None,
            keys=[k or "" for k in self.meta.keys],
            categories=self.meta.categories,
            basis=basis,
        )
        not_computed = [self.meta.keys[s] for s in range(len(self.c.scenarios)) if not direct.computed[s]]
        return [
            self.summary(p)
            if block is None
            else block
            | {"coverage": self.a.coverage[p], "flags": self.a.flags[p], "scenarios_not_computed": list(not_computed)}
            for p, block in enumerate(blocks)
        ]

    def summary(self, p: int) -> dict[str, Any]:
        """stress_run.summary of portfolio p (calculations.md §6.6)."""
        values, basis = self.correlated_or_direct(p)
        effect = (
            self.c.correlated.impacts.total[:, p] - self.c.direct.total[:, p]
            if self.c.correlated is not None
            else np.full(len(self.c.scenarios), np.nan)
        )
        return summary_block(
            values=[float(v) for v in values],
            keys=[k or "" for k in self.meta.keys],
            categories=self.meta.categories,
            effects=[float(v) for v in effect],
            basis=basis,
        ) | {
            "coverage": self.a.coverage[p],
            "flags": self.a.flags[p],
            "scenarios_not_computed": [
                self.meta.keys[s] for s in range(len(self.c.scenarios)) if not self.c.direct.computed[s]
            ],
        }

    # -- #37 / #38 bodies ----------------------------------------------------------------------

    def impact_body(
        self, *, s: int, p: int, calculation_date: date, exposure_date: date, scenario: dict[str, Any], matrix: Any
    ) -> dict[str, Any]:
        """The #37 body (and, when a correlated computation exists, the #38 body) of scenario s, portfolio p."""
        direct, corr = self.c.direct, self.c.correlated
        equity = float(self.a.book.equity[p])
        d_total, d_lin = float(direct.total[s, p]), float(direct.linear[s, p])
        flags = [f for f in self.flags(s, p) if corr is not None or f != "correlation_unavailable"]
        body: dict[str, Any] = {
            "portfolio_id": str(self.a.portfolio_ids[p]),
            "calculation_date": calculation_date.isoformat(),
            "factor_exposures_date": exposure_date.isoformat(),
            "scenario": scenario,
            "equity": money(equity),
            "direct_pnl": money(d_total),
            "direct_pnl_pct": pct(d_total, equity),
            "linear_pnl": money(d_lin),
            "nonlinear_adjustment": money(d_total - d_lin),
            "factor_impacts": self.factor_block(direct, s, p, with_move=False),
            "top_position_impacts": self.positions_block(direct, self._top_direct[s], s, p),
            "floored_positions": int(direct.floored[s, p]),
            "flags": flags + self.a.flags[p],
            "coverage": self.a.coverage[p],
            "method": "direct",
        }
        if corr is None or self._top_corr is None:
            return body
        c_total, c_lin = float(corr.impacts.total[s, p]), float(corr.impacts.linear[s, p])
        body.update(
            {
                "top_position_impacts": self.positions_block(corr.impacts, self._top_corr[s], s, p, direct),
                "implied_factor_moves": self.implied_moves(s) or {},
                "correlated_pnl": money(c_total),
                "correlated_pnl_pct": pct(c_total, equity),
                "correlated_linear_pnl": money(c_lin),
                "correlated_nonlinear_adjustment": money(c_total - c_lin),
                "correlation_effect": money(c_total - d_total),
                "correlated_factor_impacts": self.factor_block(corr.impacts, s, p, with_move=True),
                "correlated_floored_positions": int(corr.impacts.floored[s, p]),
                "matrix": {
                    "matrix_id": str(matrix.id),
                    "calculation_date": matrix.calculation_date.isoformat(),
                    "window": matrix.window(),
                },
                "method": "correlated",
            }
        )
        return body


def summary_block(
    *, values: list[float], keys: list[str], categories: list[str], effects: list[float], basis: str = "correlated_pnl"
) -> dict[str, Any]:
    """Worst / best / mean / median P&L, sign counts, mean correlation effect and the category breakdown."""
    array = np.array(values, dtype=np.float64)
    summary = summarise(array)
    finite_effects = [e for e in effects if _finite(e)]
    breakdown: dict[str, dict[str, Any]] = {}
    for category in dict.fromkeys(categories):
        mine = np.array([c == category for c in categories])
        sub = summarise(array[mine])
        breakdown[category] = {
            "count": int(mine.sum()),
            "worst_pnl": money(float(array[mine][sub.worst])) if sub.worst is not None else None,
            "mean_pnl": money(sub.mean) if sub.mean is not None else None,
        }
    return {
        "basis": basis,
        "worst_case_pnl": money(float(array[summary.worst])) if summary.worst is not None else None,
        "worst_scenario": keys[summary.worst] if summary.worst is not None else None,
        "best_case_pnl": money(float(array[summary.best])) if summary.best is not None else None,
        "best_scenario": keys[summary.best] if summary.best is not None else None,
        "mean_pnl": money(summary.mean) if summary.mean is not None else None,
        "median_pnl": money(summary.median) if summary.median is not None else None,
        "scenarios_negative": summary.negative,
        "scenarios_positive": summary.positive,
        "mean_correlation_effect": money(float(np.mean(finite_effects))) if finite_effects else None,
        "category_breakdown": breakdown,
    }


def market_risk_rows(
    assembled: AssembledBook, result: MarketRisk, as_of: date, run_id: UUID | None
) -> list[dict[str, Any]]:
    """stress.market_risk_result rows of every portfolio, p-major (rate rows NULL with `rate_data_missing`).

    Built column-wise: money as the exact `money()` strings (`money_strings`, stored by numeric_in as
    the very cents `round_money` gave), percentages and loss flags element-wise with the per-value
    rules (`pct`, `loss_exceeds_equity`)."""
    impacts = result.impacts
    n_s, n_p = len(result.scenarios.keys), len(assembled.portfolio_ids)
    # (s, P) arrays flattened p-major: row r is portfolio r // n_s, scenario r % n_s.
    total, linear = impacts.total.T.ravel(), impacts.linear.T.ravel()
    equity = np.repeat(np.asarray(assembled.book.equity, dtype=np.float64), n_s)
    # The four amounts of every row formatted in one pass (one block of rows per amount).
    texts = money_strings(np.stack([total, linear, total - linear, result.exposure.T.ravel()]))
    predicted, linear_s, nonlinear, exposure = (texts[i * len(total) : (i + 1) * len(total)] for i in range(4))
    pcts = pct_values(total, equity)
    loss = loss_exceeds_values(total, equity).tolist()
    shocks = [float(result.scenarios.shocks[s][result.scenarios.shocked[s]][0]) for s in range(n_s)]
    missing = [
        []
        if impacts.computed[s]
        else ["rate_data_missing" if result.kinds[s] == "interest_rate" else "factor_unavailable"]
        for s in range(n_s)
    ]
    kept = ("default_betas", "options_linear_only", "positions_excluded")
    base = [[f for f in assembled.flags[p] if f in kept] for p in range(n_p)]
    # Per row (p-major): the portfolio's and the scenario's values repeated, so one zip builds the rows.
    flags = [
        [*b, *m, "loss_exceeds_equity"] if lost else [*b, *m]
        for b, m, lost in zip([b for b in base for _ in range(n_s)], missing * n_p, loss, strict=True)
    ]
    pids = [pid for pid in assembled.portfolio_ids for _ in range(n_s)]
    keys, kinds = list(result.scenarios.keys) * n_p, list(result.kinds) * n_p
    return [
        {
            "portfolio_id": pid,
            "calculation_date": as_of,
            "scenario_key": key,
            "kind": kind,
            "shock": shock,
            "predicted_pnl": p_pnl,
            "linear_pnl": l_pnl,
            "nonlinear_adjustment": nonlinear_pnl,
            "predicted_pnl_pct": pnl_pct,
            "exposure_dollar": exposure_dollar,
            "flags": row_flags,
            "run_id": run_id,
        }
        for pid, key, kind, shock, p_pnl, l_pnl, nonlinear_pnl, pnl_pct, exposure_dollar, row_flags in zip(
            pids, keys, kinds, shocks * n_p, predicted, linear_s, nonlinear, pcts, exposure, flags, strict=True
        )
    ]


def decimal_or_none(value: float) -> Decimal | None:
    """Cents Decimal of a float (None when not finite)."""
    return round_money(value) if _finite(value) else None


def severity_rank(severity: str | None) -> int:
    """mild < moderate < severe < extreme (unknown last)."""
    return SEVERITY_ORDER.get(severity or "", len(SEVERITY_ORDER))
