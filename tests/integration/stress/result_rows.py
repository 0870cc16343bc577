"""Per-scenario result rows for the stress tests: what the view `stress.stress_result` returns,
built from a presenter, and a way to store such rows (the daily step stores one
`stress_result_set` row per run instead; these let the tests compare both shapes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from stress import bulk_upsert
from stress import stress_repository as repo
from stress.bulk_upsert import RawJson
from stress.json_text import RowTexts, dumps
from stress.models_scenarios import stress_result_set
from stress.result_documents import COLUMNS, DOCUMENT_COLUMNS, JSON_COLUMNS, ResultDocuments, stored_sets
from stress.scenarios_present import ScenarioPresenter

_KEYS = frozenset({"stress_run_id", "scenario_id", "portfolio_id", "calculation_date"})
_MONEY = frozenset({"direct_pnl", "direct_linear_pnl", "correlated_pnl", "correlated_linear_pnl", "correlation_effect"})


def row_flags(documents: ResultDocuments) -> list[list[str]]:
    """`ScenarioPresenter.flags` of every row: per-scenario flags, then loss_exceeds_equity."""
    per_scenario = documents._scenario_flags()
    return [
        [*per_scenario[s], "loss_exceeds_equity"] if lost else list(per_scenario[s])
        for s, lost in zip(documents.s_of.tolist(), documents._loss_exceeds().tolist(), strict=True)
    ]


def row_columns(documents: ResultDocuments) -> dict[str, list[Any]]:
    """Every stored column but the keys, one value per row (p-major), as the view returns it:
    documents as `RawJson` (the bulk upsert sends them unchanged), flags as lists."""
    texts = {
        name: [None if t is None else RawJson(t) for t in column.per_row()]
        for name, column in documents._documents().items()
    }
    values = documents._scalars() | texts | {"flags": row_flags(documents)}
    return {name: values[name] for name in COLUMNS}


def _json_arrays(values: list[Any], n_runs: int) -> list[RawJson]:
    """The JSON array of each run's values (consecutive, as many per run): JSON texts, None (`null`,
    as the per-row table stored SQL None) or flag lists (their orjson text, as `orjson.dumps` of the
    whole run's list nests it)."""
    templates = [None if v is None else "%s" for v in values]
    texts = [v if isinstance(v, str) else dumps(v) for v in values if v is not None]
    return [RawJson(t) for t in RowTexts(templates, texts).per_run(n_runs)]


def result_sets(
    columns: dict[str, list[Any]],
    run_ids: Sequence[UUID | None],
    portfolio_ids: Sequence[UUID],
    scenario_ids: Sequence[UUID],
    as_of: date,
) -> list[dict[str, Any]]:
    """`stress_result_set` rows from per-row columns (run-major, `len(scenario_ids)` rows per run):
    a JSON column (the documents and flags) becomes one JSON array of each run's values."""
    n_runs = len(run_ids)
    runs = {name: _json_arrays(values, n_runs) if name in JSON_COLUMNS else values for name, values in columns.items()}
    return stored_sets(runs, run_ids, portfolio_ids, scenario_ids, as_of)


def view_rows(presenter: ScenarioPresenter, run_ids: Sequence[UUID | None], as_of: date) -> list[dict[str, Any]]:
    """One dict per (portfolio with a run id, scenario), the columns the view returns, from the
    same column-wise build the daily step stores."""
    documents = ResultDocuments(presenter, run_ids)
    columns = row_columns(documents)
    run_of = np.repeat(np.arange(len(documents.ports)), documents.n_scen).tolist()
    names = list(columns)
    scenario_ids, portfolio_ids = presenter.meta.ids, presenter.a.portfolio_ids
    return [
        {
            "stress_run_id": documents.run_ids[r],
            "scenario_id": scenario_ids[s],
            "portfolio_id": portfolio_ids[p],
            "calculation_date": as_of,
            **dict(zip(names, values, strict=True)),
        }
        for r, s, p, *values in zip(
            run_of, documents.s_of.tolist(), documents.p_of.tolist(), *columns.values(), strict=True
        )
    ]


def sets_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`stress_result_set` rows from per-scenario rows (money as Decimal or text, documents as
    Python values or JSON text), in the order of the rows."""
    by_run: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(row["stress_run_id"], []).append(row)
    sets = []
    for rid, mine in by_run.items():
        columns = {c: [r[c] for r in mine] for c in mine[0] if c not in _KEYS}
        for c in _MONEY & columns.keys():
            columns[c] = [None if v is None else str(v) for v in columns[c]]
        for c in DOCUMENT_COLUMNS & columns.keys():
            columns[c] = [None if v is None else bulk_upsert.json_text(v) for v in columns[c]]
        first = mine[0]
        scenario_ids = [r["scenario_id"] for r in mine]
        sets.extend(result_sets(columns, [rid], [first["portfolio_id"]], scenario_ids, first["calculation_date"]))
    return sets


async def store_rows(session: AsyncSession, run_ids: Sequence[UUID], rows: list[dict[str, Any]]) -> None:
    """Make `rows` (one per run and scenario) the results of `run_ids`; a run without rows keeps none."""
    if not run_ids:
        return
    await repo.replace_result_sets(session, sets_from_rows(rows))
    empty = sorted(set(run_ids) - {r["stress_run_id"] for r in rows})
    if empty:
        await session.execute(sa.delete(stress_result_set).where(stress_result_set.c.stress_run_id.in_(empty)))
