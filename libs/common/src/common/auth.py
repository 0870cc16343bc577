"""JWT verification shared by every service (api.md §2.2).

The gateway issues HS256 access tokens; services trust a principal only after verifying the
signature themselves (distributed mode) or when the in-process gateway put it in the ASGI scope
(all-in-one mode; the scope cannot be set from the network).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import jwt
from fastapi import Request

from common.errors import ApiError, Forbidden, NotFound, Unauthenticated

PRINCIPAL_SCOPE_KEY = "sigmasight.principal"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: UUID
    email: str
    role: Literal["user", "admin"]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_access_token(principal: Principal, secret: str, ttl_seconds: int, *, now: float | None = None) -> str:
    """An HS256 access token with the claims of api.md §2.2."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(principal.user_id),
        "email": principal.email,
        "role": principal.role,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_access_token(token: str, secret: str) -> Principal:
    """Principal from a bearer token; 401 UNAUTHENTICATED or TOKEN_EXPIRED otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat", "typ"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(
            "Access token expired; call POST /api/v1/auth/refresh",
            code="TOKEN_EXPIRED",
            status=401,
            hint="POST /api/v1/auth/refresh",
        ) from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("Missing, malformed or badly signed token") from exc
    if claims.get("typ") != "access" or claims.get("role") not in ("user", "admin"):
        raise Unauthenticated("Missing, malformed or badly signed token")
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthenticated("Missing, malformed or badly signed token") from exc
    return Principal(user_id=user_id, email=str(claims.get("email", "")), role=claims["role"])


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header, or 401."""
    if not authorization:
        raise Unauthenticated("Authorization header with a bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    return token.strip()


def principal_from_request(request: Request) -> Principal:
    """The caller, from the in-process scope or a verified JWT (401 otherwise)."""
    principal = request.scope.get("state", {}).get(PRINCIPAL_SCOPE_KEY)
    if isinstance(principal, Principal):
        return principal
    secret: str = request.app.state.jwt_secret
    principal = verify_access_token(bearer_token(request.headers.get("authorization")), secret)
    request.scope.setdefault("state", {})[PRINCIPAL_SCOPE_KEY] = principal
    return principal


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller. Async on purpose: FastAPI runs sync dependencies in a thread pool,
    and that hop costs more than most reads."""
    return principal_from_request(request)


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency: an admin caller, else 403 FORBIDDEN."""
    principal = principal_from_request(request)
    if not principal.is_admin:
        raise Forbidden("This endpoint requires the admin role")
    return principal


class _Owned(Protocol):
    @property
    def user_id(self) -> UUID: ...


OwnedT = TypeVar("OwnedT", bound=_Owned)
NO_PORTFOLIO_HINT = "POST /api/v1/portfolio/upload"


async def resolve_portfolio(
    principal: Principal,
    portfolio_id: UUID | None,
    *,
    by_id: Callable[[UUID], Awaitable[OwnedT | None]],
    default_of: Callable[[UUID], Awaitable[OwnedT | None]],
) -> OwnedT:
    """The requested portfolio (the caller's own, or any for an admin) or the caller's default.

    Another user's portfolio answers exactly like a missing one (404 PORTFOLIO_NOT_FOUND), so ids
    cannot be probed. Each service passes its own lookups (its view of ingest.api_portfolio).
    """
    if portfolio_id is not None:
        found = await by_id(portfolio_id)
        if found is None or (found.user_id != principal.user_id and not principal.is_admin):
            raise NotFound("PORTFOLIO")
        return found
    default = await default_of(principal.user_id)
    if default is None:
        raise NotFound("PORTFOLIO", "You have no portfolio yet; upload one first", hint=NO_PORTFOLIO_HINT)
    return default
