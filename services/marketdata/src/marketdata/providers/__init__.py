"""Market-data providers: the interface, throttling, the offline fixture and yfinance."""

from __future__ import annotations

from marketdata.providers.base import MarketDataProvider, PriceBar, PriceFetch, RateObservation, SecurityInfo
from marketdata.settings import Settings

__all__ = ["MarketDataProvider", "PriceBar", "PriceFetch", "RateObservation", "SecurityInfo", "build_provider"]


def build_provider(settings: Settings) -> MarketDataProvider:
    """The provider selected by MARKETDATA_PROVIDER (default: the offline fixture)."""
    if settings.provider_name == "yfinance":
        from marketdata.providers.yfinance_provider import YFinanceProvider

        return YFinanceProvider(concurrency=settings.fetch_concurrency)
    from marketdata.providers.fixture import FixtureProvider

    return FixtureProvider(settings.fixture_end_date)
