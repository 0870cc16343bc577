"""Errors of the upload and onboarding flows that more than one place raises."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from common.errors import Conflict, TransientError
from ingest.upload.urls import status_url

# What reading another service's views can raise when that service (or its schema) is down.
MARKET_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class MarketDataUnavailable(TransientError):
    """The security master or prices could not be read (market data service or its schema down)."""


def upload_in_progress(portfolio_id: UUID, running: UUID | None) -> Conflict:
    """409 UPLOAD_IN_PROGRESS: one queued/processing upload per portfolio (`running` when known)."""
    details: dict[str, Any] = {"portfolio_id": str(portfolio_id)}
    if running is not None:
        details["upload_id"] = str(running)
        details["status_url"] = status_url(running)
    return Conflict(
        "Another upload for this portfolio is still queued or processing",
        code="UPLOAD_IN_PROGRESS",
        details=details,
        retryable=True,
    )


def portfolio_limit(limit: int, **details: Any) -> Conflict:
    """409 PORTFOLIO_LIMIT: checked when the upload is accepted and again when it creates the portfolio."""
    return Conflict(
        f"A user may own at most {limit} portfolios",
        code="PORTFOLIO_LIMIT",
        details={"limit": limit, **details},
    )
