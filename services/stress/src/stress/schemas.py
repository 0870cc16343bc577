"""Response schemas of the stress routes (OpenAPI only; bodies are built as dicts and sent with orjson)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DataStatus = Literal["fresh", "stale", "partial", "no_history", "insufficient_history"]


class Meta(BaseModel):
    request_id: str | None = None
    timestamp: str
    as_of: str | None = Field(None, description="Latest snapshot date of the portfolio")
    data_source: Literal["live", "fixture"] | None = None


class Sides(BaseModel):
    long: str = Field(description="money; Σ of positive values")
    short: str = Field(description="money; Σ of negative values (≤ 0)")
    gross: str = Field(description="money; Σ |value| = long + |short|")
    net: str = Field(description="money; Σ value = long + short")


class ExposurePoint(BaseModel):
    date: str
    equity: str = Field(description="money; cash + net market value")
    market_value: Sides = Field(description="Capital view: signed market values, long/short by quantity sign")
    exposure: Sides = Field(description="Directional view: signed delta-adjusted dollar exposure")
    notional: str = Field(description="money; unsigned Σ |q|·m·S")
    gross_leverage: float | None = Field(description="gross exposure / equity (null when equity ≤ 0)")
    net_leverage: float | None = Field(description="net exposure / equity (null when equity ≤ 0)")


class Coverage(BaseModel):
    partial_points: int = Field(description="Snapshots in the window built with some inputs missing")


class ExposureSeries(BaseModel):
    portfolio_id: str
    period: str = Field(description="The named period, or `custom` for an explicit start_date")
    interval: Literal["daily", "weekly", "monthly"]
    start_date: str | None
    end_date: str | None
    partial: bool = Field(description="History starts after start_date (or the window was cut to 5 years)")
    first_available_date: str | None
    data_status: DataStatus
    points: list[ExposurePoint]
    coverage: Coverage


_POINT: dict[str, Any] = {
    "date": "2026-11-24",
    "equity": "3501500.00",
    "market_value": {"long": "3952950.00", "short": "-1586750.00", "gross": "5539700.00", "net": "2366200.00"},
    "exposure": {"long": "9418701.35", "short": "-2171301.00", "gross": "11590002.35", "net": "7247400.35"},
    "notional": "35700700.00",
    "gross_leverage": 3.310014,
    "net_leverage": 2.069799,
}


class ExposureEnvelope(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "portfolio_id": "0b8e5f1c-2a8b-5d7e-9c1f-3e4d5a6b7c8d",
                    "period": "month",
                    "interval": "daily",
                    "start_date": "2026-10-25",
                    "end_date": "2026-11-24",
                    "partial": False,
                    "first_available_date": "2026-07-14",
                    "data_status": "fresh",
                    "points": [_POINT],
                    "coverage": {"partial_points": 0},
                },
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "fixture",
                },
            }
        }
    )
    data: ExposureSeries
    meta: Meta


class PeriodBlock(BaseModel):
    start_date: str | None = Field(description="First snapshot date the period includes")
    pnl: str | None = Field(description="money; Σ daily P&L")
    return_: float | None = Field(alias="return", description="Time-weighted return (fraction)")
    partial: bool


class DayReturn(BaseModel):
    date: str
    return_: float = Field(alias="return")


class Stats(BaseModel):
    observations: int
    annualized_return: float | None = Field(description="(1 + total)^(252/n) − 1")
    annualized_volatility: float | None = Field(description="std(r, ddof=1)·√252")
    sharpe_ratio: float | None = Field(description="Daily excess over DGS3MO/252, ×√252")
    sortino_ratio: float | None
    max_drawdown: float | None = Field(description="≤ 0, on the wealth index starting at 1")
    max_drawdown_peak_date: str | None
    max_drawdown_trough_date: str | None
    max_drawdown_recovery_date: str | None
    best_day: DayReturn | None
    worst_day: DayReturn | None
    positive_days_pct: float | None
    risk_free_rate: float | None = Field(description="Mean annual 3-month bill rate over the window (fraction)")
    flags: list[str] | None = None


class Benchmark(BaseModel):
    symbol: str
    return_: float | None = Field(alias="return", description="Adjusted-close return over the same window")
    beta_realized: float | None = Field(description="OLS slope of portfolio on benchmark daily returns (≥ 60 obs)")
    correlation: float | None
    alpha_daily: float | None
    r_squared: float | None
    observations: int
    partial: bool


class SeriesPoint(BaseModel):
    date: str
    equity: str | None
    daily_pnl: str | None
    daily_return: float | None
    cumulative_return: float | None = Field(description="Compounded from the window's base (fraction)")
    drawdown: float | None
    benchmark_cumulative_return: float | None


class Performance(BaseModel):
    portfolio_id: str
    period: str
    start_date: str | None
    end_date: str | None
    partial: bool
    first_available_date: str | None
    observations: int = Field(description="Daily returns in the window")
    pnl: str | None = Field(description="money; Σ daily P&L over the window")
    return_: float | None = Field(alias="return", description="Π(1 + daily_return) − 1 (time-weighted)")
    periods: dict[str, PeriodBlock] = Field(description="day, week, month and ytd, ending at end_date")
    stats: Stats | None = Field(description="null below 2 observations; §8.5 statistics need 60")
    benchmark: Benchmark | None
    series: list[SeriesPoint] | None
    data_status: DataStatus
    coverage: Coverage


class PerformanceEnvelope(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "portfolio_id": "0b8e5f1c-2a8b-5d7e-9c1f-3e4d5a6b7c8d",
                    "period": "quarter",
                    "start_date": "2026-08-25",
                    "end_date": "2026-11-24",
                    "partial": False,
                    "first_available_date": "2026-07-01",
                    "observations": 63,
                    "pnl": "166108.40",
                    "return": 0.0498,
                    "periods": {
                        "day": {"start_date": "2026-11-24", "pnl": "4546.10", "return": 0.0013, "partial": False},
                        "week": {"start_date": "2026-11-18", "pnl": "-12298.30", "return": -0.0035, "partial": False},
                        "month": {"start_date": "2026-10-25", "pnl": "71346.10", "return": 0.0208, "partial": False},
                        "ytd": {"start_date": "2026-01-01", "pnl": "280540.40", "return": 0.0871, "partial": True},
                    },
                    "stats": {
                        "observations": 63,
                        "annualized_return": 0.262,
                        "annualized_volatility": 0.171,
                        "sharpe_ratio": 1.29,
                        "sortino_ratio": 1.88,
                        "max_drawdown": -0.041,
                        "max_drawdown_peak_date": "2026-11-03",
                        "max_drawdown_trough_date": "2026-11-11",
                        "max_drawdown_recovery_date": None,
                        "best_day": {"date": "2026-11-07", "return": 0.0141},
                        "worst_day": {"date": "2026-11-04", "return": -0.0162},
                        "positive_days_pct": 0.59,
                        "risk_free_rate": 0.0402,
                    },
                    "benchmark": {
                        "symbol": "SPY",
                        "return": 0.0151,
                        "beta_realized": 0.74,
                        "correlation": 0.81,
                        "alpha_daily": 0.00061,
                        "r_squared": 0.6561,
                        "observations": 63,
                        "partial": False,
                    },
                    "series": None,
                    "data_status": "fresh",
                    "coverage": {"partial_points": 0},
                },
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "live",
                },
            }
        }
    )
    data: Performance
    meta: Meta
