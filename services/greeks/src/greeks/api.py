"""Routes of the greeks service: #29 GET /api/v1/risk/greeks and #30 POST /api/v1/risk/greeks/calculate."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from common.api import envelope, parse_bool, split_multi
from common.auth import Principal, current_principal, resolve_portfolio
from common.errors import ValidationFailed
from common.jobs import prefer_wait_seconds
from common.logging import request_id_var
from common.service import Plumbing
from greeks import adhoc, repository
from greeks.repository import PortfolioRef
from greeks.schemas import AdHocResponse, CalculateRequest, GreeksSummaryResponse, JobAcceptedResponse
from greeks.service import GreeksService, result_url
from greeks.summary import SummaryQuery, greeks_summary

VIEWS = ("portfolio", "longs", "shorts")

GREEKS_UNITS = (
    "Position Greeks are signed by quantity (per-share Greek × contracts × multiplier): delta in shares of "
    "underlying, gamma in delta per $1, theta in $ per calendar day, vega in $ per volatility point (σ + 0.01), "
    "rho in $ per percentage point of rates. dollar_delta = delta × underlying price and dollar_gamma_1pct = "
    "gamma × price² / 100 are money strings. Long calls and written puts have positive delta; written options "
    "have negative gamma and vega. Model: Black-Scholes-Merton with continuous dividend yield (calculations.md §3)."
)


async def _authorised_portfolio(session: Any, principal: Principal, portfolio_id: UUID | None) -> PortfolioRef:
    """The requested portfolio (own, or any for admins) or the caller's default; 404 otherwise."""
    return await resolve_portfolio(
        principal,
        portfolio_id,
        by_id=lambda pid: repository.portfolio(session, portfolio_id=pid),
        default_of=lambda uid: repository.default_portfolio(session, user_id=uid),
    )


def create_router(plumbing: Plumbing, service: GreeksService) -> APIRouter:
    """The greeks routes."""
    router = APIRouter(tags=["greeks"])
    db = plumbing.db

    async def summary_response(request: Request, query: SummaryQuery) -> Response:
        async with db.session() as session:
            data, as_of = await greeks_summary(session, query)
            source = await repository.data_source(session, as_of=as_of) if as_of else None
        return envelope(data, request=request, as_of=as_of.isoformat() if as_of else None, data_source=source)

    @router.get(
        "/api/v1/risk/greeks",
        summary="Portfolio option Greeks (#29)",
        description=(
            "Greeks of the portfolio's option positions from the latest stored calculation (or `as_of_date`). "
            "`option_totals` sums option positions in dollar terms; `portfolio_dollar_delta` adds stocks at market "
            "value (Σ dollar_exposure of open positions = net exposure). Share deltas and gammas are reported per "
            "underlying only (`by_underlying`), never summed across underlyings. `view` filters by quantity sign "
            "(longs > 0, shorts < 0); `underlying` is a comma-separated filter. A book without options answers 200 "
            "with zero totals and note `no option positions`; options never calculated → 404 NOT_CALCULATED. "
            + GREEKS_UNITS
        ),
        response_model=GreeksSummaryResponse,
        responses={404: {"description": "PORTFOLIO_NOT_FOUND or NOT_CALCULATED"}},
    )
    async def get_greeks(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Default: the caller's default portfolio"),
        view: str = Query("portfolio", description="portfolio | longs | shorts (by quantity sign)"),
        underlying: str | None = Query(None, description="Comma-separated underlyings (OR)"),
        expiring_within_days: int = Query(7, description="Window of the `expiring` block, 0–365 calendar days"),
        include_positions: str | None = Query(None, description="Include per-position Greeks (default false)"),
        as_of_date: date | None = Query(None, description="Read this calculation date instead of the latest"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        view_name = view.strip().lower()
        if view_name not in VIEWS:
            raise ValidationFailed.field("query.view", f"must be one of {list(VIEWS)}", view)
        if not 0 <= expiring_within_days <= 365:
            raise ValidationFailed.field(
                "query.expiring_within_days", "must be between 0 and 365", expiring_within_days
            )
        include = parse_bool(include_positions, "include_positions", False)
        async with db.session() as session:
            ref = await _authorised_portfolio(session, principal, portfolio_id)
        query = SummaryQuery(
            portfolio_id=ref.id,
            view=view_name,
            underlyings=sorted({u.upper() for u in split_multi(underlying)}),
            expiring_within_days=expiring_within_days,
            include_positions=include,
            as_of_date=as_of_date,
        )
        return await summary_response(request, query)

    @router.post(
        "/api/v1/risk/greeks/calculate",
        summary="Compute Greeks on demand (#30)",
        description=(
            "Exactly one mode. **Ad hoc** (`positions`, 1–500 contracts, synchronous, nothing stored): each item is "
            "an OCC `symbol` or `underlying`/`option_type`/`strike_price`/`expiration_date`, with a signed `quantity` "
            "in contracts and optional overrides `underlying_price`, `implied_volatility`, `risk_free_rate`, "
            "`dividend_yield` (fractions; rates continuously compounded). Inputs not given come from stored market "
            "data at `as_of_date` (default: the latest SPY close); a contract without inputs is returned with status "
            "`missing_inputs`. 422 UNKNOWN_SYMBOL for an underlying outside the security master. **Portfolio** "
            "(`portfolio_id`): 202 with a `greeks.calculate` job that computes and stores the portfolio's Greeks "
            "for `as_of_date`; `Prefer: wait=N` (≤ 10 s) returns 200 with the #29 body when done in time. "
            + GREEKS_UNITS
        ),
        response_model=AdHocResponse,
        responses={
            202: {"model": JobAcceptedResponse, "description": "Portfolio mode: job accepted"},
            404: {"description": "PORTFOLIO_NOT_FOUND"},
            422: {"description": "VALIDATION_ERROR or UNKNOWN_SYMBOL"},
        },
    )
    async def calculate(
        request: Request,
        body: CalculateRequest,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for a portfolio job"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        if body.positions is not None:
            async with db.session() as session:
                as_of = body.as_of_date or await adhoc.default_as_of(session)
                data = await adhoc.calculate(session, service, body.positions, as_of)
                source = await repository.data_source(session, as_of=as_of)
            return envelope(data, request=request, as_of=as_of.isoformat(), data_source=source)

        assert body.portfolio_id is not None
        async with plumbing.db.transaction() as session:
            ref = await _authorised_portfolio(session, principal, body.portfolio_id)
            as_of = body.as_of_date or await adhoc.default_as_of(session)
            row, deduplicated = await plumbing.ledger.create(
                session,
                job_type="greeks.calculate",
                requested_by=principal.user_id,
                scope={"portfolio_id": str(ref.id), "as_of_date": as_of.isoformat()},
                request=body.model_dump(mode="json", exclude_none=True),
                result_url=result_url(ref.id, as_of),
            )
        ident = row["id"]
        correlation_id = request_id_var.get()
        if not deduplicated:
            portfolio_id = ref.id

            async def job(_: UUID) -> Any:
                return await service.run_portfolio_job(portfolio_id, as_of, correlation_id)

            plumbing.runner.submit(ident, "greeks.calculate", job)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await plumbing.runner.wait(ident, wait):
            async with db.session() as session:
                row = await plumbing.ledger.get(session, ident) or row
            if row["status"] == "completed":
                query = SummaryQuery(ref.id, "portfolio", [], 7, False, as_of_date=as_of)
                return await summary_response(request, query)
        body_out = plumbing.ledger.accepted(row, deduplicated)
        return envelope(
            body_out,
            request=request,
            status=202,
            headers={"Location": body_out["status_url"], "Retry-After": "2"},
        )

    return router
