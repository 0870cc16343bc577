"""Request and response models of the export routes (api.md #69–#71)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Side = Literal["BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER"]
ExportFormat = Literal["csv", "json", "fix", "upload_csv"]
MAX_TRADES = 1000
_PID = "3f0c9a7e-1b2d-4c5e-8f90-0a1b2c3d4e5f"
_META: dict[str, Any] = {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"}


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class TradeIn(BaseModel):
    """One order line of the `trades` body field."""

    model_config = ConfigDict(extra="forbid")

    side: Side
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\- ]+$")
    quantity: Decimal = Field(gt=0, le=Decimal("1000000000"), description="Shares or contracts, > 0")
    order_type: Literal["MARKET", "LIMIT"] = "MARKET"
    limit_price: Decimal | None = Field(None, gt=0, le=Decimal("1000000"), description="Required for LIMIT")
    time_in_force: Literal["DAY", "GTC"] = "DAY"

    _up = field_validator("side", "order_type", "time_in_force", mode="before")(_upper)

    @field_validator("quantity", "limit_price")
    @classmethod
    def _four_decimals(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value != value.quantize(Decimal("0.0001")):
            raise ValueError("at most 4 decimal places")
        return value


class TradeExportRequest(BaseModel):
    """#69 body: exactly one of `session_id` or `trades`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"trades": [{"side": "SELL_SHORT", "symbol": "QQQ", "quantity": 595}], "format": "fix"},
                {"session_id": "0b8e6a8e-8c1d-4e0b-9a55-0c6a2f0e9d11", "format": "csv"},
            ]
        },
    )

    session_id: UUID | None = Field(None, description="Export the session's trades, netted per symbol")
    trades: list[TradeIn] | None = Field(None, min_length=1, max_length=MAX_TRADES)
    format: ExportFormat = Field(
        description="csv | json | fix (FIX 4.4 New Order Single per line) | upload_csv (positions file for #24)"
    )
    account: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.\-/]+$")
    fix_delimiter: Literal["soh", "pipe"] = "soh"

    _fmt = field_validator("format", "fix_delimiter", mode="before")(
        lambda v: v.strip().lower() if isinstance(v, str) else v
    )

    @model_validator(mode="after")
    def _one_source(self) -> TradeExportRequest:
        if (self.session_id is None) == (self.trades is None):
            raise ValueError("give exactly one of session_id or trades")
        return self


class TradeLineOut(BaseModel):
    line: int
    cl_ord_id: str = Field(description="FIX ClOrdID (11) of the line")
    side: Side
    symbol: str = Field(description="Ticker, or the compact OCC symbol of an option")
    quantity: str
    security_type: Literal["CS", "OPT"]
    underlying: str
    option_type: Literal["call", "put"] | None
    strike_price: str | None
    expiration_date: str | None
    open_close: Literal["O", "C"]
    order_type: Literal["MARKET", "LIMIT"]
    limit_price: str | None
    time_in_force: Literal["DAY", "GTC"]
    account: str | None
    reference_price: str | None = Field(description="Modelled (session) or upload entry price; not an order price")
    summary: str = Field(description="`SELL_SHORT 595 QQQ`")


class TradeExportOut(BaseModel):
    export_id: str
    format: ExportFormat
    trade_count: int
    file_name: str
    size_bytes: int
    download_url: str
    created_at: str
    expires_at: str
    session_id: str | None
    portfolio_id: str | None
    trades: list[TradeLineOut]


class TradeExportResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "export_id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "format": "csv",
                    "trade_count": 2,
                    "file_name": "sigmasight_trades_2026-11-25_5b1e0f3a.csv",
                    "size_bytes": 231,
                    "download_url": "/api/v1/export/5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11/download",
                    "created_at": "2026-11-25T14:03:22Z",
                    "expires_at": "2026-12-25T14:03:22Z",
                    "session_id": "0b8e6a8e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "portfolio_id": _PID,
                    "trades": [],
                },
                "meta": _META,
            }
        }
    )
    data: TradeExportOut
    meta: dict[str, Any]


class ExportItem(BaseModel):
    export_id: str
    export_type: Literal["trades", "report"]
    format: str
    file_name: str
    size_bytes: int | None
    trade_count: int | None
    portfolio_id: str | None
    session_id: str | None
    report_id: str | None
    created_at: str
    expires_at: str
    download_url: str | None = Field(description="null once the file has expired")


class ExportHistoryResponse(BaseModel):
    data: list[ExportItem]
    meta: dict[str, Any]
    page: dict[str, Any]
