"""Error catalogue (api.md §2.6) and the exception types services raise.

API errors carry an HTTP status and a stable machine code; `common.app` turns them into the error
envelope. Bus handlers raise `TransientError` for retryable I/O failures (requeued, bounded by the
delivery limit) and anything else for permanent failures (dead-lettered at once).
"""

from __future__ import annotations

from typing import Any


class SigmaSightError(Exception):
    """Base of every error raised on purpose by SigmaSight code."""


class TransientError(SigmaSightError):
    """A failure that may succeed on retry (database or broker hiccup, provider timeout)."""


class PermanentError(SigmaSightError):
    """A failure that will not succeed on retry (bad data); dead-lettered immediately."""


class ApiError(SigmaSightError):
    """An error answered to an HTTP client in the error envelope."""

    status: int = 500
    code: str = "INTERNAL_ERROR"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: list[dict[str, Any]] | dict[str, Any] | None = None,
        retryable: bool | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The `error` object of the envelope."""
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details if self.details is not None else [],
            "retryable": self.retryable,
            "hint": self.hint,
        }


class BadRequest(ApiError):
    status, code = 400, "BAD_REQUEST"


class Unauthenticated(ApiError):
    status, code = 401, "UNAUTHENTICATED"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class NotFound(ApiError):
    """404 `<RESOURCE>_NOT_FOUND`; also used for other users' resources (no existence leak)."""

    status = 404

    def __init__(self, resource: str, message: str | None = None, **kw: Any) -> None:
        resource = resource.upper()
        super().__init__(
            message or f"{resource.replace('_', ' ').lower().capitalize()} not found",
            code=f"{resource}_NOT_FOUND",
            **kw,
        )


class NotCalculated(ApiError):
    """404 NOT_CALCULATED: the analytics asked for were never computed; `hint` names the trigger."""

    status, code = 404, "NOT_CALCULATED"


class Conflict(ApiError):
    status, code = 409, "INVALID_STATE"


class Gone(ApiError):
    status, code = 410, "GONE"


class PayloadTooLarge(ApiError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class ValidationFailed(ApiError):
    """422 VALIDATION_ERROR (or a domain code such as UNKNOWN_SYMBOL) with field details."""

    status, code = 422, "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, issue: str, value: Any = None, **kw: Any) -> ValidationFailed:
        """Shortcut for a single-field problem."""
        return cls(
            kw.pop("message", "Request failed validation"),
            details=[{"field": field, "issue": issue, "value": value}],
            **kw,
        )


class RateLimited(ApiError):
    status, code, retryable = 429, "RATE_LIMITED", True


class ServiceUnavailable(ApiError):
    status, code, retryable = 503, "SERVICE_UNAVAILABLE", True


class UpstreamError(ApiError):
    status, code, retryable = 502, "UPSTREAM_ERROR", True


class UpstreamTimeout(ApiError):
    status, code, retryable = 504, "UPSTREAM_TIMEOUT", True


STATUS_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "ROUTE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "INVALID_STATE",
    410: "GONE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "UPSTREAM_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "UPSTREAM_TIMEOUT",
}
