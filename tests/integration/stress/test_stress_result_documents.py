"""The column-wise stress-result builder stores exactly what the per-row builder it replaced stored.

`reference_rows` is that per-row builder (dicts of the presenter's blocks, money as Decimal, the
bulk upsert serialising the documents with orjson). The column-wise rows must carry the very same
JSON text for every document and the same value in every other column — for the Example 7 books,
a portfolio without positions, an option-only one, a portfolio without a run id (no rows), and a
computation without a correlated part — and the database must store identical rows from either,
and from the per-run sets the daily step writes (read back through the view stress.stress_result).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from tests.integration.stress.result_rows import store_rows, view_rows
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios, run  # noqa: F401  (fixture)

from common.formatting import round_money
from stress import stress_repository as repo
from stress import stress_service as svc
from stress.compute.market_risk import market_risk
from stress.scenarios_present import ScenarioPresenter, loss_exceeds_equity, market_risk_rows, pct

pytestmark = pytest.mark.integration

DOCUMENTS = ("implied_factor_moves", "direct_factor_impacts", "correlated_factor_impacts", "top_positions")


def reference_rows(pr: ScenarioPresenter, run_ids: list[uuid.UUID | None]) -> list[dict[str, Any]]:
    """The per-row builder the column-wise one replaced."""
    rows = []
    direct, corr = pr.c.direct, pr.c.correlated
    for p, run_id in enumerate(run_ids):
        if run_id is None:
            continue
        equity = float(pr.a.book.equity[p])
        for s in range(len(pr.c.scenarios)):
            d_total, d_lin = float(direct.total[s, p]), float(direct.linear[s, p])
            c_total = float(corr.impacts.total[s, p]) if corr is not None else math.nan
            c_lin = float(corr.impacts.linear[s, p]) if corr is not None else math.nan
            top: dict[str, Any] = (
                {"correlated": pr.positions_block(corr.impacts, pr._top_corr[s], s, p, direct)}
                if corr is not None and pr._top_corr is not None
                else {"direct": pr.positions_block(direct, pr._top_direct[s], s, p)}
            )
            rows.append(
                {
                    "stress_run_id": run_id,
                    "scenario_id": pr.meta.ids[s],
                    "portfolio_id": pr.a.portfolio_ids[p],
                    "calculation_date": AS_OF,
                    "direct_pnl": round_money(d_total),
                    "direct_linear_pnl": round_money(d_lin),
                    "correlated_pnl": round_money(c_total),
                    "correlated_linear_pnl": round_money(c_lin),
                    "correlation_effect": round_money(c_total - d_total),
                    "direct_pnl_pct": pct(d_total, equity),
                    "correlated_pnl_pct": pct(c_total, equity),
                    "worst_factor": pr.worst_factor(s, p) if direct.computed[s] else None,
                    "implied_factor_moves": pr.implied_moves(s),
                    "direct_factor_impacts": pr.factor_block(direct, s, p, with_move=False),
                    "correlated_factor_impacts": (
                        pr.factor_block(corr.impacts, s, p, with_move=True) if corr is not None else None
                    ),
                    "top_positions": top,
                    "floored_positions": int(direct.floored[s, p]),
                    "correlated_floored_positions": int(corr.impacts.floored[s, p]) if corr is not None else None,
                    "flags": pr.flags(s, p),
                }
            )
    return rows


async def presenters(stress_db, ids: list[uuid.UUID]) -> list[ScenarioPresenter]:
    """The batch's presenter, and the same computation without its correlated part."""
    async with stress_db.transaction() as s:
        live = await repo.portfolios(s, ids)
        loaded = await svc.load_books(s, ids, [live[p].cash_balance for p in ids], AS_OF)
        scenarios, meta = svc.scenario_set(await repo.scenarios(s, active_only=True), loaded.active_codes)
    computation = svc.compute_stress(loaded, scenarios)
    assert computation.correlated is not None
    return [
        ScenarioPresenter(loaded.assembled, meta, computation),
        ScenarioPresenter(loaded.assembled, meta, replace(computation, correlated=None)),
    ]


async def run_presenter(harness, stress_db, ids: list[uuid.UUID]) -> tuple[ScenarioPresenter, list[uuid.UUID]]:
    """Run the stress step for `ids`; the first presenter and the stored stress run of each of its portfolios."""
    await run(harness, stress_db, ids, uuid.uuid4())
    async with stress_db.transaction() as s:
        found = (
            await s.execute(
                sa.text("SELECT portfolio_id, id FROM stress.stress_run WHERE portfolio_id = ANY(:ids)"), {"ids": ids}
            )
        ).all()
    run_of = {r.portfolio_id: r.id for r in found}
    pr = (await presenters(stress_db, ids))[0]
    return pr, [run_of[p] for p in pr.a.portfolio_ids]


def assert_same_rows(reference: list[dict[str, Any]], columnar: list[dict[str, Any]]) -> None:
    assert len(columnar) == len(reference)
    for old, new in zip(reference, columnar, strict=True):
        assert list(new) == list(old)
        for key, value in old.items():
            if key in DOCUMENTS:  # the very JSON text orjson gave for the dicts
                assert new[key] == (None if value is None else orjson.dumps(value).decode()), key
            elif isinstance(value, Decimal):  # money: the same cents, as text for numeric_in
                assert isinstance(new[key], str) and Decimal(new[key]) == value, key
            else:
                assert type(new[key]) is type(value) and new[key] == value, key


async def test_columnar_rows_are_the_per_row_rows(stress_db, portfolios) -> None:  # noqa: F811
    ids = sorted(portfolios[:4])  # two Example 7 books, one without positions, one option-only
    run_ids: list[uuid.UUID | None] = [uuid.uuid4(), None, uuid.uuid4(), uuid.uuid4()]
    for pr in await presenters(stress_db, ids):
        reference = reference_rows(pr, run_ids)
        columnar = view_rows(pr, run_ids, AS_OF)
        assert_same_rows(reference, columnar)
        assert len(columnar) == 3 * len(pr.c.scenarios)
        assert any(r["top_positions"] not in ('{"direct":[]}', '{"correlated":[]}') for r in columnar)  # not all empty
        assert any("loss_exceeds_equity" in r["flags"] or r["worst_factor"] for r in columnar)
        assert pr.summaries() == [pr.summary(p) for p in range(len(ids))]  # the column-wise summaries


async def test_the_database_stores_the_same_rows_from_either_builder(
    harness,
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    ids = sorted(portfolios[:4])
    pr, stored = await run_presenter(harness, stress_db, ids)  # stress runs to hang the results on
    run_ids: list[uuid.UUID | None] = list(stored)

    async def store(rows: list[dict[str, Any]] | None = None) -> list[str]:
        async with stress_db.transaction() as s:
            if rows is None:  # the daily step's path: one stress_result_set row per run
                await repo.replace_result_sets(s, pr.result_sets(run_ids, AS_OF))
            else:
                await store_rows(s, [r for r in run_ids if r is not None], rows)
            # Every column but created_at (each write refreshes it); to_jsonb compares the json
            # documents by value.
            text = sa.text(
                "SELECT (to_jsonb(r) - 'created_at')::text FROM stress.stress_result r WHERE portfolio_id = ANY(:ids)"
                " ORDER BY stress_run_id, scenario_id"
            )
            return list((await s.execute(text, {"ids": ids})).scalars())

    reference = await store(reference_rows(pr, run_ids))
    assert len(reference) == 4 * len(pr.c.scenarios)
    assert await store(view_rows(pr, run_ids, AS_OF)) == reference
    assert await store() == reference


def reference_market_rows(assembled: Any, result: Any, run_id: uuid.UUID | None) -> list[dict[str, Any]]:
    """The per-row market_risk_result builder `market_risk_rows` replaced (money as Decimal)."""
    rows = []
    impacts = result.impacts
    for p, pid in enumerate(assembled.portfolio_ids):
        equity = float(assembled.book.equity[p])
        base_flags = [
            f for f in assembled.flags[p] if f in ("default_betas", "options_linear_only", "positions_excluded")
        ]
        for s, key in enumerate(result.scenarios.keys):
            total, linear = float(impacts.total[s, p]), float(impacts.linear[s, p])
            flags = list(base_flags)
            if not impacts.computed[s]:
                flags.append("rate_data_missing" if result.kinds[s] == "interest_rate" else "factor_unavailable")
            if loss_exceeds_equity(total, equity):
                flags.append("loss_exceeds_equity")
            rows.append(
                {
                    "portfolio_id": pid,
                    "calculation_date": AS_OF,
                    "scenario_key": key,
                    "kind": result.kinds[s],
                    "shock": float(result.scenarios.shocks[s][result.scenarios.shocked[s]][0]),
                    "predicted_pnl": round_money(total),
                    "linear_pnl": round_money(linear),
                    "nonlinear_adjustment": round_money(total - linear),
                    "predicted_pnl_pct": pct(total, equity),
                    "exposure_dollar": round_money(float(result.exposure[s, p])),
                    "flags": flags,
                    "run_id": run_id,
                }
            )
    return rows


async def test_columnar_market_risk_rows_are_the_per_row_rows(stress_db, portfolios) -> None:  # noqa: F811
    ids = sorted(portfolios[:4])
    async with stress_db.transaction() as s:
        live = await repo.portfolios(s, ids)
        loaded = await svc.load_books(s, ids, [live[p].cash_balance for p in ids], AS_OF)
    result = market_risk(loaded.assembled.book, loaded.assembled.available)
    run_id = uuid.uuid4()
    reference = reference_market_rows(loaded.assembled, result, run_id)
    columnar = market_risk_rows(loaded.assembled, result, AS_OF, run_id)
    assert len(columnar) == len(reference) == 10 * len(ids)
    assert any(r["predicted_pnl"] is not None for r in reference)
    for old, new in zip(reference, columnar, strict=True):
        assert list(new) == list(old)
        for key, value in old.items():
            if isinstance(value, Decimal):  # money: the same cents, as text for numeric_in
                assert isinstance(new[key], str) and Decimal(new[key]) == value, key
            else:
                assert type(new[key]) is type(value) and new[key] == value, key
