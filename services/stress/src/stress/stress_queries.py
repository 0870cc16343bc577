"""On-demand stress testing for the API: the catalogue (#36), direct and correlated impact (#37, #38)
and stored results (#40). Async orchestration only: reads through stress_repository, compute through
compute.scenarios (off the event loop), bodies through scenarios_present.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Principal
from common.auth import resolve_portfolio as resolve_owned
from common.errors import NotCalculated, NotFound, ValidationFailed
from common.formatting import iso_date, iso_datetime, money, stat
from stress import stress_repository as repo
from stress.catalogue import active_factor_codes, validate_shocks
from stress.compute.scenarios import MODEL_FACTORS, ScenarioSet, computable, correlated_impact, direct_impact
from stress.scenarios_inputs import ScenarioMeta
from stress.scenarios_present import ScenarioPresenter, StressComputation, severity_rank, summary_block
from stress.scenarios_schemas import CustomScenario
from stress.stress_service import LoadedBooks, load_books

FACTORS_HINT = "POST /api/v1/factors/calculate"
STRESS_HINT = "POST /api/v1/risk/stress-testing/comprehensive"
RESULT_SORTS = ("correlated_pnl", "direct_pnl", "severity", "name")


async def resolve_portfolio(
    session: AsyncSession, principal: Principal, portfolio_id: UUID | None
) -> repo.PortfolioRow:
    """The requested portfolio (the caller's, or any for admins) or the caller's default; else 404."""

    async def by_id(pid: UUID) -> repo.PortfolioRow | None:
        return (await repo.portfolios(session, [pid])).get(pid)

    return await resolve_owned(
        principal, portfolio_id, by_id=by_id, default_of=lambda uid: repo.default_portfolio(session, uid)
    )


# -- #36 -------------------------------------------------------------------------------------


def scenario_item(row: dict[str, Any]) -> dict[str, Any]:
    """A catalogue row as the #36 item."""
    start, end = row.get("historical_start_date"), row.get("historical_end_date")
    return {
        "scenario_id": row["scenario_key"],
        "name": row["name"],
        "description": row.get("description"),
        "category": row["category"],
        "severity": row["severity"],
        "shocks": {k: float(v) for k, v in row["shocks"].items()},
        "option_iv_shift": float(row.get("option_iv_shift") or 0.0),
        "historical_period": ({"start_date": iso_date(start), "end_date": iso_date(end)} if start or end else None),
        "active": bool(row["is_active"]),
        "display_order": row.get("display_order"),
    }


def sort_scenarios(rows: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Order catalogue rows by display_order / severity / name (stable; scenario key as tiebreaker)."""

    def key_of(field: str, row: dict[str, Any]) -> Any:
        if field == "severity":
            return severity_rank(row["severity"])
        if field == "name":
            return row["name"].lower()
        order = row.get("display_order")
        return order if order is not None else 1 << 15

    out = sorted(rows, key=lambda r: r["scenario_key"])
    for field, descending in reversed(sort):
        out.sort(key=lambda r, f=field: key_of(f, r), reverse=descending)  # type: ignore[misc]
    return out


# -- #37 / #38 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedScenario:
    """One scenario to evaluate: catalogue row or custom body."""

    meta: ScenarioMeta
    ref: dict[str, Any]


async def resolve_scenario(
    session: AsyncSession, scenario_id: str | None, custom: CustomScenario | None
) -> ResolvedScenario:
    """The catalogue scenario (404 SCENARIO_NOT_FOUND) or a validated custom one (422 UNKNOWN_FACTOR /
    VALIDATION_ERROR)."""
    if scenario_id is not None:
        rows = await repo.scenarios(session, keys=[scenario_id])
        if not rows:
            raise NotFound("SCENARIO", hint="GET /api/v1/risk/stress-testing/scenarios")
        row = rows[0]
        shocks = {k: float(v) for k, v in row["shocks"].items()}
        meta = ScenarioMeta(
            ids=[row["id"]],
            keys=[row["scenario_key"]],
            names=[row["name"]],
            categories=[row["category"]],
            severities=[row["severity"]],
            shocks=[shocks],
            iv_shift=[float(row["option_iv_shift"] or 0.0)],
            invalid=[None],
        )
        ref = {
            "scenario_id": row["scenario_key"],
            "name": row["name"],
            "category": row["category"],
            "severity": row["severity"],
            "shocks": shocks,
            "option_iv_shift": float(row["option_iv_shift"] or 0.0),
        }
        return ResolvedScenario(meta, ref)
    assert custom is not None
    codes = await active_factor_codes(session)
    issues = validate_shocks(custom.shocks, codes, custom.option_iv_shift)
    if issues:
        unknown = [i for i in issues if i.code == "UNKNOWN_FACTOR"]
        chosen = unknown or issues
        raise ValidationFailed(
            "Unknown factor in scenario shocks" if unknown else "Scenario shocks failed validation",
            code="UNKNOWN_FACTOR" if unknown else "VALIDATION_ERROR",
            details=[
                {
                    "field": "body.scenario.option_iv_shift"
                    if i.factor == "option_iv_shift"
                    else f"body.scenario.shocks.{i.factor}".rstrip("."),
                    "issue": i.issue,
                    "value": i.value,
                }
                for i in chosen
            ],
        )
    meta = ScenarioMeta(
        ids=[None],
        keys=[None],
        names=[custom.name],
        categories=["custom"],
        severities=[None],
        shocks=[dict(custom.shocks)],
        iv_shift=[custom.option_iv_shift],
        invalid=[None],
    )
    ref = {
        "scenario_id": None,
        "name": custom.name,
        "category": "custom",
        "severity": None,
        "shocks": dict(custom.shocks),
        "option_iv_shift": custom.option_iv_shift,
    }
    return ResolvedScenario(meta, ref)


async def _matrix(session: AsyncSession, matrix_id: UUID | None, exposure_date: date) -> repo.ModelMatrix:
    if matrix_id is not None:
        found = await repo.matrix_by_id(session, matrix_id)
        if found is None:
            raise NotCalculated(
                "No factor matrix with this id", hint="POST /api/v1/risk/correlations/factors/calculate"
            )
        if found.basis != "model":
            raise ValidationFailed.field(
                "body.matrix_id", "must be a model-basis matrix (#34 basis=model)", str(matrix_id)
            )
        return found
    matrix = await repo.latest_model_matrix(session, exposure_date)
    if matrix is None:
        raise NotCalculated("No factor covariance is stored for the exposure date", hint=FACTORS_HINT)
    return matrix


async def impact(
    session: AsyncSession,
    portfolio: repo.PortfolioRow,
    scenario: ResolvedScenario,
    as_of_date: date | None,
    *,
    correlated: bool,
    matrix_id: UUID | None = None,
) -> tuple[dict[str, Any], date]:
    """#37 (direct) or #38 (correlated) for one portfolio and scenario; returns (body, calculation date)."""
    dates = await repo.exposure_dates(session, [portfolio.id], as_of_date)
    exposure_date = dates.get(portfolio.id)
    if exposure_date is None:
        raise NotCalculated("No factor exposures are stored for this portfolio", hint=FACTORS_HINT)
    matrix = await _matrix(session, matrix_id, exposure_date)
    loaded = await load_books(session, [portfolio.id], [portfolio.cash_balance], exposure_date, matrix=matrix)
    meta = scenario.meta
    scenarios = ScenarioSet.build(["scenario"], meta.shocks, MODEL_FACTORS, meta.iv_shift)
    ok = computable(scenarios, loaded.assembled.available)
    if not ok[0]:
        missing = [MODEL_FACTORS[k] for k in np.flatnonzero(scenarios.shocked[0] & ~loaded.assembled.available)]
        raise ValidationFailed(
            "A shocked factor has no data in the factor model window",
            code="FACTOR_UNAVAILABLE",
            details=[
                {"field": f"shocks.{code}", "issue": "factor has no data in the window", "value": code}
                for code in missing
            ],
        )
    computation = await asyncio.to_thread(_compute, loaded, scenarios, correlated)
    presenter = ScenarioPresenter(loaded.assembled, meta, computation)
    body = presenter.impact_body(
        s=0,
        p=0,
        calculation_date=exposure_date,
        exposure_date=exposure_date,
        scenario=scenario.ref,
        matrix=loaded.matrix,
    )
    return body, exposure_date


def _compute(loaded: LoadedBooks, scenarios: ScenarioSet, correlated: bool) -> StressComputation:
    book, available = loaded.assembled.book, loaded.assembled.available
    direct = direct_impact(book, scenarios, available)
    if not correlated:
        return StressComputation(scenarios, direct, None)
    covariance = np.where(np.isfinite(loaded.matrix.covariance), loaded.matrix.covariance, 0.0)
    return StressComputation(scenarios, direct, correlated_impact(book, scenarios, covariance, available))


async def check_calculable(session: AsyncSession, portfolio: repo.PortfolioRow, as_of_date: date | None) -> date:
    """The exposure date a comprehensive run would use (404 NOT_CALCULATED when there is none)."""
    exposure_date = (await repo.exposure_dates(session, [portfolio.id], as_of_date)).get(portfolio.id)
    if exposure_date is None:
        raise NotCalculated("No factor exposures are stored for this portfolio", hint=FACTORS_HINT)
    if await repo.latest_model_matrix(session, exposure_date) is None:
        raise NotCalculated("No factor covariance is stored for the exposure date", hint=FACTORS_HINT)
    return exposure_date


# -- #40 -------------------------------------------------------------------------------------


def _m(value: Any) -> str | None:
    return None if value is None else money(value)


def _diff(total: Any, linear: Any) -> str | None:
    return None if total is None or linear is None else money(total - linear)


def result_item(row: dict[str, Any]) -> dict[str, Any]:
    """A stored stress_result as a #40 item (linear and nonlinear parts next to the revalued P&L)."""
    top = row.get("top_positions") or {}
    return {
        "scenario_id": row["scenario_key"],
        "name": row["name"],
        "category": row["category"],
        "severity": row["severity"],
        "shocks": {k: float(v) for k, v in row["shocks"].items()},
        "option_iv_shift": float(row.get("option_iv_shift") or 0.0),
        "direct_pnl": _m(row["direct_pnl"]),
        "direct_pnl_pct": stat(row["direct_pnl_pct"]),
        "linear_pnl": _m(row["direct_linear_pnl"]),
        "nonlinear_adjustment": _diff(row["direct_pnl"], row["direct_linear_pnl"]),
        "correlated_pnl": _m(row["correlated_pnl"]),
        "correlated_pnl_pct": stat(row["correlated_pnl_pct"]),
        "correlated_linear_pnl": _m(row["correlated_linear_pnl"]),
        "correlated_nonlinear_adjustment": _diff(row["correlated_pnl"], row["correlated_linear_pnl"]),
        "correlation_effect": _m(row["correlation_effect"]),
        "worst_factor": row["worst_factor"],
        "implied_factor_moves": row.get("implied_factor_moves"),
        "factor_impacts": row.get("direct_factor_impacts") or [],
        "correlated_factor_impacts": row.get("correlated_factor_impacts"),
        "top_position_impacts": top.get("correlated", top.get("direct", [])),
        "floored_positions": row.get("floored_positions"),
        "correlated_floored_positions": row.get("correlated_floored_positions"),
        "flags": list(row.get("flags") or []),
    }


def sort_results(rows: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Order result rows (P&L ascending = worst first; missing P&L last whatever the direction)."""
    out = sorted(rows, key=lambda r: (r.get("display_order") or 1 << 15, r["scenario_key"]))
    for field, descending in reversed(sort):
        if field in ("correlated_pnl", "direct_pnl"):
            present = [r for r in out if r[field] is not None]
            absent = [r for r in out if r[field] is None]
            present.sort(key=lambda r, f=field: r[f], reverse=descending)  # type: ignore[misc]
            out = present + absent
        elif field == "severity":
            out.sort(key=lambda r: severity_rank(r["severity"]), reverse=descending)
        else:
            out.sort(key=lambda r: r["name"].lower(), reverse=descending)
    return out


async def results(
    session: AsyncSession,
    portfolio: repo.PortfolioRow,
    stress_run_id: UUID | None,
    categories: list[str],
    sort: list[tuple[str, bool]],
) -> tuple[dict[str, Any], date]:
    """#40: a stored run's results, filtered and sorted, with the summary over correlated P&L."""
    run = await repo.stress_run_row(session, portfolio.id, stress_run_id)
    if run is None:
        if stress_run_id is not None:
            raise NotCalculated("No stress run with this id for the portfolio", hint=STRESS_HINT)
        raise NotCalculated("No stress results are stored for this portfolio", hint=STRESS_HINT)
    rows = await repo.stress_results(session, run["id"])
    if categories:
        rows = [r for r in rows if r["category"] in categories]
    ordered = sort_results(rows, sort)
    basis = "correlated_pnl" if any(r["correlated_pnl"] is not None for r in rows) else "direct_pnl"
    values = [float(r[basis]) if r[basis] is not None else float("nan") for r in ordered]
    effects = [float(r["correlation_effect"]) if r["correlation_effect"] is not None else float("nan") for r in ordered]
    summary = summary_block(
        values=values,
        keys=[r["scenario_key"] for r in ordered],
        categories=[r["category"] for r in ordered],
        effects=effects,
        basis=basis,
    )
    breakdown = summary.pop("category_breakdown")
    stored = run.get("summary") or {}
    body = {
        "portfolio_id": str(portfolio.id),
        "run": {
            "stress_run_id": str(run["id"]),
            "calculation_date": iso_date(run["calculation_date"]),
            "trigger": run["trigger"],
            "scenarios": run["scenarios_run"],
            "matrix_id": str(run["matrix_id"]) if run["matrix_id"] else None,
            "factor_exposure_date": iso_date(run["factor_exposure_date"]),
            "equity": _m(run["equity"]),
            "partial": bool(run["partial"]),
            "partial_reasons": stored.get("partial_reasons", []),
            "created_at": iso_datetime(run["created_at"]),
        },
        "summary": summary,
        "results": [result_item(r) for r in ordered],
        "category_breakdown": breakdown,
        "coverage": stored.get("coverage"),
        "flags": stored.get("flags", []),
    }
    return body, run["calculation_date"]


def result_url(portfolio_id: UUID, stress_run_id: UUID) -> str:
    """#40 URL of one run."""
    return f"/api/v1/risk/stress-testing/results/{portfolio_id}?stress_run_id={stress_run_id}"
