"""Stress-testing routes (api.md #36–#40): catalogue, direct and correlated impact, comprehensive runs,
stored results. Thin: validation and envelopes here, work in stress_queries / stress_service."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_bool, parse_enum_multi, parse_sort
from common.auth import Principal, current_principal
from common.errors import NotFound
from common.jobs import JobFailed, JobOutcome, prefer_wait_seconds
from common.logging import request_id_var
from common.schemas import error_responses
from stress import stress_queries as q
from stress import stress_repository as repo
from stress.catalogue import CATEGORIES, SEVERITY_ORDER
from stress.context import StressContext
from stress.scenarios_schemas import (
    ComprehensiveRequest,
    CorrelatedImpactRequest,
    CorrelatedImpactResponse,
    ImpactRequest,
    ImpactResponse,
    JobAcceptedResponse,
    ResultsResponse,
    ScenarioListResponse,
)
from stress.stress_service import run_stress_tests

JOB_TYPE = "stress.comprehensive"

_METHOD = (
    "Position by position (calculations.md §6): each underlying's return is its betas × the factor moves, "
    "floored at −100 %; stocks lose or gain `dollar_exposure` × return, options are revalued in full with "
    "Black-Scholes at the shocked underlying price (σ + `option_iv_shift`). `linear_pnl` = Σ_k X_k · move_k "
    "(factor dollar exposure × move; the delta view) and `nonlinear_adjustment` = P&L − linear (option "
    "convexity and floors). No portfolio loss cap: a levered or short book may lose more than its equity and "
    "is flagged `loss_exceeds_equity`. Money is USD as 2-dp strings (negative = loss); `_pct` fields are "
    "fractions of equity (null when equity ≤ 0); shocks are fractions (`interest_rate` = change of the 10-year "
    "yield, 0.01 = +100 bp)."
)


def create_stress_router(ctx: StressContext) -> APIRouter:
    """Routes #36–#40 of the stress service."""
    router = APIRouter(tags=["stress testing"])
    db, plumbing = ctx.db, ctx.plumbing

    @router.get(
        "/api/v1/risk/stress-testing/scenarios",
        summary="Stress scenario catalogue (#36)",
        description=(
            "The 18 built-in scenarios (calculations.md §6.1) in 5 categories. Each has factor-code `shocks`: "
            "`market` = SPY total return, style codes = market-neutral style returns, `interest_rate` = change of "
            "the 10-year yield (0.0025 = +25 bp), all fractions; `option_iv_shift` (vol points as a fraction) is "
            "added to option σ in revaluation. Filters: `category`, `severity` (comma-separated, OR-ed), "
            "`active_only` (default true). Sort: `display_order` (default), `severity` (mild → extreme), `name`; "
            "prefix `-` for descending."
        ),
        response_model=ScenarioListResponse,
        responses=error_responses(401, 422),
    )
    async def list_scenarios(
        request: Request,
        category: str | None = Query(None, description="market, rates, rotation, volatility, historical"),
        severity: str | None = Query(None, description="mild, moderate, severe, extreme"),
        active_only: str | None = Query(None, description="true (default) | false"),
        sort: str | None = Query(None, description="display_order (default) | severity | name; `-` = descending"),
        limit: int = Query(50, description="1–500"),
        offset: int = Query(0, description="≥ 0"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        categories = parse_enum_multi(category, CATEGORIES, "category")
        severities = parse_enum_multi(severity, tuple(SEVERITY_ORDER), "severity")
        only_active = parse_bool(active_only, "active_only", True)
        order = parse_sort(sort, ("display_order", "severity", "name"), "display_order")
        async with db.session() as session:
            rows = await repo.scenarios(session, categories=categories or None, active_only=only_active)
        if severities:
            rows = [r for r in rows if r["severity"] in severities]
        ordered = q.sort_scenarios(rows, order)
        page = ordered[offset : offset + limit]
        return envelope(
            [q.scenario_item(r) for r in page], request=request, page=page_block(limit, offset, len(ordered))
        )

    async def _impact(request: Request, body: ImpactRequest, principal: Principal, correlated: bool) -> Response:
        matrix_id = body.matrix_id if isinstance(body, CorrelatedImpactRequest) else None
        async with db.session() as session:
            portfolio = await q.resolve_portfolio(session, principal, body.portfolio_id)
            scenario = await q.resolve_scenario(session, body.scenario_id, body.scenario)
            data, day = await q.impact(
                session, portfolio, scenario, body.as_of_date, correlated=correlated, matrix_id=matrix_id
            )
            source = await repo.data_source(session, day)
        return envelope(data, request=request, as_of=day.isoformat(), data_source=source)

    @router.post(
        "/api/v1/risk/stress-testing/direct-impact",
        summary="Direct impact of one scenario (#37)",
        description=(
            "P&L from the shocked factors alone (sync, not stored): unshocked factors stay at 0. Body: "
            "`portfolio_id` (default: your default portfolio), exactly one of `scenario_id` (catalogue, #36) or "
            "`scenario` {name, shocks, option_iv_shift}, `as_of_date` (default: the latest factor exposures). "
            + _METHOD
            + " 404 PORTFOLIO_NOT_FOUND, SCENARIO_NOT_FOUND, NOT_CALCULATED (no factor exposures); 422 "
            "UNKNOWN_FACTOR (incl. short_interest), VALIDATION_ERROR (|shock| > 1, interest_rate beyond ±0.05), "
            "FACTOR_UNAVAILABLE (a shocked factor has no data in the window)."
        ),
        response_model=ImpactResponse,
        responses=error_responses(401, 404, 422),
    )
    async def direct_impact(
        request: Request, body: ImpactRequest, principal: Principal = Depends(current_principal)
    ) -> Response:
        return await _impact(request, body, principal, correlated=False)

    @router.post(
        "/api/v1/risk/stress-testing/correlated-impact",
        summary="Correlated impact of one scenario (#38)",
        description=(
            "As #37, but unshocked factors move with the shocked ones by conditional expectation through the "
            "8 × 8 model factor covariance (252 returns, calculations.md §6.4): w = Σ_ss⁻¹·ΔF_s, each underlying "
            "returns c_u·w with c_{u,k} = β_{u,k}·Σ_kk, floored at −100 %, options revalued. "
            "`implied_factor_moves` = Σ_os·w (unshocked factors, fractions); `correlated_factor_impacts` sum to "
            "`correlated_linear_pnl`; `correlation_effect` = correlated − direct (zero for single-factor "
            "scenarios). `top_position_impacts` are by correlated P&L, each with its `direct_pnl`. Optional "
            "`matrix_id` (model basis; default: the model matrix of the exposure date). Flags may include "
            "`ill_conditioned_scenario` (cond(Σ_ss) > 1e8: pseudo-inverse used). " + _METHOD
        ),
        response_model=CorrelatedImpactResponse,
        responses=error_responses(401, 404, 422),
    )
    async def correlated_impact(
        request: Request, body: CorrelatedImpactRequest, principal: Principal = Depends(current_principal)
    ) -> Response:
        return await _impact(request, body, principal, correlated=True)

    @router.post(
        "/api/v1/risk/stress-testing/comprehensive",
        summary="Run and store every selected scenario (#39)",
        description=(
            "Async: 202 with a `stress.comprehensive` job that runs the selected catalogue scenarios (default "
            "every active one; filters `categories`, `scenario_ids`) with direct and correlated impact and stores "
            "a stress run (trigger `api`) whose id is the job's uuid. `result_url` is #40 with that "
            "`stress_run_id`. `Prefer: wait=N` (N ≤ 10) returns 200 with the #40 body when the job finishes in "
            "time (usually within 5 s). 404 PORTFOLIO_NOT_FOUND, SCENARIO_NOT_FOUND, NOT_CALCULATED."
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
        responses={200: {"model": ResultsResponse, "description": "Prefer: wait=N and the job finished"}}
        | error_responses(401, 404, 422),
    )
    async def comprehensive(
        request: Request,
        body: ComprehensiveRequest,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for the results"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.transaction() as session:
            portfolio = await q.resolve_portfolio(session, principal, body.portfolio_id)
            if body.scenario_ids:
                found = {r["scenario_key"] for r in await repo.scenarios(session, keys=body.scenario_ids)}
                missing = [k for k in body.scenario_ids if k not in found]
                if missing:
                    raise NotFound(
                        "SCENARIO",
                        f"Unknown scenario(s): {', '.join(missing)}",
                        details=[
                            {"field": "body.scenario_ids", "issue": "unknown scenario", "value": k} for k in missing
                        ],
                    )
            as_of = await q.check_calculable(session, portfolio, body.as_of_date)
            categories = sorted(set(body.categories)) if body.categories else None
            scenario_ids = sorted(set(body.scenario_ids)) if body.scenario_ids else None
            ident = uuid4()
            row, deduplicated = await plumbing.ledger.create(
                session,
                job_type=JOB_TYPE,
                requested_by=principal.user_id,
                scope={
                    "portfolio_id": str(portfolio.id),
                    "as_of_date": as_of.isoformat(),
                    "categories": categories,
                    "scenario_ids": scenario_ids,
                },
                request=body.model_dump(mode="json", exclude_none=True),
                ident=ident,
                result_url=q.result_url(portfolio.id, ident),
            )
        ident = row["id"]
        if not deduplicated:
            portfolio_id = portfolio.id
            correlation = request_id_var.get()

            async def job(job_uuid: UUID) -> JobOutcome:
                async with db.transaction() as session:
                    outcome = await run_stress_tests(
                        session,
                        portfolio_id=portfolio_id,
                        as_of=as_of,
                        trigger="api",
                        categories=categories,
                        scenario_ids=scenario_ids,
                        job_id=job_uuid,
                    )
                if outcome.status == "failed" or outcome.stress_run_id is None:
                    error = outcome.error
                    raise JobFailed(
                        error.message if error else "stress run failed",
                        code=error.code if error else "JOB_FAILED",
                    )
                result: dict[str, Any] = {
                    "stress_run_id": str(outcome.stress_run_id),
                    "scenarios": outcome.scenarios_run,
                    "worst_case_pnl": str(outcome.worst_pnl) if outcome.worst_pnl is not None else None,
                    "worst_scenario": outcome.worst_scenario,
                    "partial": outcome.partial,
                    "correlation_id": correlation,
                }
                return JobOutcome(
                    status="completed",
                    result=result,
                    result_url=q.result_url(portfolio_id, outcome.stress_run_id),
                )

            plumbing.runner.submit(ident, JOB_TYPE, job)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await plumbing.runner.wait(ident, wait):
            async with db.session() as session:
                row = await plumbing.ledger.get(session, ident) or row
                if row["status"] == "completed" and row.get("result"):
                    run_id = UUID(row["result"]["stress_run_id"])
                    data, day = await q.results(session, portfolio, run_id, [], [("correlated_pnl", False)])
                    source = await repo.data_source(session, day)
                    return envelope(data, request=request, as_of=day.isoformat(), data_source=source)
        accepted = plumbing.ledger.accepted(row, deduplicated)
        return envelope(
            accepted, request=request, status=202, headers={"Location": accepted["status_url"], "Retry-After": "2"}
        )

    @router.get(
        "/api/v1/risk/stress-testing/results/{portfolio_id}",
        summary="Stored stress results (#40)",
        description=(
            "A stored stress run (latest by calculation date, or `stress_run_id`) with one row per scenario: "
            "direct and correlated P&L, each next to its linear (delta) part and nonlinear adjustment, their "
            "fractions of equity, `correlation_effect` (= correlated − direct), the worst factor, per-factor "
            "impacts, implied moves of unshocked factors, top positions and flags. `summary` (worst / best / mean "
            "/ median P&L, sign counts, mean correlation effect) and `category_breakdown` are over "
            "`correlated_pnl` of the rows returned. Filter `category` (multi). Sort: `correlated_pnl` (default, "
            "ascending = worst first), `direct_pnl`, `severity`, `name`; `-` = descending. " + _METHOD
        ),
        response_model=ResultsResponse,
        responses=error_responses(401, 404, 422),
    )
    async def get_results(
        request: Request,
        portfolio_id: UUID,
        stress_run_id: UUID | None = Query(None, description="Default: the latest run"),
        category: str | None = Query(None, description="market, rates, rotation, volatility, historical"),
        sort: str | None = Query(None, description="correlated_pnl (default) | direct_pnl | severity | name"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        categories = parse_enum_multi(category, CATEGORIES, "category")
        order = parse_sort(sort, q.RESULT_SORTS, "correlated_pnl")
        async with db.session() as session:
            portfolio = await q.resolve_portfolio(session, principal, portfolio_id)
            data, day = await q.results(session, portfolio, stress_run_id, categories, order)
            source = await repo.data_source(session, day)
        return envelope(data, request=request, as_of=day.isoformat(), data_source=source)

    return router
