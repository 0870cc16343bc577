"""The provider interface and the plain data it returns."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from marketdata.providers.throttle import Throttle


@dataclass(frozen=True, slots=True)
class PriceBar:
    """One daily bar. Prices are per share (options: premium per share), 4-dp Decimals."""

    symbol: str
    price_date: date
    close: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    adj_close: Decimal | None = None
    volume: int | None = None
    implied_volatility: float | None = None
    dividend: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RateObservation:
    """One FRED-style observation; `value` is a fraction (0.0402 = 4.02 %)."""

    series_id: str
    observation_date: date
    value: float


@dataclass(frozen=True)
class SecurityInfo:
    """A provider's profile of one security (canonical symbol)."""

    symbol: str
    security_type: str
    name: str | None = None
    exchange: str | None = None
    country: str | None = None
    currency: str = "USD"
    sector: str | None = None
    industry: str | None = None
    market_cap: Decimal | None = None
    dividend_yield: float | None = None
    underlying_symbol: str | None = None
    option_type: str | None = None
    strike_price: Decimal | None = None
    expiration_date: date | None = None
    multiplier: int | None = None


@dataclass
class PriceFetch:
    """Bars for the symbols a provider could serve, and why the others failed."""

    rows: list[PriceBar] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class MarketDataProvider(abc.ABC):
    """A source of daily prices, rates and security profiles (canonical symbols in and out)."""

    name: str = "abstract"

    def __init__(self, throttle: Throttle | None = None) -> None:
        self.throttle = throttle or Throttle(self.name)

    @abc.abstractmethod
    async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
        """Daily bars in [start, end] per symbol; a symbol the provider cannot serve lands in `failed`."""

    @abc.abstractmethod
    async def fetch_rates(self, series_ids: Sequence[str], start: date, end: date) -> list[RateObservation]:
        """Rate observations (fractions) in [start, end]; bond-market holidays have no row."""

    @abc.abstractmethod
    async def profile(self, symbol: str) -> SecurityInfo | None:
        """The profile of `symbol`, or None when the provider does not know it."""

    @abc.abstractmethod
    def last_available_date(self, now: datetime) -> date:
        """The latest business date this provider can have a close for at `now` (UTC)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network resources (default: nothing to release)."""
