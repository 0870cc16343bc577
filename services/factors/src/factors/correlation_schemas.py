"""Request body and OpenAPI response schemas of the position-correlation routes (api.md #41–#43)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from common.schemas import JobAcceptedOut, job_accepted_example
from factors.correlation_compute import (
    CLUSTER_THRESHOLD,
    CORR_MIN_POSITION_VALUE,
    CORR_MIN_WEIGHT,
    MAX_DURATION_DAYS,
    MIN_DURATION_DAYS,
    POS_CORR_WINDOW,
    CorrelationFilters,
    FilterMode,
)


class PositionFiltersIn(BaseModel):
    """Node inclusion filter and clustering threshold."""

    model_config = ConfigDict(extra="forbid")

    min_position_value: Decimal = Field(
        CORR_MIN_POSITION_VALUE, ge=0, description="Minimum |node exposure| in USD (money; string or number)"
    )
    min_portfolio_weight: float = Field(
        CORR_MIN_WEIGHT, ge=0, le=1, description="Minimum |node exposure| / gross exposure, fraction (0.01 = 1 %)"
    )
    filter_mode: FilterMode = Field("both", description="How the two minimums combine")
    correlation_threshold: float = Field(
        CLUSTER_THRESHOLD, ge=0, le=1, description="Clusters join nodes whose average ρ is at least this"
    )

    def to_filters(self) -> CorrelationFilters:
        return CorrelationFilters(
            min_position_value=self.min_position_value,
            min_portfolio_weight=self.min_portfolio_weight,
            filter_mode=self.filter_mode,
            correlation_threshold=self.correlation_threshold,
        )


class CorrelationCalculateRequest(BaseModel):
    """#43 body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f",
                    "duration_days": 90,
                    "position_filters": {
                        "min_position_value": "10000",
                        "min_portfolio_weight": 0.01,
                        "filter_mode": "both",
                        "correlation_threshold": 0.7,
                    },
                    "force_recalculate": False,
                }
            ]
        },
    )

    portfolio_id: UUID
    duration_days: int = Field(POS_CORR_WINDOW, description="Trading-day returns in the window, 30–252")
    position_filters: PositionFiltersIn = Field(default_factory=PositionFiltersIn)
    force_recalculate: bool = Field(
        False, description="Recompute even when the included nodes, their exposures and the date are unchanged"
    )
    as_of_date: date | None = Field(None, description="Valuation date to use (default: the portfolio's latest)")

    @field_validator("duration_days")
    @classmethod
    def _duration(cls, value: int) -> int:
        if not MIN_DURATION_DAYS <= value <= MAX_DURATION_DAYS:
            raise PydanticCustomError("range", f"must be between {MIN_DURATION_DAYS} and {MAX_DURATION_DAYS}")
        return value


# ---------------------------------------------------------------- response schemas (OpenAPI only)


class ClusterMemberOut(BaseModel):
    symbol: str = Field(description="Underlying (node)")
    position_ids: list[str]
    exposure: str = Field(description="Node exposure e = Σ dollar_exposure (money, signed: negative = short)")
    share_of_gross: float | None = Field(description="|e| / Σ|e| of the included nodes, fraction")
    correlation_to_cluster: float | None = Field(description="Mean ρ with the other members")


class ClusterOut(BaseModel):
    cluster_id: str
    cluster_number: int = Field(description="1 = largest gross")
    nickname: str
    nickname_source: Literal["tag", "sector", "largest_position"]
    avg_correlation: float | None = Field(description="Mean ρ of the pairs inside the cluster")
    gross: str = Field(description="Σ|e| of members (money)")
    net: str = Field(description="Σe of members (money, signed)")
    share_of_gross: float | None = Field(description="gross / Σ|e| of the included nodes, fraction")
    members: list[ClusterMemberOut]


class CalculationFiltersOut(BaseModel):
    min_position_value: str
    min_portfolio_weight: float
    filter_mode: str
    correlation_threshold: float


class NodeFiltersOut(CalculationFiltersOut):
    nodes_included: int
    nodes_excluded: int
    narrowed_on_read: bool = Field(description="True when view or narrowing filters changed the stored node set")
    calculation_filters: CalculationFiltersOut = Field(description="Filters the stored calculation used")


class ExcludedNodeOut(BaseModel):
    symbol: str
    reason: Literal["below_filter", "insufficient_history", "missing_exposure"]
    exposure: str | None
    observations: int | None = Field(description="Returns of the underlying in the window")


class WindowOut(BaseModel):
    start_date: date | None = Field(description="Date of the first return")
    end_date: date | None
    returns: int = Field(description="Trading-day returns in the window (duration_days)")


class CorrelationMetricsOut(BaseModel):
    portfolio_id: str
    calculation_id: str
    calculation_date: date
    duration_days: int
    view: Literal["portfolio", "longs", "shorts"]
    overall_correlation: float | None = Field(description="Σ|e_u||e_v|ρ / Σ|e_u||e_v| over valid pairs")
    average_correlation: float | None = Field(description="Plain mean of ρ over valid pairs (signed)")
    direction_adjusted_correlation: float | None = Field(description="As overall, with sign(e_u)·sign(e_v)·ρ")
    correlation_concentration_score: float | None = Field(description="Σ clusters gross / Σ|e|, fraction")
    concentration_net: float | None = Field(description="Σ clusters |net| / Σ|e|, fraction")
    effective_positions: float | None = Field(description="1 / (aᵀRa), a = |e| weights, clipped to [1, N]")
    effective_positions_hhi: float | None = Field(description="1 / Σa²")
    data_quality: Literal["sufficient", "limited", "insufficient"]
    data_status: Literal["fresh", "stale", "partial", "insufficient_history"]
    window: WindowOut
    gross_exposure: str = Field(description="G = Σ|dollar_exposure| of every priced position (money)")
    clusters: list[ClusterOut]
    node_filters: NodeFiltersOut
    excluded: list[ExcludedNodeOut]
    flags: list[str]
    computed_at: str | None


_METRICS_EXAMPLE: dict[str, Any] = {
    "portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f",
    "calculation_id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
    "calculation_date": "2026-11-24",
    "duration_days": 90,
    "view": "portfolio",
    "overall_correlation": 0.38,
    "average_correlation": 0.31,
    "direction_adjusted_correlation": 0.12,
    "correlation_concentration_score": 0.41,
    "concentration_net": 0.22,
    "effective_positions": 9.7,
    "effective_positions_hhi": 14.2,
    "data_quality": "sufficient",
    "data_status": "fresh",
    "window": {"start_date": "2026-07-17", "end_date": "2026-11-24", "returns": 90},
    "gross_exposure": "11587200.00",
    "clusters": [
        {
            "cluster_id": "9d2c6f1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
            "cluster_number": 1,
            "nickname": "Long Momentum",
            "nickname_source": "tag",
            "avg_correlation": 0.78,
            "gross": "1462300.00",
            "net": "1462300.00",
            "share_of_gross": 0.1262,
            "members": [
                {
                    "symbol": "AMD",
                    "position_ids": ["1c5e…"],
                    "exposure": "194400.00",
                    "share_of_gross": 0.0168,
                    "correlation_to_cluster": 0.81,
                }
            ],
        }
    ],
    "node_filters": {
        "min_position_value": "10000.00",
        "min_portfolio_weight": 0.01,
        "filter_mode": "both",
        "correlation_threshold": 0.7,
        "nodes_included": 24,
        "nodes_excluded": 4,
        "narrowed_on_read": False,
        "calculation_filters": {
            "min_position_value": "10000.00",
            "min_portfolio_weight": 0.01,
            "filter_mode": "both",
            "correlation_threshold": 0.7,
        },
    },
    "excluded": [{"symbol": "ROKU", "reason": "below_filter", "exposure": "-108000.00", "observations": 0}],
    "flags": [],
    "computed_at": "2026-11-25T02:10:11Z",
}


class CorrelationMetricsResponse(BaseModel):
    data: CorrelationMetricsOut
    meta: dict[str, Any]

    model_config = {
        "json_schema_extra": {
            "example": {
                "data": _METRICS_EXAMPLE,
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "fixture",
                },
            }
        }
    }


class MatrixNodeOut(BaseModel):
    symbol: str
    position_ids: list[str]
    position_types: list[str]
    exposure: str = Field(description="e = Σ dollar_exposure (money, signed)")
    market_value: str | None = Field(description="Σ market_value (money, signed)")
    observations: int | None = Field(description="Returns of the underlying in the window")
    sector: str | None


class CorrelationMatrixOut(BaseModel):
    portfolio_id: str
    calculation_id: str
    calculation_date: date
    duration_days: int
    values: Literal["raw", "direction_adjusted"]
    view: Literal["portfolio", "longs", "shorts"]
    data_quality: Literal["sufficient", "limited", "insufficient"]
    window: WindowOut
    nodes: list[MatrixNodeOut]
    correlations: list[list[float | None]] = Field(
        description="Node order; symmetric; 1.0 diagonal; null below 30 common returns or outside min/max"
    )
    observations_matrix: list[list[int]] = Field(description="Common returns of each pair (diagonal: the node's)")
    p_values: list[list[float | None]] | None = Field(description="Two-sided Student-t p-values (include=p_values)")
    filters_applied: dict[str, Any]
    node_filters: NodeFiltersOut


class CorrelationMatrixResponse(BaseModel):
    data: CorrelationMatrixOut
    meta: dict[str, Any]

    model_config = {
        "json_schema_extra": {
            "example": {
                "data": {
                    "portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f",
                    "calculation_id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "calculation_date": "2026-11-24",
                    "duration_days": 90,
                    "values": "raw",
                    "view": "portfolio",
                    "data_quality": "sufficient",
                    "window": {"start_date": "2026-07-17", "end_date": "2026-11-24", "returns": 90},
                    "nodes": [
                        {
                            "symbol": "AAPL",
                            "position_ids": ["…"],
                            "position_types": ["LONG", "SP"],
                            "exposure": "310500.00",
                            "market_value": "295000.00",
                            "observations": 90,
                            "sector": "Technology",
                        },
                        {
                            "symbol": "MSFT",
                            "position_ids": ["…"],
                            "position_types": ["LONG"],
                            "exposure": "420000.00",
                            "market_value": "420000.00",
                            "observations": 90,
                            "sector": "Technology",
                        },
                    ],
                    "correlations": [[1.0, 0.71], [0.71, 1.0]],
                    "observations_matrix": [[90, 90], [90, 90]],
                    "p_values": None,
                    "filters_applied": {"view": "portfolio", "values": "raw", "position_types": []},
                    "node_filters": _METRICS_EXAMPLE["node_filters"],
                },
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "fixture",
                },
            }
        }
    }


class JobAcceptedResponse(BaseModel):
    data: JobAcceptedOut
    meta: dict[str, Any]

    model_config = {
        "json_schema_extra": job_accepted_example(
            "fac_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
            "correlations.calculate",
            "/api/v1/risk/correlations/positions/metrics?portfolio_id=3f0c…&duration_days=90",
        )
    }
