"""OpenAPI response and request schemas of the book routes (documentation; bodies are built as dicts).

Money, prices and quantities are decimal strings (api.md §2.7); ratios and statistics numbers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Money = str
Price = str


class Meta(BaseModel):
    request_id: str | None = None
    timestamp: str
    as_of: str | None = Field(None, description="Valuation date (business date) the numbers belong to")
    data_source: Literal["live", "fixture"] | None = None


class Page(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class Views(BaseModel):
    long: Money
    short: Money = Field(description="≤ 0")
    gross: Money = Field(description="Σ |·| = long + |short|")
    net: Money = Field(description="Σ · = long + short")


class ViewsPct(Views):
    long_pct: float | None = Field(description="Fraction of equity; null when equity ≤ 0")
    short_pct: float | None
    gross_pct: float | None = Field(description="For `exposure`: gross leverage")
    net_pct: float | None = Field(description="For `exposure`: net leverage")


class DollarGreeks(BaseModel):
    dollar_delta: Money | None = Field(description="Σ dollar delta; equals exposure.net")
    dollar_gamma_1pct: Money | None = Field(description="Change of dollar delta for a 1 % underlying move")
    theta: float | None = Field(description="$ per calendar day")
    vega: float | None = Field(description="$ per volatility point")
    rho: float | None = Field(description="$ per percentage point of rates")


SUMMARY_EXAMPLE: dict[str, Any] = {
    "data": {
        "portfolio": {
            "id": "3f0c2a9e-6b1d-5c55-9d4e-1a2b3c4d5e6f",
            "name": "Demo Hedge Fund Style Investor Portfolio",
            "description": None,
            "status": "active",
            "currency": "USD",
            "is_default": True,
            "created_at": "2026-11-20T10:00:00Z",
        },
        "as_of": "2026-11-24",
        "valued_at": "2026-11-24T21:30:55Z",
        "equity": "3501500.00",
        "cash_balance": "1135300.00",
        "market_value": {
            "long": "3952950.00",
            "short": "-1586750.00",
            "gross": "5539700.00",
            "net": "2366200.00",
            "long_pct": 1.1289,
            "short_pct": -0.4532,
            "gross_pct": 1.5821,
            "net_pct": 0.6758,
        },
        "exposure": {
            "long": "9418701.35",
            "short": "-2171301.00",
            "gross": "11590002.35",
            "net": "7247400.35",
            "long_pct": 2.6899,
            "short_pct": -0.6201,
            "gross_pct": 3.31,
            "net_pct": 2.0698,
        },
        "notional": "35700700.00",
        "pnl": {"unrealized": "301500.00", "day": "0.00", "day_pct": 0.0, "mtd": "0.00", "ytd": None},
        "counts": {"total": 30, "LONG": 13, "SHORT": 9, "LC": 4, "LP": 0, "SC": 1, "SP": 3},
        "greeks": {
            "dollar_delta": "7247400.35",
            "dollar_gamma_1pct": "84120.55",
            "theta": -2410.7,
            "vega": 18830.1,
            "rho": 9120.6,
        },
        "risk": {"market_beta": 0.481, "annualized_volatility": 0.1607, "var_95_1d": "61840.12"},
        "coverage": {"positions_unpriced": 0, "positions_stale": 0, "options_without_greeks": 0},
        "freshness": {
            "prices_as_of": "2026-11-24",
            "last_snapshot_date": "2026-11-24",
            "last_run_status": "completed",
            "data_status": "fresh",
        },
    },
    "meta": {
        "request_id": "req_01JDX4K8Q7",
        "timestamp": "2026-11-25T14:03:22Z",
        "as_of": "2026-11-24",
        "data_source": "fixture",
    },
}


class PortfolioSummary(BaseModel):
    portfolio: dict[str, Any]
    as_of: str | None
    valued_at: str | None
    equity: Money = Field(description="cash_balance + market_value.net")
    cash_balance: Money
    market_value: ViewsPct = Field(description="Capital view: signed market values, long/short by quantity sign")
    exposure: ViewsPct = Field(description="Directional view: signed delta-adjusted dollar_exposure")
    notional: Money = Field(description="Unsigned Σ |q|·m·underlying price")
    pnl: dict[str, Any]
    counts: dict[str, int]
    greeks: DollarGreeks
    risk: dict[str, Any]
    coverage: dict[str, int]
    freshness: dict[str, Any]


class PortfolioSummaryResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": SUMMARY_EXAMPLE})
    data: PortfolioSummary
    meta: Meta


class TagRef(BaseModel):
    id: str
    name: str
    tag_type: Literal["regular", "strategy"]
    color: str


class OptionFields(BaseModel):
    option_type: Literal["C", "P"]
    strike_price: Price
    expiration_date: str
    days_to_expiry: int | None


class Greeks(BaseModel):
    delta: float | None = Field(description="Shares of underlying (position level, signed)")
    gamma: float | None
    theta: float | None = Field(description="$ per calendar day")
    vega: float | None = Field(description="$ per volatility point")
    rho: float | None = Field(description="$ per percentage point")
    dollar_delta: Money | None
    dollar_gamma_1pct: Money | None
    calculation_date: str | None
    status: Literal["ok", "expired", "missing_inputs", "error"]
    inputs: dict[str, Any]


POSITION_EXAMPLE: dict[str, Any] = {
    "id": "8d3f…",
    "portfolio_id": "3f0c…",
    "symbol": "NVDA",
    "instrument_type": "stock",
    "security_type": "stock",
    "position_type": "LONG",
    "quantity": "800",
    "multiplier": 1,
    "underlying_symbol": "NVDA",
    "option": None,
    "entry_price": "700.0000",
    "entry_date": "2024-01-05",
    "cost_basis": "560000.00",
    "last_price": "700.0000",
    "price_date": "2026-11-24",
    "price_source": "close",
    "underlying_price": None,
    "market_value": "560000.00",
    "dollar_exposure": "560000.00",
    "notional": "560000.00",
    "unrealized_pnl": "0.00",
    "unrealized_pnl_pct": 0.0,
    "daily_pnl": "0.00",
    "weight": 0.048317,
    "name": "NVIDIA Corporation",
    "sector": "Technology",
    "industry": "Semiconductors",
    "tags": [{"id": "…", "name": "Long Momentum", "tag_type": "strategy", "color": "#6B7280"}],
    "status": "open",
    "realized_pnl": None,
    "exit_price": None,
    "exit_date": None,
    "valued_at": "2026-11-24T21:30:55Z",
    "created_at": "2026-11-20T10:00:00Z",
    "updated_at": "2026-11-20T10:00:00Z",
    "greeks": None,
}


class Position(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": POSITION_EXAMPLE})
    id: str
    portfolio_id: str
    symbol: str
    instrument_type: Literal["stock", "option"]
    security_type: str | None
    position_type: Literal["LONG", "SHORT", "LC", "LP", "SC", "SP"]
    quantity: str = Field(description="Signed: negative = short / written")
    multiplier: int
    underlying_symbol: str
    option: OptionFields | None
    entry_price: Price
    entry_date: str
    cost_basis: Money = Field(description="quantity × entry_price × multiplier (signed)")
    last_price: Price | None
    price_date: str | None
    price_source: Literal["close", "stale", "model"] | None
    underlying_price: Price | None
    market_value: Money | None = Field(description="Signed q·m·P")
    dollar_exposure: Money | None = Field(description="Signed exposure: stocks = market value, options q·m·Δ·S")
    notional: Money | None = Field(description="Unsigned |q|·m·S")
    unrealized_pnl: Money | None
    unrealized_pnl_pct: float | None
    daily_pnl: Money | None
    weight: float | None = Field(description="|dollar_exposure| / portfolio gross exposure")
    name: str | None
    sector: str | None
    industry: str | None
    tags: list[TagRef]
    status: Literal["open", "closed"]
    realized_pnl: Money | None
    greeks: Greeks | None = None
    factors: dict[str, Any] | None = None
    created_at: str
    updated_at: str


class PositionsMeta(Meta):
    totals: dict[str, Any] = Field(
        description="Both views, notional and unrealized P&L over the filtered open positions"
    )


class PositionListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": [POSITION_EXAMPLE],
                "page": {"limit": 5, "offset": 0, "total": 30, "has_more": True},
                "meta": {
                    "request_id": "req_01JDX4K8Q7",
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "fixture",
                    "totals": {
                        "market_value": {
                            "long": "3952950.00",
                            "short": "-1586750.00",
                            "gross": "5539700.00",
                            "net": "2366200.00",
                        },
                        "exposure": {
                            "long": "9418701.35",
                            "short": "-2171301.00",
                            "gross": "11590002.35",
                            "net": "7247400.35",
                        },
                        "notional": "35700700.00",
                        "unrealized_pnl": "301500.00",
                    },
                },
            }
        }
    )
    data: list[Position]
    page: Page
    meta: PositionsMeta


class PositionDetail(Position):
    security: dict[str, Any] | None
    valuations: list[dict[str, Any]] | None = None


class PositionDetailResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    **POSITION_EXAMPLE,
                    "security": {
                        "name": "NVIDIA Corporation",
                        "security_type": "stock",
                        "exchange": "NASDAQ",
                        "country": "US",
                        "currency": "USD",
                        "sector": "Technology",
                        "industry": "Semiconductors",
                        "market_cap": "3300000000000.00",
                    },
                },
                "meta": {"timestamp": "2026-11-25T14:03:22Z", "as_of": "2026-11-24", "data_source": "fixture"},
            }
        }
    )
    data: PositionDetail
    meta: Meta


class Group(BaseModel):
    key: str
    label: str
    tag_id: str | None = None
    count: int
    market_value: Views
    exposure: Views
    notional: Money
    share_of_gross: float | None = Field(description="Group gross exposure / portfolio gross exposure")
    pct_of_equity: float | None = Field(description="Group net exposure / equity")
    unrealized_pnl: Money
    daily_pnl: Money
    greeks: DollarGreeks
    positions: list[Position] | None = None


GROUPED_EXAMPLE: dict[str, Any] = {
    "by": "strategy",
    "groups": [
        {
            "key": "Options Overlay",
            "tag_id": "…",
            "label": "Options Overlay",
            "count": 8,
            "market_value": {"long": "416250.00", "short": "-167750.00", "gross": "584000.00", "net": "248500.00"},
            "exposure": {"long": "5882001.35", "short": "-752301.00", "gross": "6634302.35", "net": "5129700.35"},
            "notional": "30745000.00",
            "share_of_gross": 0.5724,
            "pct_of_equity": 1.465,
            "unrealized_pnl": "36500.00",
            "daily_pnl": "0.00",
            "greeks": {
                "dollar_delta": "5129700.35",
                "dollar_gamma_1pct": "84120.55",
                "theta": -2410.7,
                "vega": 18830.1,
                "rho": 9120.6,
            },
            "positions": [],
        }
    ],
    "totals": {
        "market_value": {"long": "3952950.00", "short": "-1586750.00", "gross": "5539700.00", "net": "2366200.00"},
        "exposure": {"long": "9418701.35", "short": "-2171301.00", "gross": "11590002.35", "net": "7247400.35"},
        "notional": "35700700.00",
    },
    "overlapping": False,
}


class Grouped(BaseModel):
    by: Literal["type", "strategy", "tag", "underlying", "sector", "asset_class"]
    groups: list[Group]
    totals: dict[str, Any]
    overlapping: bool = Field(description="True only for by=tag: groups overlap and must not be added up")


class GroupedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": GROUPED_EXAMPLE,
                "meta": {"timestamp": "2026-11-25T14:03:22Z", "as_of": "2026-11-24", "data_source": "fixture"},
            }
        }
    )
    data: Grouped
    meta: Meta


class Strategy(BaseModel):
    tag_id: str
    name: str
    color: str
    leg_count: int
    underlyings: list[str]
    market_value: Views
    exposure: Views
    notional: Money
    unrealized_pnl: Money
    daily_pnl: Money
    greeks: DollarGreeks | None
    legs: list[dict[str, Any]] | None


class StrategiesMeta(Meta):
    untagged_positions: int = Field(description="Open positions with no strategy tag")


class StrategiesResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": [
                    {
                        "tag_id": "…",
                        "name": "bank-pair",
                        "color": "#3B82F6",
                        "leg_count": 2,
                        "underlyings": ["C", "JPM"],
                        "market_value": {
                            "long": "170000.00",
                            "short": "-110000.00",
                            "gross": "280000.00",
                            "net": "60000.00",
                        },
                        "exposure": {
                            "long": "170000.00",
                            "short": "-110000.00",
                            "gross": "280000.00",
                            "net": "60000.00",
                        },
                        "notional": "280000.00",
                        "unrealized_pnl": "0.00",
                        "daily_pnl": "0.00",
                        "greeks": {
                            "dollar_delta": "60000.00",
                            "dollar_gamma_1pct": "0.00",
                            "theta": 0.0,
                            "vega": 0.0,
                            "rho": 0.0,
                        },
                        "legs": [{"position_id": "…", "symbol": "JPM", "position_type": "LONG", "quantity": "1000"}],
                    }
                ],
                "page": {"limit": 50, "offset": 0, "total": 5, "has_more": False},
                "meta": {
                    "timestamp": "2026-11-25T14:03:22Z",
                    "as_of": "2026-11-24",
                    "data_source": "fixture",
                    "untagged_positions": 0,
                },
            }
        }
    )
    data: list[Strategy]
    page: Page
    meta: StrategiesMeta


class Tag(BaseModel):
    id: str
    name: str
    tag_type: Literal["regular", "strategy"]
    color: str
    description: str | None
    position_count: int
    created_at: str
    updated_at: str


TAG_EXAMPLE: dict[str, Any] = {
    "id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
    "name": "bank-pair",
    "tag_type": "strategy",
    "color": "#3B82F6",
    "description": None,
    "position_count": 2,
    "created_at": "2026-11-25T14:03:22Z",
    "updated_at": "2026-11-25T14:03:22Z",
}


class TagResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"data": TAG_EXAMPLE, "meta": {"timestamp": "2026-11-25T14:03:22Z"}}}
    )
    data: Tag
    meta: Meta


class TagListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": [TAG_EXAMPLE],
                "page": {"limit": 50, "offset": 0, "total": 1, "has_more": False},
                "meta": {"timestamp": "2026-11-25T14:03:22Z"},
            }
        }
    )
    data: list[Tag]
    page: Page
    meta: Meta


class CreateTagRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"name": "#strategy:bank-pair", "color": "#3B82F6"}}
    )
    name: str = Field(
        min_length=1, max_length=70, description="1-50 characters after trimming; `#strategy:` prefix → strategy tag"
    )
    tag_type: Literal["regular", "strategy"] | None = None
    color: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$")
    description: str | None = Field(None, max_length=255)


class ReplaceTagsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"tag_names": ["bank-pair"]}})
    tag_ids: list[str] | None = Field(None, max_length=100)
    tag_names: list[str] | None = Field(None, max_length=100)
    create_missing: bool = False


class PositionTagsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "position_id": "…",
                    "tags": [{"id": "…", "name": "bank-pair", "tag_type": "strategy", "color": "#3B82F6"}],
                },
                "meta": {"timestamp": "2026-11-25T14:03:22Z"},
            }
        }
    )
    data: dict[str, Any]
    meta: Meta


class BulkAssignRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"tag_ids": ["…"], "position_ids": ["…", "…"], "action": "add"}}
    )
    tag_ids: list[str] = Field(min_length=1, max_length=20)
    position_ids: list[str] = Field(min_length=1, max_length=1000)
    action: Literal["add", "remove"] = "add"


class BulkAssignResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"data": {"updated_positions": 2, "skipped": []}, "meta": {"timestamp": "2026-11-25T14:03:22Z"}}
        }
    )
    data: dict[str, Any]
    meta: Meta


class JobAcceptedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "job_id": "ing_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "job_type": "demo.reset",
                    "status": "queued",
                    "deduplicated": False,
                    "status_url": "/api/v1/jobs/ing_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "result_url": None,
                },
                "meta": {"timestamp": "2026-11-25T14:03:22Z"},
            }
        }
    )
    data: dict[str, Any]
    meta: Meta
