"""The gateway's own routes: #1-#4 auth, #5 health, #8 merged OpenAPI, and the /docs page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from common.api import JSONResponse, envelope
from common.auth import Principal, current_principal
from common.errors import RateLimited
from gateway.errors import AccountDisabled, InvalidCredentials, InvalidRefreshToken
from gateway.health import HealthChecker
from gateway.schemas import (
    HealthResponse,
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    MeResponse,
    RefreshRequest,
    RefreshResponse,
    error_responses,
)
from gateway.service import AuthService, ClientInfo

# Keys of the ASGI scope state shared with the edge (gateway.edge).
CLIENT_IP_KEY = "gateway.client_ip"
TOKEN_JTI_KEY = "gateway.token_jti"
ACTIVITY_KEY = "gateway.activity"

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# ---- helpers -----------------------------------------------------------------------------------


def _state(request: Request) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


def _client(request: Request) -> ClientInfo:
    ip = _state(request).get(CLIENT_IP_KEY) or (request.client.host if request.client else None)
    return ClientInfo(ip=ip, user_agent=request.headers.get("user-agent"))


def _activity(request: Request, action: str, user_id: UUID | None) -> None:
    """Tell the edge how to record this request in the activity log."""
    _state(request)[ACTIVITY_KEY] = {"action": action, "user_id": user_id}


def build_router(
    auth: AuthService,
    health: HealthChecker,
    openapi_document: Callable[[], Awaitable[bytes]],
) -> APIRouter:
    """Routes served by the gateway itself."""
    router = APIRouter()

    @router.post(
        "/api/v1/auth/login",
        tags=["auth"],
        summary="Log in with email and password",
        description=(
            "Exchanges email (case-insensitive) and password for an access token (HS256 JWT, `expires_in` "
            "seconds, default 86400) and an opaque single-use refresh token (`refresh_expires_in` seconds, "
            "30 days). `user.portfolios` lists the caller's portfolios, default first. Unknown email and wrong "
            "password give the same 401 `INVALID_CREDENTIALS`; a disabled account with the right password gives "
            "403 `ACCOUNT_DISABLED`; more than 10 attempts per minute per client IP and email give 429 "
            "`RATE_LIMITED` with `Retry-After` (seconds). No token needed."
        ),
        response_model=LoginResponse,
        responses=error_responses(
            (401, "INVALID_CREDENTIALS"), (403, "ACCOUNT_DISABLED"), (422, "VALIDATION_ERROR"), (429, "RATE_LIMITED")
        ),
    )
    async def login(request: Request, body: LoginRequest) -> Response:
        try:
            outcome = await auth.login(body.email, body.password, _client(request))
        except (InvalidCredentials, AccountDisabled) as exc:
            _activity(request, "login_failed", exc.user_id)
            raise
        except RateLimited:
            _activity(request, "login_failed", None)
            raise
        _activity(request, "login", outcome.user_id)
        headers = {**NO_STORE, **(outcome.rate.header_dict() if outcome.rate else {})}
        return envelope(outcome.body, request=request, headers=headers)

    @router.post(
        "/api/v1/auth/refresh",
        tags=["auth"],
        summary="Rotate tokens",
        description=(
            "Exchanges a refresh token for a new access token and a new refresh token (the old one is spent). "
            "Presenting a refresh token that was already used revokes every token of that login (theft "
            "detection). Lifetimes in seconds. Counts against the user's rate limit. No access token needed."
        ),
        response_model=RefreshResponse,
        responses=error_responses((401, "INVALID_REFRESH_TOKEN"), (403, "ACCOUNT_DISABLED"), (429, "RATE_LIMITED")),
    )
    async def refresh(request: Request, body: RefreshRequest) -> Response:
        try:
            outcome = await auth.refresh(body.refresh_token, _client(request))
        except (InvalidRefreshToken, AccountDisabled) as exc:
            _activity(request, "token.refresh_failed", exc.user_id)
            raise
        _activity(request, "token.refresh", outcome.user_id)
        headers = {**NO_STORE, **(outcome.rate.header_dict() if outcome.rate else {})}
        return envelope(outcome.body, request=request, headers=headers)

    @router.get(
        "/api/v1/auth/me",
        tags=["auth"],
        summary="The current user",
        description=(
            "The caller with their portfolios: `equity` is money (cash + Σ open positions' signed market value, "
            "null before the first valuation) as of `as_of` (US/Eastern business date); `rate_limit` states the "
            "per-user limit (requests per rolling `window_seconds`)."
        ),
        response_model=MeResponse,
        responses=error_responses((401, "UNAUTHENTICATED or TOKEN_EXPIRED"), (403, "ACCOUNT_DISABLED")),
    )
    async def me(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        return envelope(await auth.me(principal), request=request)

    @router.post(
        "/api/v1/auth/logout",
        tags=["auth"],
        status_code=204,
        summary="Log out",
        description=(
            "Revokes every refresh token of this login (the one issued with this access token) and, when given "
            "and owned by the caller, the presented refresh token's login. Access tokens are not revoked; they "
            "expire (`expires_in`). 204, no body."
        ),
        responses={204: {"description": "Logged out"}, **error_responses((401, "UNAUTHENTICATED"))},
    )
    async def logout(
        request: Request,
        body: LogoutRequest | None = Body(None),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        jti = _state(request).get(TOKEN_JTI_KEY)
        await auth.logout(principal, jti, body.refresh_token if body else None)
        _activity(request, "logout", principal.user_id)
        return Response(status_code=204)

    @router.get(
        "/health",
        tags=["platform"],
        summary="Aggregated health",
        description=(
            "`scope=gateway`: liveness of the gateway only (no I/O). `scope=all` (default): database, broker and "
            "every service's readiness, probed concurrently within a 2 s budget (results shared for 1 s). 200 when "
            "every check is ok (`broker: in_process` in all-in-one mode), else 503 with the failing check as "
            "`error`. `data_source` is `fixture` or `live`. No authentication; not rate limited."
        ),
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "A check failed"}},
    )
    async def get_health(
        scope: Literal["all", "gateway"] = Query("all", description="`all` or `gateway`"),
    ) -> Response:
        body = health.gateway_only() if scope == "gateway" else await health.all()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @router.get(
        "/api/v1/openapi.json",
        tags=["platform"],
        summary="Merged OpenAPI document",
        description=(
            "OpenAPI 3.1 description of every public route (the gateway's and each service's), with the bearer "
            "security scheme. No authentication."
        ),
        response_class=Response,
        responses={200: {"content": {"application/json": {"example": {"openapi": "3.1.0", "paths": {}}}}}},
    )
    async def openapi_json() -> Response:
        return Response(await openapi_document(), media_type="application/json")

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="SigmaSight API")

    return router
