"""Gateway errors (api.md §2.6); all are ApiErrors rendered in the standard envelope."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.errors import Conflict, Forbidden, NotFound, Unauthenticated

# One message for unknown email and wrong password: no user enumeration (FE-01 AC2).
INVALID_CREDENTIALS_MESSAGE = "Invalid email or password"


class InvalidCredentials(Unauthenticated):
    """401: unknown email or wrong password (`user_id` is kept for the activity log only)."""

    code = "INVALID_CREDENTIALS"

    def __init__(self, *, user_id: UUID | None = None, **kw: Any) -> None:
        super().__init__(INVALID_CREDENTIALS_MESSAGE, **kw)
        self.user_id = user_id


class AccountDisabled(Forbidden):
    """403: right password, inactive account."""

    code = "ACCOUNT_DISABLED"

    def __init__(self, *, user_id: UUID | None = None, **kw: Any) -> None:
        super().__init__("This account is disabled; contact your administrator", **kw)
        self.user_id = user_id


class InvalidRefreshToken(Unauthenticated):
    """401: refresh token unknown, expired, revoked or reused."""

    code = "INVALID_REFRESH_TOKEN"

    def __init__(self, *, user_id: UUID | None = None, **kw: Any) -> None:
        super().__init__(
            "Refresh token is unknown, expired, revoked or already used; log in again",
            hint="POST /api/v1/auth/login",
            **kw,
        )
        self.user_id = user_id


class RouteNotFound(NotFound):
    """404 ROUTE_NOT_FOUND: no service owns this path."""

    def __init__(self) -> None:
        super().__init__("ROUTE", "No such route")


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request")


class IdempotencyInProgress(Conflict):
    code = "IDEMPOTENCY_IN_PROGRESS"
    retryable = True

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )
