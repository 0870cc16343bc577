"""Marketdata errors: provider failures (transient: retried, then the symbol is reported failed)
and the API errors this service raises."""

from __future__ import annotations

from common.errors import NotFound, SigmaSightError, TransientError


class MarketDataError(SigmaSightError):
    """Base of every marketdata-specific error."""


class ProviderError(TransientError):
    """A market-data provider call failed in a way that may succeed on retry (timeout, 5xx, throttling)."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderUnavailable(ProviderError):
    """The provider could not be reached at all after the configured retries."""


class UnknownSymbol(MarketDataError):
    """The provider does not know the symbol (permanent for this symbol)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"unknown symbol {symbol}")
        self.symbol = symbol


def symbol_not_found(symbol: str) -> NotFound:
    """404 SYMBOL_NOT_FOUND."""
    return NotFound("SYMBOL", f"Symbol {symbol} is not in the security master")
