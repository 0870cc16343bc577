"""Factor routes: #31/#45 portfolio exposures, #32/#46 position exposures, #34 factor matrix,
#35 matrix recompute (sync) and #47 exposure recompute (async job, factors.computed cascade=false)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from common.api import check_limit, envelope, page_block, parse_enum_multi, parse_sort
from common.auth import Principal, current_principal
from common.errors import NotFound, ValidationFailed
from common.jobs import JobFailed, JobOutcome, prefer_wait_seconds
from common.logging import request_id_var
from factors import factor_read as read
from factors import repository as repo
from factors.api_correlations import authorised_portfolio
from factors.compute import FACTOR_WINDOW
from factors.context import FactorsContext
from factors.correlation_repository import latest_valuation_date
from factors.factor_attribution import attribution_block
from factors.factor_schemas import (
    MAX_LOOKBACK,
    MIN_LOOKBACK,
    FactorCalculateRequest,
    FactorExposuresResponse,
    FactorMatrixResponse,
    JobAcceptedResponse,
    MatrixCalculateRequest,
    PositionExposuresResponse,
)
from factors.service import FactorPipeline, MarketModelUnavailable

POSITION_TYPES = ("LONG", "SHORT", "LC", "LP", "SC", "SP")
MAX_POSITION_LIMIT = 1000
DEFAULT_ATTRIBUTION_DAYS = 21
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "PORTFOLIO_NOT_FOUND, or NOT_CALCULATED with `hint` naming the trigger"}
}
MATRIX_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "NOT_CALCULATED (hint: POST #35)"}}
BAD_PARAMS: dict[int | str, dict[str, Any]] = {
    422: {"description": "VALIDATION_ERROR: `details` name each bad parameter"}
}

EXPOSURE_METHOD = (
    "Per position X_i,f = E_i × β_u(i),f with E_i the signed, delta-adjusted dollar exposure (an option uses its "
    "underlying's betas on its dollar delta) and β the underlying's beta over the last 252 daily returns: market "
    "by univariate OLS on SPY, every other factor by OLS on [SPY, that factor's market-orthogonalised return] "
    "(calculations.md §4.3). Portfolio X_f = Σ_i X_i,f; beta = X_f / equity; beta_gross = X_f / gross (Σ|E_i|). "
    "Factor exposures overlap and are never summed across factors. Positions with fewer than 60 observations "
    "carry default betas (market 1, others 0) and count as uncovered. Money fields are USD strings."
)


def _lookback(value: int) -> int:
    if not MIN_LOOKBACK <= value <= MAX_LOOKBACK:
        raise ValidationFailed.field("query.lookback_days", f"must be between {MIN_LOOKBACK} and {MAX_LOOKBACK}", value)
    return value


def _basis(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("model", "raw"):
        raise ValidationFailed.field("query.basis", "must be one of ['model', 'raw']", value)
    return lowered


def _attribution_days(value: int) -> int:
    if not 1 <= value <= FACTOR_WINDOW:
        raise ValidationFailed.field("query.attribution_days", f"must be between 1 and {FACTOR_WINDOW}", value)
    return value


@dataclass(frozen=True)
class ExposureParams:
    """The query of #31 and #45 beyond the portfolio."""

    as_of: date | None
    include: str | None = None
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS


def _exposure_query(
    as_of_date: date | None = Query(None, description="Newest stored exposures on or before this date"),
    include: str | None = Query(None, description="attribution"),
    attribution_days: int = Query(DEFAULT_ATTRIBUTION_DAYS, description="1–252 trading days"),
) -> ExposureParams:
    return ExposureParams(as_of_date, include, attribution_days)


@dataclass(frozen=True)
class PositionParams:
    """The query of #32 and #46 beyond the portfolio."""

    as_of: date | None
    factors: str | None
    types: str | None
    quality: str | None
    sort: str | None
    limit: int
    offset: int


def _position_query(
    as_of_date: date | None = Query(None),
    factors: str | None = Query(None, description="Comma-separated factor codes"),
    type: str | None = Query(None, description="Comma-separated LONG,SHORT,LC,LP,SC,SP"),
    quality: str | None = Query(None, description="full_history | limited_history | insufficient_history"),
    sort: str | None = Query(None, description="symbol | dollar_exposure | beta.<code>, `-` = descending"),
    limit: int = Query(50, description="1–1000"),
    offset: int = Query(0, description="≥ 0"),
) -> PositionParams:
    return PositionParams(as_of_date, factors, type, quality, sort, limit, offset)


def exposures_url(portfolio_id: UUID, as_of: date) -> str:
    """Where #45 serves a calculation."""
    return f"/api/v1/factors/exposures/{portfolio_id}?as_of_date={as_of.isoformat()}"


def create_factor_router(ctx: FactorsContext, pipeline: FactorPipeline) -> APIRouter:
    """Routes #31, #32, #34, #35, #45, #46, #47."""
    router = APIRouter(tags=["factors"])
    db = ctx.db
    plumbing = ctx.plumbing

    async def exposures_response(
        request: Request, session: AsyncSession, portfolio_id: UUID, q: ExposureParams
    ) -> Response:
        wants = parse_enum_multi(q.include, ("attribution",), "include")
        days = _attribution_days(q.attribution_days)
        stored = await read.load_exposures(session, portfolio_id=portfolio_id, as_of=q.as_of)
        data = read.exposures_body(stored)
        if "attribution" in wants:
            data["attribution"] = await attribution_block(
                session, portfolio_id=portfolio_id, end=stored.calculation_date, days=days
            )
        source = await repo.data_source(session, as_of=stored.calculation_date)
        return envelope(data, request=request, as_of=data["calculation_date"], data_source=source)

    async def positions_response(
        request: Request, session: AsyncSession, portfolio_id: UUID, q: PositionParams
    ) -> Response:
        all_codes = await read.regression_codes(session)
        codes = parse_enum_multi(q.factors, all_codes, "factors") or all_codes
        position_types = parse_enum_multi(q.types, POSITION_TYPES, "type", upper=True)
        quality_flag = parse_enum_multi(q.quality, read.QUALITY_FLAGS, "quality")
        if len(quality_flag) > 1:
            raise ValidationFailed.field("query.quality", "takes one value", q.quality)
        order = parse_sort(q.sort, ["symbol", "dollar_exposure", *[f"beta.{c}" for c in all_codes]], "symbol")
        limit, offset = check_limit(q.limit, q.offset, max_limit=MAX_POSITION_LIMIT)
        day = await repo.latest_exposure_date(session, portfolio_id=portfolio_id, on_or_before=q.as_of)
        if day is None:
            raise read.not_calculated("Factor exposures", read.EXPOSURE_HINT)
        query = read.PositionQuery(
            portfolio_id, day, codes, position_types, quality_flag[0] if quality_flag else None, order, limit, offset
        )
        rows, total = await read.position_page(session, query)
        source = await repo.data_source(session, as_of=day)
        return envelope(
            [read.position_item(r, codes) for r in rows],
            request=request,
            page=page_block(limit, offset, total),
            as_of=day.isoformat(),
            data_source=source,
        )

    async def matrix_response(request: Request, session: AsyncSession, stored: read.StoredMatrix) -> Response:
        proxies = await read.registry_proxies(session)
        data = read.matrix_body(stored, proxies)
        source = await repo.data_source(session, as_of=stored.row["calculation_date"])
        return envelope(data, request=request, as_of=data["calculation_date"], data_source=source)

    exposure_params: dict[str, Any] = {
        "response_model": FactorExposuresResponse,
        "responses": NOT_FOUND | BAD_PARAMS,
    }

    @router.get(
        "/api/v1/risk/factors",
        summary="Portfolio factor exposures (#31)",
        description="Same data as #45; the portfolio is `portfolio_id` or the caller's default. " + EXPOSURE_METHOD,
        **exposure_params,
    )
    async def risk_factors(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Default: the caller's default portfolio"),
        q: ExposureParams = Depends(_exposure_query),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
            return await exposures_response(request, session, ref.id, q)

    @router.get(
        "/api/v1/factors/exposures/{portfolio_id}",
        summary="Portfolio factor exposures (#45)",
        description=(
            "Stored exposures of the newest date on or before `as_of_date` (default: latest), one item per registry "
            "factor in display order (Short Interest: status not_calculated, no return series). `rate_sensitivity`: "
            "exposure_dollar = P&L per 1.00 change of the 10-year yield, dv01 = per +1 bp. `include=attribution` "
            "adds calculations.md §4.9 over the last `attribution_days` trading days: the market contribution is "
            "exact, style contributions are stand-alone and must not be added up. " + EXPOSURE_METHOD
        ),
        **exposure_params,
    )
    async def exposures(
        request: Request,
        portfolio_id: UUID,
        q: ExposureParams = Depends(_exposure_query),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
            return await exposures_response(request, session, ref.id, q)

    position_params: dict[str, Any] = {
        "response_model": PositionExposuresResponse,
        "responses": NOT_FOUND | BAD_PARAMS,
    }
    position_doc = (
        "One item per position: the underlying's betas with their diagnostics (t, p, std error, R² of the regression "
        "that produced each beta, VIF and condition number of the joint diagnostic fit, observations, quality_flag, "
        "beta_source) and exposure_dollar.<code> = dollar_exposure × betas.<code>. Filters: `factors` (codes; limits "
        "the per-factor blocks), `type` (position types, OR), `quality`. `sort` ∈ symbol (default), "
        "dollar_exposure, beta.<code> (`-` for descending); `limit` ≤ 1000. " + EXPOSURE_METHOD
    )

    @router.get(
        "/api/v1/risk/factors/positions",
        summary="Position factor exposures (#32)",
        description="Same as #46 with `portfolio_id` as a query parameter (default portfolio). " + position_doc,
        **position_params,
    )
    async def risk_factor_positions(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Default: the caller's default portfolio"),
        q: PositionParams = Depends(_position_query),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
            return await positions_response(request, session, ref.id, q)

    @router.get(
        "/api/v1/factors/exposures/{portfolio_id}/positions",
        summary="Position factor exposures (#46)",
        description=position_doc,
        **position_params,
    )
    async def exposure_positions(
        request: Request,
        portfolio_id: UUID,
        q: PositionParams = Depends(_position_query),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.session() as session:
            ref = await authorised_portfolio(session, principal, portfolio_id)
            return await positions_response(request, session, ref.id, q)

    @router.get(
        "/api/v1/risk/correlations/factors/matrix",
        summary="Factor correlation and covariance matrix (#34)",
        description=(
            "Market-wide. `basis=model` (default): the eight model factor series (market = SPY return; six styles and "
            "the 10-year yield change, each orthogonalised to the market: f_k = r_k − b_k·r_SPY, b_k in "
            "`market_loadings`). `basis=raw`: the proxy returns as they are (SPY, MTUM, VTV, VUG, QUAL, IWM, USMV, "
            "dy10), shown for transparency; their |ρ| > 0.8 is expected and not flagged. Pearson ρ and sample "
            "covariance (daily, ddof 1) on listwise-complete rows, ≥ 60 rows, no clipping. Diagnostics: condition "
            "number sqrt(λmax/λmin) of the correlation matrix, VIF per factor, off-diagonal mean/max/min. The newest "
            "matrix on or before `as_of_date`; `lookback_days` 60–756 (default 252)."
        ),
        response_model=FactorMatrixResponse,
        responses=MATRIX_NOT_FOUND | BAD_PARAMS,
    )
    async def factor_matrix(
        request: Request,
        as_of_date: date | None = Query(None, description="Default: latest"),
        basis: str = Query("model", description="model | raw"),
        lookback_days: int = Query(FACTOR_WINDOW, description="60–756"),
        _: Principal = Depends(current_principal),
    ) -> Response:
        kind, lookback = _basis(basis), _lookback(lookback_days)
        async with db.session() as session:
            stored = await read.load_matrix(session, as_of=as_of_date, basis=kind, lookback_days=lookback)
            if stored is None:
                raise read.not_calculated("Factor matrix", read.MATRIX_HINT)
            return await matrix_response(request, session, stored)

    @router.post(
        "/api/v1/risk/correlations/factors/calculate",
        summary="Recompute the factor matrices for a date (#35)",
        description=(
            "Synchronous. Builds (or reuses, when already stored for the date) the market-wide factor model of "
            "`as_of_date` (default: the latest trading day) and answers the `model` matrix as in #34; the `raw` one "
            "is stored alongside. 422 when fewer than 60 complete factor rows exist (`details` name the series "
            "short of history). Only the 252-day model window is computed on demand (`lookback_days` other than "
            "252 → 422), because exposures, regressions and stress all share that one sample per date."
        ),
        response_model=FactorMatrixResponse,
        responses=BAD_PARAMS,
    )
    async def calculate_matrix(
        request: Request, body: MatrixCalculateRequest, _: Principal = Depends(current_principal)
    ) -> Response:
        if body.lookback_days != FACTOR_WINDOW:
            raise ValidationFailed.field(
                "body.lookback_days",
                f"only the {FACTOR_WINDOW}-day model window is computed on demand",
                body.lookback_days,
            )
        async with plumbing.uow.begin() as work:
            as_of = body.as_of_date or await repo.latest_market_date(work.session)
            if as_of is None:
                raise ValidationFailed.field("body.as_of_date", "no market data stored yet", None)
            await _check_history(work.session, as_of)
            try:
                matrix_id = await pipeline.ensure_market_model(work.session, as_of=as_of, run_id=None)
            except MarketModelUnavailable as exc:
                raise ValidationFailed(
                    exc.message,
                    code="VALIDATION_ERROR",
                    details=[{"field": "body.as_of_date", "issue": exc.code, "value": as_of.isoformat()}],
                ) from exc
        async with db.session() as session:
            stored = await read.load_matrix_by_id(session, matrix_id=matrix_id)
            if stored is None:  # the model was built but stored no matrix: nothing to show
                raise read.not_calculated("Factor matrix", read.MATRIX_HINT)
            return await matrix_response(request, session, stored)

    @router.post(
        "/api/v1/factors/calculate",
        summary="Recompute a portfolio's factor exposures (#47)",
        description=(
            "Starts a `factors.calculate` job for `portfolio_id` on `as_of_date` (default: the portfolio's latest "
            "valuation date) and answers 202; `result_url` is the #45 URL. The 252-day window is fixed so every "
            "portfolio shares one factor sample and covariance per date. With `force` false (default) exposures "
            "already stored for the date are kept (job result `reused: true`). On completion `factors.computed` "
            "is published with `cascade: false` (stress results are not refreshed). `Prefer: wait=N` (≤ 10 s) "
            "returns 200 with the #45 body when the job finishes in time. 422 when the factor proxies have fewer "
            "than 60 complete days (`details`)."
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
        responses={
            200: {"model": FactorExposuresResponse, "description": "Prefer: wait=N and the job finished"},
            404: {"description": "PORTFOLIO_NOT_FOUND"},
            422: {"description": "VALIDATION_ERROR (including factor proxy history shorter than 60 days)"},
        },
    )
    async def calculate_exposures(
        request: Request,
        body: FactorCalculateRequest,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for the job"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        async with db.transaction() as session:
            ref = await authorised_portfolio(session, principal, body.portfolio_id)
            as_of = (
                body.as_of_date
                or await latest_valuation_date(session, portfolio_id=ref.id)
                or await repo.latest_market_date(session)
            )
            if as_of is None:
                raise ValidationFailed.field("body.as_of_date", "no market data stored yet", None)
            await _check_history(session, as_of)
            row, deduplicated = await plumbing.ledger.create(
                session,
                job_type="factors.calculate",
                requested_by=principal.user_id,
                scope={"portfolio_id": str(ref.id), "as_of_date": as_of.isoformat(), "force": body.force},
                request=body.model_dump(mode="json"),
                result_url=exposures_url(ref.id, as_of),
            )
        ident = row["id"]
        if not deduplicated:
            portfolio_id, day, force, correlation_id = ref.id, as_of, body.force, request_id_var.get()

            async def job(_: UUID) -> JobOutcome:
                return await run_factor_job(
                    ctx, pipeline, portfolio_id=portfolio_id, as_of=day, force=force, correlation_id=correlation_id
                )

            plumbing.runner.submit(ident, "factors.calculate", job)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await plumbing.runner.wait(ident, wait):
            async with db.session() as session:
                row = await plumbing.ledger.get(session, ident) or row
                if row["status"] == "completed":
                    return await exposures_response(request, session, ref.id, ExposureParams(as_of))
        accepted = plumbing.ledger.accepted(row, deduplicated)
        return envelope(
            accepted, request=request, status=202, headers={"Location": accepted["status_url"], "Retry-After": "2"}
        )

    return router


async def _check_history(session: AsyncSession, as_of: date) -> None:
    """422 when the factor model of `as_of` is neither stored nor buildable (< 60 complete rows)."""
    if await repo.matrix(session, as_of=as_of, lookback_days=FACTOR_WINDOW, basis="model") is not None:
        return
    problems = await read.factor_history_problems(session, as_of=as_of, lookback_days=FACTOR_WINDOW)
    if problems:
        raise ValidationFailed(
            f"Factor proxy history ending {as_of.isoformat()} has fewer than 60 complete days", details=problems
        )


async def run_factor_job(
    ctx: FactorsContext,
    pipeline: FactorPipeline,
    *,
    portfolio_id: UUID,
    as_of: date,
    force: bool,
    correlation_id: str | None,
) -> JobOutcome:
    """Job factors.calculate: one portfolio's factor exposures for `as_of` in one unit of work, then
    factors.computed with cascade=false (the batch history records the step; nothing downstream runs)."""
    url = exposures_url(portfolio_id, as_of)
    async with ctx.plumbing.uow.begin() as work:
        if await repo.portfolio(work.session, portfolio_id=portfolio_id) is None:
            raise NotFound("PORTFOLIO")
        stored = await repo.latest_exposure_date(work.session, portfolio_id=portfolio_id, on_or_before=as_of)
        if stored == as_of and not force:
            return JobOutcome(
                result={"portfolio_id": str(portfolio_id), "calculation_date": as_of.isoformat(), "reused": True},
                result_url=url,
            )
        outcomes = await pipeline.compute_portfolios(
            work.session, portfolio_ids=[portfolio_id], as_of=as_of, run_id=None, steps=("factors",)
        )
        outcome = outcomes[portfolio_id]
        # Emitted for failures too, so the step's outcome is recorded like a batch step's.
        work.emit(pipeline.event(outcome, as_of=as_of, run_id=None, cascade=False, correlation_id=correlation_id))
    step = outcome.factors
    if step is None:  # the pipeline ran no factors step for the portfolio: nothing was stored
        raise JobFailed("factor exposures were not computed", code="FACTORS_FAILED")
    if step.status == "failed":
        message = step.error.message if step.error else "factor exposures failed"
        raise JobFailed(message, code=step.error.code if step.error else "FACTORS_FAILED")
    return JobOutcome(
        status="partial" if step.status == "partial" else "completed",
        result={
            "portfolio_id": str(portfolio_id),
            "calculation_date": as_of.isoformat(),
            "reused": False,
            "positions": step.records_processed,
            "matrix_id": str(outcome.matrix_id) if outcome.matrix_id else None,
            "coverage": outcome.coverage,
        },
        result_url=url,
    )
