"""Request bodies and OpenAPI response schemas of the greeks routes (api.md #29, #30, §3.3)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.schemas import JobAcceptedOut, job_accepted_example
from greeks.occ import OccParseError, parse_occ

MAX_ADHOC_POSITIONS = 500


class AdHocPosition(BaseModel):
    """One hypothetical contract: an OCC symbol, or underlying/option_type/strike_price/expiration_date."""

    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(None, max_length=32, description="OCC symbol, e.g. AAPL271217C00250000")
    underlying: str | None = Field(None, min_length=1, max_length=12, description="Underlying ticker")
    option_type: Literal["C", "P"] | None = Field(None, description="C = call, P = put")
    strike_price: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=3, description="Strike (price)")
    expiration_date: date | None = None
    quantity: Decimal = Field(description="Signed contracts (negative = written); whole, non-zero")
    underlying_price: Decimal | None = Field(None, gt=0, description="Override: underlying price S")
    implied_volatility: float | None = Field(None, gt=0, le=5.0, description="Override: σ as a fraction (0.25)")
    risk_free_rate: float | None = Field(
        None, ge=-0.5, le=1.0, description="Override: continuously compounded r as a fraction (0.045)"
    )
    dividend_yield: float | None = Field(None, ge=-0.5, le=1.0, description="Override: continuous q as a fraction")

    @field_validator("option_type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("symbol")
    @classmethod
    def _occ(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_occ(value)
        except OccParseError as exc:
            raise ValueError(f"unparseable OCC option symbol ({exc})") from exc
        return value

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value == 0:
            raise ValueError("must be a non-zero number of contracts")
        if value != value.to_integral_value():
            raise ValueError("options are traded in whole contracts")
        if abs(value) > Decimal(10_000_000):
            raise ValueError("must be at most 10,000,000 contracts in absolute value")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> AdHocPosition:
        structured = (self.underlying, self.option_type, self.strike_price, self.expiration_date)
        if self.symbol is not None:
            if any(v is not None for v in structured):
                raise ValueError("give either symbol or underlying/option_type/strike_price/expiration_date, not both")
        elif any(v is None for v in structured):
            raise ValueError("give symbol, or all of underlying, option_type, strike_price and expiration_date")
        return self


class CalculateRequest(BaseModel):
    """#30 body: exactly one of `positions` (ad hoc) or `portfolio_id` (stored, async)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "positions": [
                        {
                            "underlying": "AAPL",
                            "option_type": "C",
                            "strike_price": 250,
                            "expiration_date": "2027-12-17",
                            "quantity": 10,
                        }
                    ]
                },
                {"portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f"},
            ]
        },
    )

    positions: list[AdHocPosition] | None = Field(None, min_length=1, max_length=MAX_ADHOC_POSITIONS)
    portfolio_id: UUID | None = None
    as_of_date: date | None = Field(None, description="Default: the latest trading day with a SPY close")

    @model_validator(mode="after")
    def _one_mode(self) -> CalculateRequest:
        if (self.positions is None) == (self.portfolio_id is None):
            raise ValueError("give exactly one of positions (ad hoc) or portfolio_id (stored)")
        return self


# ---------------------------------------------------------------- response schemas (OpenAPI only)


class GreeksInputs(BaseModel):
    underlying_price: str | None = Field(description="S (price)")
    underlying_price_date: date | None
    option_price: str | None = Field(description="The option's close used for the market IV (price)")
    implied_volatility: float | None = Field(description="σ used, fraction")
    iv_source: Literal["market", "vendor", "historical", "default", "override"] | None
    risk_free_rate: float | None = Field(description="Continuous r, fraction")
    dividend_yield: float | None = Field(description="Continuous q, fraction")
    time_to_expiry_years: float | None = Field(description="Calendar days / 365")
    days_to_expiry: int | None
    model_price: str | None = Field(description="BSM price per share (price)")


class PerShareGreeks(BaseModel):
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    rho: float | None


class GreeksOut(BaseModel):
    """api.md §3.3: position level, signed by quantity (per-share Greek × contracts × multiplier)."""

    delta: float | None = Field(description="Shares of underlying (share-equivalent)")
    gamma: float | None = Field(description="Change in delta per $1 move of the underlying")
    theta: float | None = Field(description="$ per calendar day")
    vega: float | None = Field(description="$ per 1 volatility point (0.01)")
    rho: float | None = Field(description="$ per 1 percentage point of rates (0.01)")
    dollar_delta: str | None = Field(description="delta × underlying price (money)")
    dollar_gamma_1pct: str | None = Field(description="gamma × underlying price² / 100 (money)")
    calculation_date: date | None
    status: Literal["ok", "expired", "missing_inputs", "error"]
    reason: str | None
    flags: list[str]
    per_share: PerShareGreeks
    inputs: GreeksInputs


class PositionGreeksOut(BaseModel):
    position_id: str
    symbol: str
    underlying: str
    option_type: Literal["C", "P"] | None
    strike_price: str | None
    expiration_date: date | None
    quantity: str
    multiplier: int | None
    greeks: GreeksOut


class OptionTotals(BaseModel):
    dollar_delta: str
    dollar_gamma_1pct: str
    theta: float
    vega: float
    rho: float


class UnderlyingGreeks(BaseModel):
    underlying: str
    stock_shares: str
    option_delta: float = Field(description="Σ position share deltas of the options")
    net_delta_shares: float = Field(description="stock_shares + option_delta")
    dollar_delta: str = Field(description="stock market value + option dollar delta (money)")
    option_dollar_delta: str
    dollar_gamma_1pct: str
    gamma: float
    theta: float
    vega: float
    rho: float
    option_positions: int


class Expiring(BaseModel):
    within_days: int
    positions: int
    dollar_delta: str
    dollar_gamma_1pct: str


class FailedPosition(BaseModel):
    position_id: str
    symbol: str
    status: str
    reason: str | None


class Coverage(BaseModel):
    option_positions: int
    ok: int
    expired: int
    missing_inputs: int
    error: int
    not_calculated: int
    failed: list[FailedPosition]


class GreeksSummary(BaseModel):
    portfolio_id: str
    view: Literal["portfolio", "longs", "shorts"]
    calculation_date: date | None
    data_status: Literal["fresh", "stale", "partial"]
    option_totals: OptionTotals
    portfolio_dollar_delta: str
    by_underlying: list[UnderlyingGreeks]
    expiring: Expiring
    coverage: Coverage
    note: str | None
    positions: list[PositionGreeksOut] | None


class Meta(BaseModel):
    request_id: str | None = None
    timestamp: str | None = None
    as_of: date | None = None
    data_source: Literal["live", "fixture"] | None = None


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "data": {
        "portfolio_id": "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f",
        "view": "portfolio",
        "calculation_date": "2026-11-24",
        "data_status": "fresh",
        "option_totals": {
            "dollar_delta": "5129700.35",
            "dollar_gamma_1pct": "84120.55",
            "theta": -2410.7,
            "vega": 18830.1,
            "rho": 9120.6,
        },
        "portfolio_dollar_delta": "7247400.35",
        "by_underlying": [
            {
                "underlying": "TSLA",
                "stock_shares": "800",
                "option_delta": -2950.2,
                "net_delta_shares": -2150.2,
                "dollar_delta": "-548301.00",
                "option_dollar_delta": "-752301.00",
                "dollar_gamma_1pct": "-1210.44",
                "gamma": -18.4,
                "theta": -85.2,
                "vega": -410.3,
                "rho": -120.5,
                "option_positions": 1,
            }
        ],
        "expiring": {"within_days": 7, "positions": 0, "dollar_delta": "0.00", "dollar_gamma_1pct": "0.00"},
        "coverage": {
            "option_positions": 8,
            "ok": 8,
            "expired": 0,
            "missing_inputs": 0,
            "error": 0,
            "not_calculated": 0,
            "failed": [],
        },
        "note": None,
        "positions": None,
    },
    "meta": {
        "request_id": "req_01JDX4K8Q7",
        "timestamp": "2026-11-25T14:03:22Z",
        "as_of": "2026-11-24",
        "data_source": "live",
    },
}


class GreeksSummaryResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _SUMMARY_EXAMPLE})
    data: GreeksSummary
    meta: Meta


class AdHocResult(BaseModel):
    input_index: int
    symbol: str
    underlying: str
    option_type: Literal["C", "P"] | None
    strike_price: str | None
    expiration_date: date | None
    quantity: str
    multiplier: int | None
    greeks: GreeksOut


class AdHocData(BaseModel):
    as_of_date: date
    results: list[AdHocResult]
    totals: OptionTotals


_ADHOC_EXAMPLE: dict[str, Any] = {
    "data": {
        "as_of_date": "2026-11-24",
        "results": [
            {
                "input_index": 0,
                "symbol": "XYZ261224C00105000",
                "underlying": "XYZ",
                "option_type": "C",
                "strike_price": "105.0000",
                "expiration_date": "2026-12-24",
                "quantity": "-5",
                "multiplier": 100,
                "greeks": {
                    "delta": -135.161,
                    "gamma": -23.0611,
                    "theta": 20.7766,
                    "vega": -47.3858,
                    "rho": -10.6388,
                    "dollar_delta": "-13516.10",
                    "dollar_gamma_1pct": "-2306.11",
                    "calculation_date": "2026-11-24",
                    "status": "ok",
                    "reason": None,
                    "flags": [],
                    "per_share": {
                        "delta": 0.270322,
                        "gamma": 0.0461222,
                        "theta": -0.0415533,
                        "vega": 0.0947717,
                        "rho": 0.0212777,
                    },
                    "inputs": {
                        "underlying_price": "100.0000",
                        "underlying_price_date": "2026-11-24",
                        "option_price": None,
                        "implied_volatility": 0.25,
                        "iv_source": "vendor",
                        "risk_free_rate": 0.05,
                        "dividend_yield": 0.02,
                        "time_to_expiry_years": 0.08219178,
                        "days_to_expiry": 30,
                        "model_price": "1.1444",
                    },
                },
            }
        ],
        "totals": {
            "dollar_delta": "-13516.10",
            "dollar_gamma_1pct": "-2306.11",
            "theta": 20.7766,
            "vega": -47.3858,
            "rho": -10.6388,
        },
    },
    "meta": {
        "request_id": "req_01JDX4K8Q7",
        "timestamp": "2026-11-25T14:03:22Z",
        "as_of": "2026-11-24",
        "data_source": "live",
    },
}


class AdHocResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _ADHOC_EXAMPLE})
    data: AdHocData
    meta: Meta


class JobAcceptedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=job_accepted_example(
            "grk_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
            "greeks.calculate",
            "/api/v1/risk/greeks?portfolio_id=3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f&as_of_date=2026-11-24",
        )
    )
    data: JobAcceptedOut
    meta: Meta
