"""Request bodies and OpenAPI response schemas of the stress-testing routes (api.md #36–#40).

Bodies are built as dicts and sent with orjson; these models document them. Money is USD as 2-dp
strings, `_pct` fields and factor moves are fractions (0.0481 = 4.81 %), shocks are fractional
factor moves (`interest_rate` in yield units: 0.01 = +100 bp).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.schemas import JobAcceptedOut, job_accepted_example

_PID = "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f"
_META: dict[str, Any] = {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z", "as_of": "2026-11-24",
         "data_source": "live"}  # fmt: skip


class CustomScenario(BaseModel):
    """An ad hoc scenario: factor-code shocks and an optional option-volatility shift."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    shocks: dict[str, float] = Field(
        description="{factor_code: shock}; returns within [−1, 1], `interest_rate` (yield change) within ±0.05"
    )
    option_iv_shift: float = Field(0.0, description="Vol points as a fraction added to option σ in revaluation")


class ImpactRequest(BaseModel):
    """#37 body: exactly one of `scenario_id` (catalogue) or `scenario` (custom)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"scenario_id": "market_down_10"},
                {"scenario": {"name": "Tech wobble", "shocks": {"market": -0.05, "growth": -0.08}}},
            ]
        },
    )

    portfolio_id: UUID | None = Field(None, description="Default: the caller's default portfolio")
    scenario_id: str | None = Field(None, min_length=1, max_length=64, description="Catalogue key (#36)")
    scenario: CustomScenario | None = None
    as_of_date: date | None = Field(None, description="Default: the latest date with factor exposures")

    @model_validator(mode="after")
    def _one_scenario(self) -> ImpactRequest:
        if (self.scenario_id is None) == (self.scenario is None):
            raise ValueError("give exactly one of scenario_id or scenario")
        return self


class CorrelatedImpactRequest(ImpactRequest):
    """#38 body: #37 plus an optional model-basis `matrix_id`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scenario_id": "financial_crisis_2008"}]}
    )

    matrix_id: UUID | None = Field(None, description="Default: the model matrix of the exposure date")


class ComprehensiveRequest(BaseModel):
    """#39 body: which catalogue scenarios to run (default every active one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}, {"categories": ["historical"]}]})

    portfolio_id: UUID | None = None
    categories: list[Literal["market", "rates", "rotation", "volatility", "historical"]] | None = Field(
        None, min_length=1
    )
    scenario_ids: list[str] | None = Field(None, min_length=1, max_length=100)
    as_of_date: date | None = Field(None, description="Default: the latest date with factor exposures")


# -- responses -------------------------------------------------------------------------------


class HistoricalPeriod(BaseModel):
    start_date: str | None
    end_date: str | None


class ScenarioOut(BaseModel):
    scenario_id: str = Field(description="Catalogue key, e.g. market_down_10")
    name: str
    description: str | None
    category: Literal["market", "rates", "rotation", "volatility", "historical"]
    severity: Literal["mild", "moderate", "severe", "extreme"]
    shocks: dict[str, float] = Field(description="{factor_code: shock} (fractions; interest_rate = yield change)")
    option_iv_shift: float = Field(description="Vol points (fraction) added to option σ in revaluation")
    historical_period: HistoricalPeriod | None
    active: bool
    display_order: int | None


class Page(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


_SCENARIO: dict[str, Any] = {
    "scenario_id": "market_down_10", "name": "Market Decline 10%",
    "description": "The S&P 500 (SPY) falls 10%; equals the −10% market-risk scenario.",
    "category": "market", "severity": "moderate", "shocks": {"market": -0.10}, "option_iv_shift": 0.0,
    "historical_period": None, "active": True, "display_order": 2,
}  # fmt: skip


class ScenarioListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": [_SCENARIO],
                "meta": {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"},
                "page": {"limit": 50, "offset": 0, "total": 18, "has_more": False},
            }
        }
    )
    data: list[ScenarioOut]
    meta: dict[str, Any]
    page: Page


class FactorImpact(BaseModel):
    factor: str
    shock: float
    exposure_dollar: str = Field(description="money; X_k = Σ_i E_i·β_{u(i),k}")
    pnl: str | None = Field(description="money; linear contribution X_k · move")
    conditional_move: float | None = Field(None, description="Correlated only: Σ_kk·w_k, the move applied to β_k")


class PositionImpact(BaseModel):
    position_id: str
    symbol: str
    underlying: str
    pnl: str = Field(description="money; stocks E·R, options fully revalued")
    linear_pnl: str | None = Field(description="money; E · β·move (no floor, no convexity)")
    direct_pnl: str | None = Field(None, description="Correlated responses: the same position's direct P&L")


class ScenarioRef(BaseModel):
    scenario_id: str | None
    name: str
    category: str
    severity: str | None
    shocks: dict[str, float]
    option_iv_shift: float


class Coverage(BaseModel):
    positions_total: int
    positions_included: int
    options_revalued: int
    options_linear_only: int
    positions_default_betas: int
    excluded: list[dict[str, Any]]


class MatrixRef(BaseModel):
    matrix_id: str
    calculation_date: str
    window: dict[str, Any]


class ImpactOut(BaseModel):
    portfolio_id: str
    calculation_date: str
    factor_exposures_date: str
    scenario: ScenarioRef
    equity: str
    direct_pnl: str = Field(description="money; Σ positions, no loss cap")
    direct_pnl_pct: float | None = Field(description="direct_pnl / equity (null when equity ≤ 0)")
    linear_pnl: str = Field(description="money; Σ_k X_k·ΔF_k")
    nonlinear_adjustment: str = Field(description="money; direct − linear (option convexity, −100 % floors)")
    factor_impacts: list[FactorImpact]
    top_position_impacts: list[PositionImpact]
    floored_positions: int = Field(description="Underlyings whose predicted return hit −100 %")
    flags: list[str]
    coverage: Coverage
    method: Literal["direct", "correlated"]


class CorrelatedImpactOut(ImpactOut):
    implied_factor_moves: dict[str, float] = Field(description="Σ_os·Σ_ss⁻¹·ΔF_s of the unshocked factors")
    correlated_pnl: str
    correlated_pnl_pct: float | None
    correlated_linear_pnl: str
    correlated_nonlinear_adjustment: str
    correlation_effect: str = Field(description="money; correlated − direct")
    correlated_factor_impacts: list[FactorImpact]
    correlated_floored_positions: int
    matrix: MatrixRef


_IMPACT: dict[str, Any] = {
    "portfolio_id": _PID, "calculation_date": "2026-11-24", "factor_exposures_date": "2026-11-24",
    "scenario": {"scenario_id": "market_down_10", "name": "Market Decline 10%", "category": "market",
                 "severity": "moderate", "shocks": {"market": -0.10}, "option_iv_shift": 0.0},
    "equity": "3501500.00", "direct_pnl": "-168410.00", "direct_pnl_pct": -0.0481,
    "linear_pnl": "-168410.00", "nonlinear_adjustment": "0.00",
    "factor_impacts": [{"factor": "market", "shock": -0.10, "exposure_dollar": "1684100.00", "pnl": "-168410.00"}],
    "top_position_impacts": [{"position_id": "…", "symbol": "NVDA", "underlying": "NVDA", "pnl": "-96320.00",
                              "linear_pnl": "-96320.00"}],
    "floored_positions": 0, "flags": [],
    "coverage": {"positions_total": 17, "positions_included": 17, "options_revalued": 0, "options_linear_only": 0,
                 "positions_default_betas": 0, "excluded": []},
    "method": "direct",
}  # fmt: skip


class ImpactResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"data": _IMPACT, "meta": _META}})
    data: ImpactOut
    meta: dict[str, Any]


class CorrelatedImpactResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": _IMPACT
                | {
                    "scenario": {
                        "scenario_id": "value_rotation_20",
                        "name": "Value Rotation 20%",
                        "category": "rotation",
                        "severity": "moderate",
                        "shocks": {"value": 0.20, "growth": -0.10},
                        "option_iv_shift": 0.0,
                    },
                    "direct_pnl": "-17000.00",
                    "linear_pnl": "-17000.00",
                    "implied_factor_moves": {"market": 0.0, "momentum": -0.0754688, "quality": 0.0470313},
                    "correlated_pnl": "-6406.25",
                    "correlated_pnl_pct": -0.0018,
                    "correlated_linear_pnl": "-6406.25",
                    "correlated_nonlinear_adjustment": "0.00",
                    "correlation_effect": "10593.75",
                    "correlated_factor_impacts": [
                        {
                            "factor": "value",
                            "shock": 0.2,
                            "exposure_dollar": "-50000.00",
                            "pnl": "-11875.00",
                            "conditional_move": 0.2375,
                        },
                        {
                            "factor": "growth",
                            "shock": -0.1,
                            "exposure_dollar": "70000.00",
                            "pnl": "5468.75",
                            "conditional_move": 0.078125,
                        },
                    ],
                    "correlated_floored_positions": 0,
                    "matrix": {
                        "matrix_id": "…",
                        "calculation_date": "2026-11-24",
                        "window": {"start_date": "2025-11-21", "end_date": "2026-11-24", "observations": 249},
                    },
                    "method": "correlated",
                },
                "meta": _META,
            }
        }
    )
    data: CorrelatedImpactOut
    meta: dict[str, Any]


class RunOut(BaseModel):
    stress_run_id: str
    calculation_date: str
    trigger: Literal["batch", "api"] | None
    scenarios: int
    matrix_id: str | None
    factor_exposure_date: str | None
    equity: str | None
    partial: bool
    created_at: str | None


class ResultOut(BaseModel):
    scenario_id: str
    name: str
    category: str
    severity: str
    shocks: dict[str, float]
    direct_pnl: str | None
    direct_pnl_pct: float | None
    linear_pnl: str | None = Field(description="Direct linear part Σ_k X_k·ΔF_k")
    nonlinear_adjustment: str | None = Field(description="direct − linear")
    correlated_pnl: str | None
    correlated_pnl_pct: float | None
    correlated_linear_pnl: str | None
    correlated_nonlinear_adjustment: str | None
    correlation_effect: str | None
    worst_factor: str | None
    flags: list[str]


class ResultsOut(BaseModel):
    portfolio_id: str
    run: RunOut
    summary: dict[str, Any]
    results: list[ResultOut]
    category_breakdown: dict[str, Any]
    coverage: dict[str, Any] | None


class ResultsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "portfolio_id": _PID,
                    "run": {
                        "stress_run_id": "…",
                        "calculation_date": "2026-11-24",
                        "trigger": "batch",
                        "scenarios": 18,
                        "matrix_id": "…",
                        "factor_exposure_date": "2026-11-24",
                        "equity": "3501500.00",
                        "partial": False,
                        "created_at": "2026-11-25T01:12:09Z",
                    },
                    "summary": {
                        "worst_case_pnl": "-1012400.00",
                        "worst_scenario": "dotcom_crash_2000",
                        "best_case_pnl": "421900.00",
                        "best_scenario": "market_rally_25",
                        "mean_pnl": "-151200.40",
                        "median_pnl": "-60310.00",
                        "scenarios_negative": 12,
                        "scenarios_positive": 6,
                        "mean_correlation_effect": "-20410.30",
                        "basis": "correlated_pnl",
                    },
                    "results": [
                        {
                            "scenario_id": "dotcom_crash_2000",
                            "name": "Dot-Com Crash Replay (2000-03-10 → 2002-10-09)",
                            "category": "historical",
                            "severity": "extreme",
                            "shocks": {
                                "market": -0.45,
                                "growth": -0.60,
                                "value": 0.20,
                                "momentum": -0.50,
                                "quality": 0.15,
                            },
                            "direct_pnl": "-940100.00",
                            "direct_pnl_pct": -0.2685,
                            "linear_pnl": "-951000.00",
                            "nonlinear_adjustment": "10900.00",
                            "correlated_pnl": "-1012400.00",
                            "correlated_pnl_pct": -0.2891,
                            "correlated_linear_pnl": "-1020000.00",
                            "correlated_nonlinear_adjustment": "7600.00",
                            "correlation_effect": "-72300.00",
                            "worst_factor": "growth",
                            "flags": [],
                        }
                    ],
                    "category_breakdown": {
                        "historical": {"count": 3, "worst_pnl": "-1012400.00", "mean_pnl": "-702113.00"}
                    },
                    "coverage": {
                        "positions_total": 30,
                        "positions_included": 30,
                        "options_revalued": 8,
                        "options_linear_only": 0,
                        "positions_default_betas": 0,
                        "excluded": [],
                    },
                },
                "meta": _META,
            }
        }
    )
    data: ResultsOut
    meta: dict[str, Any]


class JobAcceptedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=job_accepted_example(
            "str_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
            "stress.comprehensive",
            f"/api/v1/risk/stress-testing/results/{_PID}?stress_run_id=5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
        )
    )
    data: JobAcceptedOut
    meta: dict[str, Any]
