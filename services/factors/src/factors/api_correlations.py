"""Position-correlation routes: #41 metrics, #42 matrix (GET) and #43 calculate (POST, async job)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from common.api import envelope, parse_enum_multi
from common.auth import Principal, current_principal, resolve_portfolio
from common.errors import ValidationFailed
from common.jobs import prefer_wait_seconds
from factors import correlation_read as read
from factors import correlation_repository as repo
from factors import repository as factor_repo
from factors.context import FactorsContext
from factors.correlation_compute import FILTER_MODES, MAX_DURATION_DAYS, MIN_DURATION_DAYS
from factors.correlation_schemas import (
    CorrelationCalculateRequest,
    CorrelationMatrixResponse,
    CorrelationMetricsResponse,
    JobAcceptedResponse,
)
from factors.correlation_service import metrics_url, passing_nodes, run_calculation_job
from factors.repository import PortfolioRef

VIEWS = ("portfolio", "longs", "shorts")
POSITION_TYPES = ("LONG", "SHORT", "LC", "LP", "SC", "SP")

METHOD = (
    "Nodes are underlyings: an option joins its underlying and a node's exposure e = Σ dollar_exposure of its "
    "positions (signed, delta-adjusted USD; negative = short). Nodes enter when |e| ≥ $10,000 and/or |e| / gross "
    "exposure ≥ 1 % (filter_mode). ρ is Pearson on simple daily returns of adjusted closes over the last "
    "duration_days NYSE trading days (default 90); a pair needs ≥ 30 common returns, else null (never 0); a node "
    "with < 30 returns is excluded (insufficient_history). Direction-adjusted ρ = sign(e_u)·sign(e_v)·ρ, so a "
    "hedge shows as negative. Clusters: average linkage on 1 − ρ cut at 1 − correlation_threshold, ≥ 2 members; "
    "nickname = a tag on ≥ 70 % of members, else a sector shared by ≥ 70 %, else '<largest member> lookalikes'. "
    "Correlations, weights and shares are fractions; exposures are money strings (calculations.md §7.2–7.3)."
)


async def authorised_portfolio(session: AsyncSession, principal: Principal, portfolio_id: UUID | None) -> PortfolioRef:
    """The requested portfolio (own, or any for admins) or the caller's default; 404 otherwise."""
    return await resolve_portfolio(
        principal,
        portfolio_id,
        by_id=lambda pid: factor_repo.portfolio(session, portfolio_id=pid),
        default_of=lambda uid: factor_repo.default_portfolio(session, user_id=uid),
    )


def _one_of(value: str, allowed: tuple[str, ...], field: str) -> str:
    lowered = value.strip().lower()
    if lowered not in allowed:
        raise ValidationFailed.field(f"query.{field}", f"must be one of {list(allowed)}", value)
    return lowered


def _range(value: float | None, lo: float, hi: float, field: str) -> float | None:
    if value is not None and not lo <= value <= hi:
        raise ValidationFailed.field(f"query.{field}", f"must be between {lo:g} and {hi:g}", value)
    return value


def _non_negative(value: Decimal | None, field: str) -> Decimal | None:
    if value is not None and (not value.is_finite() or value < 0):
        raise ValidationFailed.field(f"query.{field}", "must be a non-negative amount", str(value))
    return value


def _duration(value: int | None) -> int | None:
    if value is not None and not MIN_DURATION_DAYS <= value <= MAX_DURATION_DAYS:
        raise ValidationFailed.field(
            "query.duration_days", f"must be between {MIN_DURATION_DAYS} and {MAX_DURATION_DAYS}", value
        )
    return value


def _narrowing(
    view: str,
    min_position_value: Decimal | None,
    min_portfolio_weight: float | None,
    filter_mode: str | None,
    position_types: str | None = None,
    min_exposure: Decimal | None = None,
) -> read.Narrowing:
    return read.Narrowing(
        view=_one_of(view, VIEWS, "view"),
        min_position_value=_non_negative(min_position_value, "min_position_value"),
        min_portfolio_weight=_range(min_portfolio_weight, 0.0, 1.0, "min_portfolio_weight"),
        filter_mode=None if filter_mode is None else _one_of(filter_mode, FILTER_MODES, "filter_mode"),
        position_types=tuple(parse_enum_multi(position_types, POSITION_TYPES, "position_types", upper=True)),
        min_exposure=_non_negative(min_exposure, "min_exposure"),
    )


def create_correlations_router(ctx: FactorsContext) -> APIRouter:
    """Routes #41–#43."""
    router = APIRouter(tags=["correlations"])
    db = ctx.db
    plumbing = ctx.plumbing

    async def metrics_response(
        request: Request,
        portfolio_id: UUID,
        narrowing: read.Narrowing,
        threshold: float | None,
        *,
        duration_days: int | None = None,
        as_of: date | None = None,
        calculation_id: UUID | None = None,
        status: int = 200,
    ) -> Response:
        async with db.session() as session:
            stored = await read.load(
                session,
                portfolio_id=portfolio_id,
                duration_days=duration_days,
                as_of=as_of,
                calculation_id=calculation_id,
            )
            latest = await repo.latest_market_date(session)
            source = await repo.data_source(session, as_of=stored.calculation_date)
        data = read.metrics_body(stored, narrowing, threshold, latest)
        return envelope(
            data, request=request, status=status, as_of=stored.calculation_date.isoformat(), data_source=source
        )

    @router.get(
        "/api/v1/risk/correlations/positions/metrics",
        summary="Portfolio position-correlation metrics (#41)",
        description=(
            "Portfolio-level correlation metrics from the latest stored calculation (computed daily in the run; "
            "`duration_days` / `as_of_date` pick another stored one). `overall_correlation` = exposure-weighted "
            "average ρ over valid pairs; `average_correlation` = plain mean (signed); "
            "`direction_adjusted_correlation` weights sign(e_u)·sign(e_v)·ρ; `correlation_concentration_score` = "
            "share of gross node exposure inside clusters and `concentration_net` uses |net| per cluster (hedged "
            "clusters count little); `effective_positions` = 1 / (aᵀRa) with a = |e| / Σ|e| (clipped to [1, N]; "
            "nodes with null pairs dropped, most nulls first) and `effective_positions_hhi` = 1 / Σa². `view` "
            "keeps nodes by the sign of e (longs > 0, shorts < 0). `correlation_threshold` (0–1) re-clusters the "
            "stored pairs on read; `min_position_value`, `min_portfolio_weight` and `filter_mode` can only narrow "
            "the stored node set (to widen it, POST #43); narrowed metrics are recomputed from the stored pairs. "
            "`data_quality`: sufficient (every node that passed the filter has ≥ 30 returns and every pair ≥ 30 "
            "common returns), limited, insufficient (< 2 nodes or no valid pair). " + METHOD
        ),
        response_model=CorrelationMetricsResponse,
        responses={404: {"description": "PORTFOLIO_NOT_FOUND or NOT_CALCULATED"}},
    )
    async def get_metrics(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Default: the caller's default portfolio"),
        view: str = Query("portfolio", description="portfolio | longs | shorts (by the sign of node exposure)"),
        correlation_threshold: float | None = Query(
            None, description="0–1; default: the calculation's threshold (0.7)"
        ),
        min_position_value: Decimal | None = Query(None, description="Narrow: minimum |e| in USD"),
        min_portfolio_weight: float | None = Query(None, description="Narrow: minimum |e| / gross, fraction"),
        filter_mode: str | None = Query(None, description="Narrow: value_only | weight_only | both | either"),
        duration_days: int | None = Query(None, description="Read the latest calculation with this window"),
        as_of_date: date | None = Query(None, description="Read the calculation of this date"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        narrowing = _narrowing(view, min_position_value, min_portfolio_weight, filter_mode)
        threshold = _range(correlation_threshold, 0.0, 1.0, "correlation_threshold")
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
        return await metrics_response(
            request, ref.id, narrowing, threshold, duration_days=_duration(duration_days), as_of=as_of_date
        )

    @router.get(
        "/api/v1/risk/correlations/positions/matrix",
        summary="Pairwise position-correlation matrix (#42)",
        description=(
            "The full pairwise matrix over the included nodes of the latest stored calculation, in symbol order: "
            "symmetric, 1.0 on the diagonal, null where a pair has fewer than 30 common returns. `values` = raw ρ "
            "(default) or direction_adjusted (sign(e_u)·sign(e_v)·ρ). `position_types` keeps nodes holding any of "
            "these types; `min_correlation` / `max_correlation` (−1…1) null the off-diagonal cells outside the "
            "range; `min_exposure` keeps |e| ≥ this (USD); `min_position_value`, `min_portfolio_weight`, "
            "`filter_mode` narrow as in #41. `observations_matrix` gives each pair's common returns (diagonal: the "
            "node's returns); `include=p_values` adds two-sided Student-t p-values on the same aligned samples. "
            + METHOD
        ),
        response_model=CorrelationMatrixResponse,
        responses={404: {"description": "PORTFOLIO_NOT_FOUND or NOT_CALCULATED"}},
    )
    async def get_matrix(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Default: the caller's default portfolio"),
        view: str = Query("portfolio", description="portfolio | longs | shorts (by the sign of node exposure)"),
        values: str = Query("raw", description="raw | direction_adjusted"),
        position_types: str | None = Query(None, description="Comma-separated LONG,SHORT,LC,LP,SC,SP (OR)"),
        min_correlation: float | None = Query(None, description="−1…1: cells below become null"),
        max_correlation: float | None = Query(None, description="−1…1: cells above become null"),
        min_exposure: Decimal | None = Query(None, description="Keep nodes with |e| ≥ this (USD)"),
        min_position_value: Decimal | None = Query(None, description="Narrow: minimum |e| in USD"),
        min_portfolio_weight: float | None = Query(None, description="Narrow: minimum |e| / gross, fraction"),
        filter_mode: str | None = Query(None, description="Narrow: value_only | weight_only | both | either"),
        include: str | None = Query(None, description="p_values"),
        duration_days: int | None = Query(None, description="Read the latest calculation with this window"),
        as_of_date: date | None = Query(None, description="Read the calculation of this date"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        narrowing = _narrowing(
            view, min_position_value, min_portfolio_weight, filter_mode, position_types, min_exposure
        )
        kind = _one_of(values, ("raw", "direction_adjusted"), "values")
        lo = _range(min_correlation, -1.0, 1.0, "min_correlation")
        hi = _range(max_correlation, -1.0, 1.0, "max_correlation")
        if lo is not None and hi is not None and lo > hi:
            raise ValidationFailed.field("query.min_correlation", "must not exceed max_correlation", lo)
        includes = parse_enum_multi(include, ("p_values",), "include")
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
            stored = await read.load(
                session, portfolio_id=ref.id, duration_days=_duration(duration_days), as_of=as_of_date
            )
            source = await repo.data_source(session, as_of=stored.calculation_date)
        data = read.matrix_body(
            stored,
            narrowing,
            direction=kind == "direction_adjusted",
            min_correlation=lo,
            max_correlation=hi,
            include_p_values="p_values" in includes,
        )
        return envelope(data, request=request, as_of=stored.calculation_date.isoformat(), data_source=source)

    @router.post(
        "/api/v1/risk/correlations/positions/calculate",
        summary="Recompute position correlations (#43)",
        description=(
            "Starts a `correlations.calculate` job for `portfolio_id` (required) on its latest valuation date "
            "(or `as_of_date`) and answers 202 with the job; `result_url` is the #41 URL of the calculation. "
            "`duration_days` 30–252 trading-day returns (default 90). `position_filters`: `min_position_value` "
            "(USD, default 10000), `min_portfolio_weight` (fraction of gross, default 0.01), `filter_mode` "
            "(value_only | weight_only | both | either, default both), `correlation_threshold` (0–1, default "
            "0.7). With `force_recalculate` false (default) the stored calculation is kept when the nodes, their "
            "exposures, the filters and the date are unchanged (job result `reused: true`). The stored calculation "
            "of (portfolio, duration_days, date) is replaced; the last 8 calculations per portfolio are kept. "
            "`Prefer: wait=N` (≤ 10 s) returns 200 with the #41 body when the job finishes in time. "
            "422 when fewer than 2 nodes pass the filters. " + METHOD
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
        responses={
            200: {"model": CorrelationMetricsResponse, "description": "Prefer: wait=N and the job finished"},
            404: {"description": "PORTFOLIO_NOT_FOUND"},
            422: {"description": "VALIDATION_ERROR (including fewer than 2 nodes passing the filters)"},
        },
    )
    async def calculate(
        request: Request,
        body: CorrelationCalculateRequest,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for the job"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        filters = body.position_filters.to_filters()
        async with db.transaction() as session:
            ref = await authorised_portfolio(session, principal, body.portfolio_id)
            as_of = body.as_of_date or await repo.latest_valuation_date(session, portfolio_id=ref.id)
            passing = 0
            if as_of is not None:
                _, candidates = await passing_nodes(session, portfolio_id=ref.id, as_of=as_of, filters=filters)
                passing = int(candidates.sum())
            if as_of is None or passing < 2:
                when = as_of.isoformat() if as_of else "any date (the portfolio has never been valued)"
                raise ValidationFailed(
                    "Fewer than 2 nodes pass the filters",
                    details=[
                        {
                            "field": "body.position_filters",
                            "issue": f"{passing} node(s) pass the filters on {when}; at least 2 are needed",
                            "value": passing,
                        }
                    ],
                )
            scope: dict[str, Any] = {
                "portfolio_id": str(ref.id),
                "as_of_date": as_of.isoformat(),
                "duration_days": body.duration_days,
                "position_filters": body.position_filters.model_dump(mode="json"),
                "force_recalculate": body.force_recalculate,
            }
            row, deduplicated = await plumbing.ledger.create(
                session,
                job_type="correlations.calculate",
                requested_by=principal.user_id,
                scope=scope,
                request=body.model_dump(mode="json"),
                result_url=metrics_url(ref.id, body.duration_days, as_of),
            )
        ident = row["id"]
        if not deduplicated:
            portfolio, duration, force, day = ref.id, body.duration_days, body.force_recalculate, as_of

            async def job(_: UUID) -> Any:
                return await run_calculation_job(
                    plumbing, portfolio_id=portfolio, as_of=day, duration_days=duration, filters=filters, force=force
                )

            plumbing.runner.submit(ident, "correlations.calculate", job)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await plumbing.runner.wait(ident, wait):
            async with db.session() as session:
                row = await plumbing.ledger.get(session, ident) or row
            if row["status"] == "completed" and row.get("result"):
                return await metrics_response(
                    request,
                    ref.id,
                    read.Narrowing(),
                    None,
                    calculation_id=UUID(row["result"]["calculation_id"]),
                )
        accepted = plumbing.ledger.accepted(row, deduplicated)
        return envelope(
            accepted,
            request=request,
            status=202,
            headers={"Location": accepted["status_url"], "Retry-After": "2"},
        )

    return router
