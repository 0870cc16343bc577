"""What onboarding reasons about: a portfolio's open positions (`Holding`) and what marketdata and
factors hold for their symbols (`MarketData`). Pure data plus the lookups every rule shares.

The reference trading date and the oldest date a close may have to count as current are passed
in (never read from the clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ingest.csv_format import is_classified

MIN_HISTORY_DAYS = 60  # calculations.md §0.6 FACTOR_MIN_OBS
FULL_HISTORY_DAYS = 252  # FACTOR_WINDOW: what collection aims for
HV_MIN_CLOSES = 21  # HV_WINDOW minimum of 20 returns
RISK_FREE_SERIES = ("DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2")


@dataclass(frozen=True, slots=True)
class SecurityInfo:
    """A row of marketdata.api_security (the fields onboarding uses)."""

    symbol: str
    security_type: str
    name: str | None = None
    sector: str | None = None
    industry: str | None = None

    @property
    def classified(self) -> bool:
        return is_classified(self.sector, self.industry)


@dataclass(frozen=True, slots=True)
class Quote:
    """Latest close on or before the reference date."""

    price_date: date
    close: Decimal
    implied_volatility: float | None = None


@dataclass(frozen=True, slots=True)
class FactorDef:
    """A row of factors.api_factor_definition."""

    code: str
    name: str
    proxy: str | None
    proxy_type: str | None
    calculation_method: str
    is_active: bool


@dataclass
class MarketData:
    """What marketdata and factors hold for one portfolio's symbols."""

    reference_date: date  # latest trading day on or before today (US/Eastern)
    current_since: date  # oldest close date still "current" (5 trading days, calculations.md §0.6)
    securities: Mapping[str, SecurityInfo] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    history: Mapping[str, int] = field(default_factory=dict)  # closes on or before the reference date
    rates: Mapping[str, int] = field(default_factory=dict)  # observations per series
    factors: Sequence[FactorDef] = ()

    def resolve(self, symbol: str) -> SecurityInfo | None:
        sec = self.securities.get(symbol)
        if sec is not None:
            return sec
        target = self.aliases.get(symbol) or self.aliases.get(symbol.replace("-", "."))
        return self.securities.get(target) if target else None

    def current_quote(self, symbol: str) -> Quote | None:
        quote = self.quotes.get(symbol)
        return quote if quote is not None and quote.price_date >= self.current_since else None

    def price_symbol(self, symbol: str) -> str:
        """The symbol prices are stored under: the master's spelling when `symbol` is an alias."""
        sec = self.resolve(symbol)
        return sec.symbol if sec is not None else symbol

    def current_quote_for(self, symbol: str) -> Quote | None:
        """`current_quote` of the symbol prices are stored under."""
        return self.current_quote(self.price_symbol(symbol))

    def history_days(self, symbol: str) -> int:
        """Closes on or before the reference date, under the symbol prices are stored under."""
        return self.history.get(self.price_symbol(symbol), 0)

    def unknown(self, symbols: Sequence[str]) -> list[str]:
        """Those of `symbols` the security master does not know (directly or by alias)."""
        return [s for s in symbols if self.resolve(s) is None]

    def without_current_close(self, symbols: Sequence[str]) -> list[str]:
        """Those of `symbols` without a close within the last 5 trading days."""
        return [s for s in symbols if self.current_quote_for(s) is None]

    @property
    def has_risk_free_curve(self) -> bool:
        return any(self.rates.get(s, 0) > 0 for s in RISK_FREE_SERIES)


@dataclass(frozen=True, slots=True)
class Holding:
    """An open position as onboarding sees it."""

    id: str
    symbol: str
    instrument_type: str
    position_type: str
    quantity: Decimal
    multiplier: int
    underlying_symbol: str
    entry_price: Decimal
    entry_date: date
    option_type: str | None = None
    strike_price: Decimal | None = None
    expiration_date: date | None = None


def underlyings(holdings: Sequence[Holding]) -> list[str]:
    """Distinct underlying symbols (stocks: themselves), in first-seen order."""
    return list(dict.fromkeys(h.underlying_symbol for h in holdings))


def option_symbols(holdings: Sequence[Holding]) -> list[str]:
    return list(dict.fromkeys(h.symbol for h in holdings if h.instrument_type == "option"))


def symbols_needed(holdings: Sequence[Holding]) -> list[str]:
    """Every symbol whose master row or prices onboarding reads."""
    return list(dict.fromkeys([*underlyings(holdings), *option_symbols(holdings)]))


def factor_proxies(market_factors: Sequence[FactorDef]) -> tuple[list[str], list[str]]:
    """(ETF proxy symbols, rate series ids) of the active regression factors."""
    etfs = [f.proxy for f in market_factors if f.is_active and f.proxy and f.proxy_type != "rate_series"]
    rates = [f.proxy for f in market_factors if f.is_active and f.proxy and f.proxy_type == "rate_series"]
    return etfs, rates
