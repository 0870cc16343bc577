"""Errors of the stress service."""

from __future__ import annotations

from common.errors import PermanentError


class StressError(PermanentError):
    """Base of the stress service's domain errors; `code` ends up in a failed step's error block."""

    code = "STRESS_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class PortfolioUnavailable(StressError):
    """The portfolio is not (or no longer) in ingest.api_portfolio: nothing to snapshot."""

    code = "PORTFOLIO_NOT_FOUND"


class NotATradingDay(StressError):
    """Snapshots exist for NYSE trading days only (calculations.md §9)."""

    code = "NOT_TRADING_DAY"
