"""#21 `GET /api/v1/portfolio` and the helpers every book route shares (provenance, business dates)."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from common.api import envelope
from common.auth import principal_from_request
from common.db import Database
from common.formatting import utcnow
from ingest import catalog
from ingest.api_schemas import PortfolioSummaryResponse
from ingest.catalog import ViewCatalog
from ingest.summary_cache import SummaryCache
from ingest.summary_query import portfolio_summary

EASTERN = ZoneInfo("America/New_York")
ERRORS = {
    404: {"description": "PORTFOLIO_NOT_FOUND (also another user's portfolio)"},
    401: {"description": "UNAUTHENTICATED"},
}


def today_eastern(now: datetime | None = None) -> date:
    """The US/Eastern calendar date (I/O layer only)."""
    return (now or utcnow()).astimezone(EASTERN).date()


class Provenance:
    """`meta.data_source` (docs/contracts.md): `fixture` when SPY's close on the as-of date is a fixture row."""

    def __init__(self, db: Database, views: ViewCatalog, ttl: float = 60.0) -> None:
        self.db = db
        self.views = views
        self.ttl = ttl
        self._cache: dict[date, tuple[float, str]] = {}

    async def data_source(self, as_of: date | None) -> str | None:
        """`fixture` | `live` for `as_of`; None when there is no as-of date."""
        if as_of is None:
            return None
        hit = self._cache.get(as_of)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        source = "live"
        if await self.views.has(catalog.DAILY_PRICE):
            row = await self.db.fetchrow(
                "SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' AND price_date = $1", as_of
            )
            source = "fixture" if row is not None and row["source"] == "fixture" else "live"
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[as_of] = (time.monotonic(), source)
        return source


def create_portfolio_router(
    db: Database, views: ViewCatalog, cache: SummaryCache, fast_paths: dict[tuple[str, str], Any]
) -> APIRouter:
    """#21; also registered in `fast_paths` (common.app.FastPathMiddleware): it is the most-read route."""
    router = APIRouter(tags=["portfolio"])

    @router.get(
        "/api/v1/portfolio",
        summary="Portfolio summary: both exposure views, notional, P&L, counts, Greeks, freshness",
        description=(
            "Live valuation of one portfolio (`portfolio_id`, default: the caller's default portfolio). "
            "Money is USD as decimal strings; `_pct` fields are fractions of equity (null when equity ≤ 0). "
            "`market_value` is the capital view: signed q·m·P per position, long/short by quantity sign, "
            "gross = Σ|MV|, net = Σ MV. `exposure` is the directional view used for risk: signed dollar_exposure "
            "(stocks at market value, options q·m·Δ·S), long/short by the sign of the exposure, so written puts add "
            "to long and long puts to short exposure; `exposure.gross_pct`/`net_pct` are the gross and net leverage. "
            "`notional` is unsigned (Σ |q|·m·underlying price). `equity` = cash_balance + market_value.net. "
            "`pnl.unrealized` = Σ (market value − cost basis); `pnl.day` = Σ daily P&L; `mtd`/`ytd` come from daily "
            "snapshots and are null when history does not cover the period. `greeks` are dollar Greeks "
            "(`dollar_delta` = exposure.net; theta $/day, vega $/vol point, rho $/rate point). Options without a delta "
            "are left out of `exposure` and counted in `coverage.options_without_greeks`; unpriced positions are "
            "excluded from every total and counted in `coverage.positions_unpriced`. `meta.as_of` is the valuation "
            "date; `meta.data_source` is `fixture` or `live`."
        ),
        response_model=PortfolioSummaryResponse,
        responses=ERRORS,  # type: ignore[arg-type]
        openapi_extra={
            "parameters": [
                {
                    "name": "portfolio_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "format": "uuid"},
                    "description": "Portfolio id; default: the caller's default portfolio",
                }
            ],
        },
    )
    async def get_portfolio(request: Request) -> Response:
        # Parameters are read by hand (declared in `openapi_extra`): FastAPI's parameter solving
        # costs more than the statement behind this route, which is benchmarked at 1,500 req/s.
        principal = principal_from_request(request)
        portfolio_id = request.query_params.get("portfolio_id")
        key = (principal.user_id, principal.role, portfolio_id)

        async def compute() -> Any:
            return await portfolio_summary(db, await views.present(), principal, portfolio_id, utcnow())

        body, as_of, source = await cache.get_or_compute(key, compute)
        return envelope(body, request=request, as_of=as_of.isoformat() if as_of else None, data_source=source)

    fast_paths[("GET", "/api/v1/portfolio")] = get_portfolio

    return router
