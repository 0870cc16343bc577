"""Request bodies and response schemas of the gateway's own routes (the OpenAPI document uses them)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.schemas import ErrorBody

# ---- request bodies ----------------------------------------------------------------------------


class LoginRequest(BaseModel):
    """Credentials for #1."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"email": "demo_hedgefundstyle@sigmasight.com", "password": "demo12345"}},
    )
    email: str = Field(min_length=3, max_length=320, description="Login email (case-insensitive)")
    password: str = Field(min_length=1, max_length=1024, description="Password")


class RefreshRequest(BaseModel):
    """The refresh token to rotate (#2)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"refresh_token": "rt_9c2b…"}})
    refresh_token: str = Field(min_length=1, max_length=512, description="Opaque `rt_…` token from login or refresh")


class LogoutRequest(BaseModel):
    """Optional refresh token to revoke with this login (#4)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"refresh_token": "rt_9c2b…"}})
    refresh_token: str | None = Field(None, max_length=512, description="Refresh token to revoke (optional)")


# ---- response schemas (OpenAPI only) -----------------------------------------------------------


class Meta(BaseModel):
    request_id: str = Field(description="Echo of X-Request-ID")
    timestamp: str = Field(description="UTC, ISO 8601 with Z")


class PortfolioRef(BaseModel):
    id: UUID
    name: str
    is_default: bool = Field(description="The portfolio used when a request names none")
    status: Literal["onboarding", "active", "archived"]


class UserOut(BaseModel):
    id: UUID
    email: str
    full_name: str
    role: Literal["user", "admin"]
    is_demo: bool
    portfolios: list[PortfolioRef]


class TokenData(BaseModel):
    access_token: str = Field(description="HS256 JWT; send as `Authorization: Bearer <token>`")
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Access-token lifetime in seconds (86400 = 24 h)")
    refresh_token: str = Field(description="Opaque, single-use `rt_…` token for POST /api/v1/auth/refresh")
    refresh_expires_in: int = Field(description="Refresh-token lifetime in seconds (2592000 = 30 days)")


class LoginData(TokenData):
    user: UserOut


_TOKENS_EXAMPLE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…",
    "token_type": "bearer",
    "expires_in": 86400,
    "refresh_token": "rt_9c2b…",
    "refresh_expires_in": 2592000,
}
_META_EXAMPLE: dict[str, Any] = {"request_id": "req_01JDX4K8Q7ZB3M5T9V2N6W8Y0A", "timestamp": "2026-11-25T14:03:22Z"}
_USER_ID = "5a7f5cbe-8d0b-5b1a-9a43-0f2b6f4f6d11"
_PORTFOLIO_ID = "0b8e6f2c-3f7e-5d6a-b1c2-93d4e5f60718"


class LoginResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    **_TOKENS_EXAMPLE,
                    "user": {
                        "id": _USER_ID,
                        "email": "demo_hedgefundstyle@sigmasight.com",
                        "full_name": "Demo Hedge Fund Style Investor",
                        "role": "user",
                        "is_demo": True,
                        "portfolios": [
                            {
                                "id": _PORTFOLIO_ID,
                                "name": "Demo Hedge Fund Style Investor Portfolio",
                                "is_default": True,
                                "status": "active",
                            }
                        ],
                    },
                },
                "meta": _META_EXAMPLE,
            }
        }
    )
    data: LoginData
    meta: Meta


class RefreshResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"data": _TOKENS_EXAMPLE, "meta": _META_EXAMPLE}})
    data: TokenData
    meta: Meta


class PortfolioSummary(PortfolioRef):
    equity: str | None = Field(description="money: cash + Σ open positions' signed market value; null before valuation")
    as_of: str | None = Field(description="Business date (US/Eastern) of the valuation behind `equity`")


class RateLimitInfo(BaseModel):
    limit: int = Field(description="Requests allowed per rolling window, per user")
    window_seconds: int


class NotificationRef(BaseModel):
    id: UUID
    kind: Literal["onboarding_completed", "onboarding_failed", "upload_failed", "run_failed"]
    severity: Literal["info", "warning", "error"]
    title: str
    portfolio_id: UUID | None
    link: str | None = Field(description="The API call that shows more (GET)")
    read: bool
    created_at: str = Field(description="UTC timestamp")


class NotificationsSummary(BaseModel):
    unread_count: int
    latest: list[NotificationRef] = Field(description="The newest notifications (up to 5), read or not")
    list_url: str = Field(description="All notifications, paged: GET /api/v1/notifications")


class MeData(BaseModel):
    id: UUID
    email: str
    full_name: str
    role: Literal["user", "admin"]
    is_demo: bool
    created_at: str = Field(description="UTC timestamp")
    last_login_at: str | None = Field(description="UTC timestamp of the last successful login")
    portfolios: list[PortfolioSummary]
    rate_limit: RateLimitInfo
    notifications: NotificationsSummary


class MeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "id": _USER_ID,
                    "email": "demo_hedgefundstyle@sigmasight.com",
                    "full_name": "Demo Hedge Fund Style Investor",
                    "role": "user",
                    "is_demo": True,
                    "created_at": "2026-11-20T09:00:00Z",
                    "last_login_at": "2026-11-25T14:03:22Z",
                    "portfolios": [
                        {
                            "id": _PORTFOLIO_ID,
                            "name": "Demo Hedge Fund Style Investor Portfolio",
                            "is_default": True,
                            "status": "active",
                            "equity": "3307150.00",
                            "as_of": "2026-11-24",
                        }
                    ],
                    "rate_limit": {"limit": 100, "window_seconds": 60},
                    "notifications": {
                        "unread_count": 1,
                        "latest": [
                            {
                                "id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                                "kind": "onboarding_completed",
                                "severity": "info",
                                "title": "Growth book is onboarded",
                                "portfolio_id": _PORTFOLIO_ID,
                                "link": f"/api/v1/portfolio?portfolio_id={_PORTFOLIO_ID}",
                                "read": False,
                                "created_at": "2026-11-25T14:03:22Z",
                            }
                        ],
                        "list_url": "/api/v1/notifications",
                    },
                },
                "meta": _META_EXAMPLE,
            }
        }
    )
    data: MeData
    meta: Meta


class HealthChecks(BaseModel):
    database: str | None = Field(None, description="ok | error")
    broker: str | None = Field(None, description="ok | error | in_process (all-in-one mode)")
    services: dict[str, str] | None = Field(None, description="Readiness of each service: ok | error")
    gateway: str | None = Field(None, description="Present for scope=gateway")


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "ok",
                "version": "1.0.0",
                "data_source": "fixture",
                "checks": {
                    "database": "ok",
                    "broker": "in_process",
                    "services": {s: "ok" for s in ("ingest", "marketdata", "greeks", "factors", "stress")},
                },
                "checked_at": "2026-11-25T14:03:22Z",
            }
        }
    )
    status: Literal["ok", "error"]
    version: str
    data_source: Literal["live", "fixture"]
    checks: HealthChecks
    checked_at: str


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": {
                    "code": "INVALID_CREDENTIALS",
                    "message": "Invalid email or password",
                    "details": [],
                    "retryable": False,
                    "hint": None,
                },
                "meta": _META_EXAMPLE,
            }
        }
    )
    error: ErrorBody
    meta: Meta


def error_responses(*codes: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting error statuses with the error envelope."""
    return {status: {"model": ErrorResponse, "description": text} for status, text in codes}
