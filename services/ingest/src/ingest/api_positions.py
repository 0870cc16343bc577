"""#25-#28: routes of positions (list, grouped, one) and strategies."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.auth import Principal
from common.db import Database
from ingest.access import caller
from ingest.api import ERRORS, Provenance
from ingest.api_schemas import GroupedResponse, PositionDetailResponse, PositionListResponse, StrategiesResponse
from ingest.catalog import ViewCatalog
from ingest.positions_query import SORT_FIELDS
from ingest.positions_reads import FilterParams, PositionsApi, filter_params


def create_positions_router(db: Database, views: ViewCatalog, provenance: Provenance) -> APIRouter:
    """#25-#28."""
    api = PositionsApi(db, views, provenance)
    router = APIRouter(tags=["positions"])
    money_note = (
        "Money is USD as decimal strings: market_value signed (q·m·P), dollar_exposure signed and delta-adjusted "
        "(stocks = market value, options q·m·Δ·S), notional unsigned (|q|·m·S). "
    )

    @router.get(
        "/api/v1/positions",
        summary="List positions with current valuation",
        description=money_note
        + "Filters are comma-separated and OR-ed (tags: `tag_mode=all` for AND); unknown values → 422. "
        "Sort fields: " + ", ".join(SORT_FIELDS) + " (`-` for descending; id is the final tiebreaker). "
        "`limit` ≤ 1000. `meta.totals` gives both views, notional and unrealized P&L over the filtered open positions. "
        "`weight` = |dollar_exposure| / portfolio gross exposure (fraction). "
        "`include=greeks` (default) adds option Greeks.",
        response_model=PositionListResponse,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    async def list_positions(
        request: Request,
        portfolio_id: str | None = Query(None),
        raw: FilterParams = Depends(filter_params),
        include_closed: str | None = Query(None, description="Include closed positions (default false)"),
        include: str | None = Query(None, description="greeks (default), factors"),
        sort: str | None = Query(None, description="Default `symbol`"),
        limit: int = Query(50, description="1-1000"),
        offset: int = Query(0, description=">= 0"),
        principal: Principal = Depends(caller),
    ) -> Response:
        return await api.list_positions(
            request, principal, portfolio_id, raw, include_closed, include, sort, limit, offset
        )

    @router.get(
        "/api/v1/positions/grouped",
        summary="Positions grouped with subtotals",
        description=money_note
        + "`by` = type (default) | strategy | tag | underlying | sector | asset_class. Per group: count, both views, "
        "notional, share_of_gross (group gross exposure / portfolio gross exposure), pct_of_equity (group net "
        "exposure / equity), unrealized and daily P&L (USD) and dollar Greeks. Buckets: `(untagged)`, "
        "`(no strategy)`, sector `Unknown` and `ETF/Fund`. Only `by=tag` overlaps (`overlapping: true`: a position "
        "with several regular tags is in several groups; do not add groups up). Groups cover open positions.",
        response_model=GroupedResponse,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    async def grouped(
        request: Request,
        portfolio_id: str | None = Query(None),
        by: str | None = Query(None, description="type | strategy | tag | underlying | sector | asset_class"),
        raw: FilterParams = Depends(filter_params),
        include_positions: str | None = Query(None, description="Default true"),
        sort: str | None = Query(
            None, description="gross_exposure (default -gross_exposure), net_exposure, unrealized_pnl, count, key"
        ),
        principal: Principal = Depends(caller),
    ) -> Response:
        return await api.grouped(request, principal, portfolio_id, raw, by, include_positions, sort)

    @router.get(
        "/api/v1/positions/{id}",
        summary="One position in full",
        description=money_note
        + "`include` = greeks, factors, history (default greeks,factors). `security` comes from the security master; "
        "`valuations` (with history) are the daily valuations of the last 90 trading days. "
        "Another user's position → 404.",
        response_model=PositionDetailResponse,
        responses={404: {"description": "POSITION_NOT_FOUND"}},
    )
    async def one(
        request: Request,
        id: str,
        include: str | None = Query(None, description="greeks, factors, history"),
        principal: Principal = Depends(caller),
    ) -> Response:
        return await api.one(request, principal, id, include)

    @router.get(
        "/api/v1/strategies",
        summary="Strategies (strategy-type tags) with combined metrics",
        description=money_note
        + "One item per strategy tag of the portfolio owner with its legs in this portfolio: leg_count, underlyings, "
        "both views, notional, unrealized and daily P&L, dollar Greeks (null without legs). A position belongs to at "
        "most one strategy. `meta.untagged_positions` counts open positions without a strategy. "
        "Sort: name (default), gross_exposure, unrealized_pnl, count.",
        response_model=StrategiesResponse,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    async def strategies(
        request: Request,
        portfolio_id: str | None = Query(None),
        q: str | None = Query(None, description="Name prefix"),
        include_legs: str | None = Query(None, description="Default true"),
        sort: str | None = Query(None),
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(caller),
    ) -> Response:
        return await api.strategies(request, principal, portfolio_id, q, include_legs, sort, limit, offset)

    return router
