"""Response schema of GET /api/v1/risk/metrics (api.md #33; OpenAPI only, bodies are built as dicts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Method = Literal["historical", "parametric", "parametric_ewma"]


class TailAmount(BaseModel):
    confidence: float = Field(description="0.95 or 0.99")
    horizon_days: int = Field(description="1 or 10 (10-day = 1-day × √10)")
    method: Method
    amount: str | None = Field(description="money; positive loss amount (null when not computable)")
    pct: float | None = Field(description="amount / equity (fraction; null when equity ≤ 0)")


class VarWindow(BaseModel):
    start_date: str | None
    end_date: str | None
    observations: int = Field(description="Daily returns in the window (60–252)")
    limited_history: bool = Field(description="Fewer than 252 observations")


class Volatility(BaseModel):
    ex_ante_annual: float | None = Field(description="σ_P·√252 / equity (fraction)")
    realized_annual: float | None = Field(description="std(r_p, ddof 1)·√252 of `series_type` (fraction)")
    sigma_daily: str | None = Field(description="money; σ_P, the 1-day standard deviation of P&L")
    series_type: Literal["realized", "simulated_history"]


class Beta(BaseModel):
    ex_ante: float | None = Field(description="Market factor exposure X_M / equity (#45)")
    realized: float | None = Field(description="OLS slope of portfolio daily returns on SPY's")
    alpha_daily: float | None
    r_squared: float | None
    observations: int
    series_type: Literal["realized", "simulated_history"]


class Performance(BaseModel):
    series_type: Literal["realized", "simulated_history"]
    observations: int
    start_date: str | None
    end_date: str | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float | None = Field(description="≤ 0, fraction of the wealth index peak")
    max_drawdown_peak_date: str | None
    max_drawdown_trough_date: str | None
    max_drawdown_recovery_date: str | None


class MarketScenario(BaseModel):
    scenario: str = Field(description="market_up_5 … market_down_20, ir_up_100bp … ir_down_200bp")
    kind: Literal["market", "interest_rate"]
    shock: float = Field(description="Market return or yield change (fraction; 0.01 = +100 bp)")
    predicted_pnl: str | None = Field(description="money; options fully revalued, returns floored at −100 %")
    predicted_pnl_pct: float | None
    linear_pnl: str | None = Field(description="money; factor dollar exposure × shock")
    nonlinear_adjustment: str | None = Field(description="money; predicted − linear")
    flags: list[str]


class RateSensitivity(BaseModel):
    exposure_dollar: str | None = Field(description="money; X_R, P&L per 1.00 change in the 10-year yield")
    dv01: str | None = Field(description="money; P&L per +1 bp (X_R / 10,000)")


class Proxied(BaseModel):
    symbol: str
    reason: str = Field(description="market_beta_proxy | default_beta_proxy | window_beta_proxy")
    days_proxied: int
    beta: float | None


class Coverage(BaseModel):
    positions_total: int
    positions_included: int = Field(description="Priced positions with a dollar exposure")
    proxied: list[Proxied]


class BacktestLevel(BaseModel):
    confidence: float
    observations: int
    exceptions: int | None
    exception_rate: float | None
    expected_exceptions: float | None
    kupiec_lr: float | None = Field(description="Kupiec proportion-of-failures LR statistic, χ²(1)")
    p_value: float | None
    result: Literal["accept", "reject"] | None = Field(description="at the 5 % test size")
    reason: str | None


class Backtest(BaseModel):
    method: Literal["historical"]
    horizon_days: int
    status: Literal["ok", "insufficient_history"]
    reason: str | None
    start_date: str | None
    end_date: str | None
    test: Literal["kupiec_pof"]
    test_size: float
    levels: list[BacktestLevel]


class Ewma(BaseModel):
    decay: float = Field(description="λ = 0.94")
    effective_window_days: float = Field(description="(1 + λ)/(1 − λ) ≈ 32")
    label: str
    sigma_daily: str | None


class RiskMetrics(BaseModel):
    portfolio_id: str
    calculation_date: str
    equity: str | None
    data_status: Literal["fresh", "stale", "partial"]
    var: list[TailAmount]
    expected_shortfall: list[TailAmount]
    var_window: VarWindow
    volatility: Volatility
    beta: Beta
    performance: Performance
    market_scenarios: list[MarketScenario]
    rate_sensitivity: RateSensitivity
    coverage: Coverage
    backtest: Backtest | None
    ewma: Ewma | None = Field(description="Only with include=parametric_ewma")
    flags: list[str]


class Meta(BaseModel):
    request_id: str | None = None
    timestamp: str
    as_of: str | None = None
    data_source: Literal["live", "fixture"] | None = None


_EXAMPLE: dict[str, Any] = {
    "portfolio_id": "0b8e5f1c-2a8b-5d7e-9c1f-3e4d5a6b7c8d",
    "calculation_date": "2026-11-24",
    "equity": "3501500.00",
    "data_status": "fresh",
    "var": [
        {"confidence": 0.95, "horizon_days": 1, "method": "historical", "amount": "61840.12", "pct": 0.017661},
        {"confidence": 0.95, "horizon_days": 1, "method": "parametric", "amount": "58302.77", "pct": 0.016651},
        {"confidence": 0.99, "horizon_days": 10, "method": "historical", "amount": "276610.40", "pct": 0.078998},
    ],
    "expected_shortfall": [
        {"confidence": 0.95, "horizon_days": 1, "method": "historical", "amount": "88412.90", "pct": 0.02525}
    ],
    "var_window": {"start_date": "2025-11-21", "end_date": "2026-11-24", "observations": 252, "limited_history": False},
    "volatility": {
        "ex_ante_annual": 0.1607,
        "realized_annual": 0.171,
        "sigma_daily": "35445.31",
        "series_type": "realized",
    },
    "beta": {
        "ex_ante": 0.481,
        "realized": 0.74,
        "alpha_daily": 0.0004,
        "r_squared": 0.66,
        "observations": 104,
        "series_type": "realized",
    },
    "performance": {
        "series_type": "realized",
        "observations": 104,
        "start_date": "2026-06-26",
        "end_date": "2026-11-23",
        "sharpe_ratio": 1.29,
        "sortino_ratio": 1.88,
        "max_drawdown": -0.041,
        "max_drawdown_peak_date": "2026-11-03",
        "max_drawdown_trough_date": "2026-11-11",
        "max_drawdown_recovery_date": None,
    },
    "market_scenarios": [
        {
            "scenario": "market_down_10",
            "kind": "market",
            "shock": -0.1,
            "predicted_pnl": "-168410.00",
            "predicted_pnl_pct": -0.0481,
            "linear_pnl": "-168410.00",
            "nonlinear_adjustment": "0.00",
            "flags": [],
        }
    ],
    "rate_sensitivity": {"exposure_dollar": "-2210460.00", "dv01": "-221.05"},
    "coverage": {
        "positions_total": 30,
        "positions_included": 30,
        "proxied": [{"symbol": "VIX", "reason": "market_beta_proxy", "days_proxied": 3, "beta": -3.1}],
    },
    "backtest": {
        "method": "historical",
        "horizon_days": 1,
        "status": "ok",
        "reason": None,
        "start_date": "2026-06-29",
        "end_date": "2026-11-23",
        "test": "kupiec_pof",
        "test_size": 0.05,
        "levels": [
            {
                "confidence": 0.99,
                "observations": 103,
                "exceptions": 2,
                "exception_rate": 0.019417,
                "expected_exceptions": 1.03,
                "kupiec_lr": 0.7146,
                "p_value": 0.3979,
                "result": "accept",
                "reason": None,
            }
        ],
    },
    "ewma": None,
    "flags": [],
}


class RiskMetricsEnvelope(BaseModel):
    data: RiskMetrics
    meta: Meta

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": _EXAMPLE,
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "live",
                },
            }
        }
    )
