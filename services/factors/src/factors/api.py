"""Factor routes available at this stage: the registry (#44)."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.api import envelope, page_block, parse_bool
from common.auth import Principal, current_principal
from common.db import Database
from factors.models import factor_definition


class FactorDefinitionOut(BaseModel):
    """One factor of the registry."""

    factor_id: str
    code: str = Field(description="Key used in scenarios, exposures and the API")
    name: str
    description: str | None
    factor_type: Literal["market", "style", "macro", "alternative"]
    proxy: str | None = Field(description="ETF symbol or rate series id; null when the factor has none")
    proxy_type: Literal["etf", "rate_series"] | None
    display_order: int
    calculation_method: Literal["regression", "not_calculated"]
    is_active: bool


class PageOut(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class FactorDefinitionsResponse(BaseModel):
    data: list[FactorDefinitionOut]
    page: PageOut = Field(description="The whole registry in one page (api.md §2.8)")

    model_config = {
        "json_schema_extra": {
            "example": {
                "data": [
                    {
                        "factor_id": "…",
                        "code": "market",
                        "name": "Market",
                        "description": "Broad US large-cap market: SPY total return.",
                        "factor_type": "market",
                        "proxy": "SPY",
                        "proxy_type": "etf",
                        "display_order": 0,
                        "calculation_method": "regression",
                        "is_active": True,
                    }
                ],
                "page": {"limit": 9, "offset": 0, "total": 9, "has_more": False},
            }
        }
    }


def create_router(db: Database) -> APIRouter:
    """Routes of the factor registry."""
    router = APIRouter(tags=["factors"])

    @router.get(
        "/api/v1/factors/definitions",
        summary="Factor registry in display order",
        description=(
            "The nine factor definitions: seven active equity factors proxied by ETFs (market SPY, momentum MTUM, "
            "value VTV, growth VUG, quality QUAL, size IWM, low volatility USMV; style factors are orthogonalised "
            "to the market), Short Interest (listed, inactive: no return series) and the interest-rate "
            "sensitivity on the daily change of the 10-year Treasury yield (DGS10)."
        ),
        response_model=FactorDefinitionsResponse,
    )
    async def list_definitions(
        request: Request,
        include_inactive: str | None = Query(None, description="Include inactive factors (default true)"),
        _: Principal = Depends(current_principal),
    ) -> Response:
        include = parse_bool(include_inactive, "include_inactive", True)
        query = sa.select(factor_definition).order_by(factor_definition.c.display_order)
        if not include:
            query = query.where(factor_definition.c.is_active)
        async with db.session() as session:
            rows = (await session.execute(query)).mappings().all()
        data = [
            {
                "factor_id": str(r["id"]),
                "code": r["code"],
                "name": r["name"],
                "description": r["description"],
                "factor_type": r["factor_type"],
                "proxy": r["proxy"],
                "proxy_type": r["proxy_type"],
                "display_order": r["display_order"],
                "calculation_method": r["calculation_method"],
                "is_active": r["is_active"],
            }
            for r in rows
        ]
        return envelope(data, request=request, page=page_block(max(len(data), 1), 0, len(data)))

    return router
