"""The offline fixture provider (demo.md §7): the default when no live provider is configured."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import numpy as np

from marketdata import fixture
from marketdata.demo_securities import LISTED, OPTION_BY_SYMBOL, VIX, DemoSecurity, market_cap
from marketdata.providers.base import MarketDataProvider, PriceBar, PriceFetch, RateObservation, SecurityInfo


def _profile(sec: DemoSecurity) -> SecurityInfo:
    return SecurityInfo(
        symbol=sec.symbol,
        security_type=sec.security_type,
        name=sec.name,
        exchange=sec.exchange,
        country=sec.country,
        currency="USD",
        sector=sec.sector,
        industry=sec.industry,
        market_cap=market_cap(sec),
        dividend_yield=sec.dividend_yield,
    )


def fixture_profile(symbol: str) -> SecurityInfo | None:
    """The fixture security master (demo.md §5 + factor ETFs + VIX + the 8 demo options)."""
    if symbol in LISTED:
        return _profile(LISTED[symbol])
    if symbol == VIX.symbol:
        return _profile(VIX)
    opt = OPTION_BY_SYMBOL.get(symbol)
    if opt is None:
        return None
    under = VIX if opt.underlying == "VIX" else LISTED[opt.underlying]
    kind = "Call" if opt.option_type == "C" else "Put"
    strike = Decimal(opt.strike)
    return SecurityInfo(
        symbol=opt.symbol,
        security_type="option",
        name=f"{opt.underlying} {opt.expiration.isoformat()} {strike:.2f} {kind}",
        exchange="OPRA",
        country=under.country,
        currency="USD",
        sector=under.sector,
        industry=under.industry,
        underlying_symbol=opt.underlying,
        option_type=opt.option_type,
        strike_price=strike,
        expiration_date=opt.expiration,
        multiplier=100,
    )


class FixtureProvider(MarketDataProvider):
    """Deterministic offline market ending at `end_date`; nothing exists after it."""

    name = "fixture"

    def __init__(self, end_date: date) -> None:
        super().__init__()
        self.end_date = end_date

    def market(self) -> fixture.FixtureMarket:
        return fixture.market_for(self.end_date)

    async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
        return await asyncio.to_thread(self._prices, list(symbols), start, end)

    def _prices(self, symbols: list[str], start: date, end: date) -> PriceFetch:
        fm = self.market()
        out = PriceFetch()
        for symbol in symbols:
            if symbol not in fm.series:
                out.failed[symbol] = "unknown to the offline fixture"
                continue
            bars = fixture.bars_as_tuples(fm, symbol, start, end)
            if not bars:
                out.failed[symbol] = f"no fixture prices between {start.isoformat()} and {end.isoformat()}"
                continue
            out.rows.extend(
                PriceBar(
                    symbol=symbol,
                    price_date=d,
                    close=close,
                    open=open_,
                    high=high,
                    low=low,
                    adj_close=close,
                    volume=volume,
                    implied_volatility=iv,
                )
                for d, close, open_, high, low, volume, iv in bars
            )
        return out

    async def fetch_rates(self, series_ids: Sequence[str], start: date, end: date) -> list[RateObservation]:
        fm = await asyncio.to_thread(self.market)
        lo, hi = fm.window(start, end)
        rows: list[RateObservation] = []
        for series_id in series_ids:
            values = fm.rates.get(series_id)
            if values is None:
                continue
            for i in range(lo, hi):
                if not np.isnan(values[i]):
                    rows.append(RateObservation(series_id, fm.dates[i], round(float(values[i]), 4)))
        return rows

    async def profile(self, symbol: str) -> SecurityInfo | None:
        return fixture_profile(symbol)

    def last_available_date(self, now: datetime) -> date:
        """The fixture is a frozen market: its end date, whatever the clock says."""
        return self.end_date
