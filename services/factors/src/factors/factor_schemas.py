"""Request bodies and OpenAPI response schemas of the factor routes (api.md #31, #32, #34, #35, #45–#47).

Units: betas, correlations, t/p-values, R², VIF and volatilities are JSON numbers; dollar exposures
are money strings (USD, 2 dp, signed: negative = short / short-delta); covariances are daily;
`annualized_volatility` = daily std × √252; returns and shares are fractions.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.schemas import JobAcceptedOut
from factors.compute import FACTOR_WINDOW

MIN_LOOKBACK, MAX_LOOKBACK = 60, 756


class Meta(BaseModel):
    request_id: str | None
    timestamp: str
    as_of: str | None = None
    data_source: Literal["live", "fixture"] | None = None


class PageOut(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


# ---------------------------------------------------------------- requests


class MatrixCalculateRequest(BaseModel):
    """#35 body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"as_of_date": "2026-11-24"}]})

    as_of_date: date | None = Field(None, description="Default: the latest trading day (newest SPY close)")
    lookback_days: int = Field(
        FACTOR_WINDOW, ge=MIN_LOOKBACK, le=MAX_LOOKBACK, description="Daily returns in the window, 60–756"
    )


class FactorCalculateRequest(BaseModel):
    """#47 body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f", "force": False}]},
    )

    portfolio_id: UUID
    as_of_date: date | None = Field(None, description="Default: the portfolio's latest valuation date")
    force: bool = Field(False, description="Recompute even when exposures for the date are already stored")


# ---------------------------------------------------------------- #34 / #35


class WindowOut(BaseModel):
    start_date: date
    end_date: date
    observations: int = Field(description="Listwise-complete daily return rows in the window")


class MatrixDiagnosticsOut(BaseModel):
    condition_number: float | None = Field(description="sqrt(λmax/λmin) of the correlation matrix (standardised)")
    eigenvalues: list[float | None] = Field(description="Of the correlation matrix, descending")
    vif: dict[str, float | None] = Field(description="Per factor: 1/(1−R²) against the other series, = diag(R⁻¹)")
    mean_off_diagonal: float | None
    max_off_diagonal: float | None
    min_off_diagonal: float | None


class HighPairOut(BaseModel):
    factor_1: str
    factor_2: str
    correlation: float | None


class FactorMatrixOut(BaseModel):
    matrix_id: UUID
    basis: Literal["model", "raw"]
    calculation_date: date
    lookback_days: int
    window: WindowOut
    factors: list[str] = Field(description="Factor codes in registry order (rows/columns)")
    series: list[str] = Field(description="Stored series names: codes (model) or proxies SPY, MTUM, …, dy10 (raw)")
    correlations: list[list[float | None]] = Field(description="Pearson ρ, symmetric, 1.0 diagonal, never clipped")
    covariance_daily: list[list[float | None]] = Field(description="Sample covariance of daily returns, ddof 1")
    annualized_volatility: dict[str, float | None]
    market_loadings: dict[str, float | None] | None = Field(
        description="model basis: slope b_k of each series on SPY used to orthogonalise; null on raw"
    )
    diagnostics: MatrixDiagnosticsOut
    high_correlation_pairs: list[HighPairOut] = Field(description="|ρ| > 0.8 (flagged on the model basis only)")
    flags: list[str]


class FactorMatrixResponse(BaseModel):
    data: FactorMatrixOut
    meta: Meta


# ---------------------------------------------------------------- #31 / #45


class FactorExposureOut(BaseModel):
    code: str
    name: str
    proxy: str | None
    beta: float | None = Field(description="exposure_dollar / equity")
    beta_gross: float | None = Field(description="exposure_dollar / gross exposure (Σ|dollar_exposure|)")
    exposure_dollar: str | None = Field(description="Σ positions' dollar_exposure × underlying beta (money)")
    largest_contributor: str | None
    contributing_positions: int | None
    status: Literal["ok", "not_calculated"]
    reason: str | None


class RateSensitivityOut(BaseModel):
    exposure_dollar: str | None = Field(description="P&L per 1.00 change of the 10-year yield (money)")
    dv01: str | None = Field(description="P&L per +1 bp (money)")
    beta: float | None


class CoverageOut(BaseModel):
    positions_total: int
    full_history: int
    limited_history: int
    default_betas: int
    excluded: list[dict[str, Any]] = Field(description="Positions left out of the exposure base, with reasons")
    coverage_pct: float | None = Field(description="Σ|E| of positions with regression betas / gross")


class StyleContributionOut(BaseModel):
    code: str
    contribution: str | None


class AttributionOut(BaseModel):
    start_date: date
    end_date: date
    days: int
    portfolio_pnl: str | None = Field(description="Σ stored snapshot daily P&L (null without snapshots)")
    market_contribution: str = Field(description="Σ_t X_M,prev · r_SPY,t (exact)")
    residual_after_market: str | None
    style_contributions: list[StyleContributionOut] = Field(description="Stand-alone, overlapping: never add up")
    non_additive: bool


class FactorExposuresOut(BaseModel):
    portfolio_id: UUID
    calculation_date: date
    data_status: Literal["fresh", "stale", "partial"]
    window: WindowOut | None
    equity: str | None
    gross_exposure: str | None
    factors: list[FactorExposureOut]
    rate_sensitivity: RateSensitivityOut
    coverage: CoverageOut
    flags: list[str]
    attribution: AttributionOut | None


class FactorExposuresResponse(BaseModel):
    data: FactorExposuresOut
    meta: Meta


# ---------------------------------------------------------------- #32 / #46


class PositionExposureOut(BaseModel):
    position_id: UUID
    symbol: str
    underlying_symbol: str
    position_type: str | None
    dollar_exposure: str | None = Field(description="The position's signed, delta-adjusted exposure E (money)")
    quality_flag: Literal["full_history", "limited_history", "insufficient_history"] | None
    beta_source: Literal["regression", "default"] | None
    observations: int | None
    window: dict[str, date] | None
    betas: dict[str, float | None] = Field(description="The underlying's betas (market: univariate OLS)")
    t_stats: dict[str, float | None]
    p_values: dict[str, float | None]
    std_errors: dict[str, float | None]
    r_squared: dict[str, float | None] = Field(description="Of the regression that produced each beta")
    adj_r_squared: dict[str, float | None]
    vif: dict[str, float | None] = Field(description="From the joint diagnostic fit (styles)")
    condition_number: float | None = Field(description="Standardised design of the joint diagnostic fit")
    r_squared_joint: float | None
    alpha_daily: float | None
    alpha_p_value: float | None
    residual_volatility: float | None = Field(description="Annualised")
    exposure_dollar: dict[str, str | None] = Field(description="E × beta per factor (money)")
    covered: bool = Field(description="False for default betas (fewer than 60 observations)")
    flags: list[str]


class PositionExposuresResponse(BaseModel):
    data: list[PositionExposureOut]
    page: PageOut
    meta: Meta


# ---------------------------------------------------------------- #47


class JobAcceptedResponse(BaseModel):
    data: JobAcceptedOut
    meta: Meta
