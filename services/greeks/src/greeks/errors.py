"""Errors of the greeks service."""

from __future__ import annotations

from typing import Any

from common.errors import SigmaSightError, ValidationFailed


class GreeksError(SigmaSightError):
    """Base of greeks-specific failures."""


class UnknownSymbol(ValidationFailed):
    """422 UNKNOWN_SYMBOL: an underlying that the security master does not know."""

    code = "UNKNOWN_SYMBOL"

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("Unknown underlying symbol(s); not in the security master", details=details)
