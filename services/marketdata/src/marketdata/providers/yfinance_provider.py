"""Live prices and profiles through the `yfinance` library (MARKETDATA_PROVIDER=yfinance).

The network sits behind `YFinanceFetchLayer` (history DataFrame, info dict, option chain), so
tests replay recorded library responses. Every call goes through the provider's `Throttle`
(token bucket, timeout, retries with jittered exponential backoff).

Mapping notes:
* Canonical `VIX` (and other indices) are Yahoo `^VIX`; share classes use `-` on Yahoo too.
* `quoteType` → security_type: EQUITY stock, ETF etf, MUTUALFUND mutual_fund, INDEX index,
  OPTION option; other types are not securities SigmaSight holds (profile None).
* ETFs and funds get sector `ETF/Fund` (calculations.md §2.4) and their Yahoo `category` as industry.
* Dividend yield (fraction): `trailingAnnualDividendYield`, else `dividendYield` (Yahoo reports
  that one in percent since 2025), else the fund `yield`.
* Rates: Yahoo has no FRED constant-maturity series; `DGS3MO` is approximated by `^IRX`
  (13-week bill) and `DGS10` by `^TNX` (10-year yield), both quoted in percent. The other
  series are not available from this provider.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from marketdata import calendar
from marketdata.errors import ProviderError, UnknownSymbol
from marketdata.providers.base import MarketDataProvider, PriceBar, PriceFetch, RateObservation, SecurityInfo
from marketdata.providers.throttle import Throttle
from marketdata.symbols import canonical_symbol, parse_occ

INDEX_TICKERS = {"VIX": "^VIX", "SPX": "^GSPC", "NDX": "^NDX", "RUT": "^RUT", "DJI": "^DJI", "VXN": "^VXN"}
RATE_TICKERS = {"DGS3MO": "^IRX", "DGS10": "^TNX"}
QUOTE_TYPES = {"EQUITY": "stock", "ETF": "etf", "MUTUALFUND": "mutual_fund", "INDEX": "index", "OPTION": "option"}
EXCHANGES = {
    "NMS": "NASDAQ",
    "NGM": "NASDAQ",
    "NCM": "NASDAQ",
    "NAS": "NASDAQ",
    "NYQ": "NYSE",
    "NYS": "NYSE",
    "PCX": "ARCA",
    "ASE": "AMEX",
    "BTS": "CBOE",
    "CBO": "CBOE",
    "WCB": "CBOE",
    "OPR": "OPRA",
    "PNK": "OTC",
}
COUNTRIES = {
    "United States": "US",
    "Canada": "CA",
    "United Kingdom": "GB",
    "Ireland": "IE",
    "Netherlands": "NL",
    "Switzerland": "CH",
    "Germany": "DE",
    "France": "FR",
    "Japan": "JP",
    "China": "CN",
    "Hong Kong": "HK",
    "Taiwan": "TW",
    "Israel": "IL",
    "Bermuda": "BM",
    "Cayman Islands": "KY",
    "Luxembourg": "LU",
    "Denmark": "DK",
    "Sweden": "SE",
    "Australia": "AU",
    "Brazil": "BR",
    "India": "IN",
    "Singapore": "SG",
    "Mexico": "MX",
    "Uruguay": "UY",
    "Argentina": "AR",
}


class YFinanceFetchLayer(Protocol):
    """The three library calls the provider needs (blocking; run in a worker thread)."""

    def history(self, ticker: str, start: date, end_exclusive: date) -> pd.DataFrame:
        """`yf.Ticker(t).history(start, end, auto_adjust=False, actions=True)`."""

    def info(self, ticker: str) -> dict[str, Any]:
        """`yf.Ticker(t).info`."""

    def option_chain(self, ticker: str, expiry: date) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """(calls, puts) of `yf.Ticker(t).option_chain(expiry)`, or None when Yahoo lists no such expiry."""


class LiveYFinance:
    """The real fetch layer on the yfinance library (raises instead of logging and returning empty)."""

    def __init__(self, cache_dir: Path | None = None, timeout: float = 20.0) -> None:
        import yfinance as yf

        yf.config.debug.hide_exceptions = False
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(cache_dir))
        self.yf = yf
        self.timeout = timeout

    def history(self, ticker: str, start: date, end_exclusive: date) -> pd.DataFrame:
        frame: pd.DataFrame = self.yf.Ticker(ticker).history(
            start=start.isoformat(),
            end=end_exclusive.isoformat(),
            interval="1d",
            auto_adjust=False,
            actions=True,
            timeout=self.timeout,
        )
        return frame

    def info(self, ticker: str) -> dict[str, Any]:
        info: dict[str, Any] = self.yf.Ticker(ticker).info or {}
        return info

    def option_chain(self, ticker: str, expiry: date) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        try:
            chain = self.yf.Ticker(ticker).option_chain(expiry.isoformat())
        except ValueError:  # Yahoo does not list that expiry
            return None
        if chain.calls is None:
            return None
        return chain.calls, chain.puts


def _is_missing_error(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("YFTickerMissingError", "YFTzMissingError", "YFPricesMissingError") or "delisted" in str(exc)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _price(value: Any) -> Decimal | None:
    f = _num(value)
    if f is None or f <= 0:
        return None
    return Decimal(repr(round(f, 4)))


def yahoo_ticker(symbol: str) -> str:
    """Yahoo's spelling of a canonical symbol."""
    return INDEX_TICKERS.get(symbol, symbol)


def frame_to_bars(symbol: str, frame: pd.DataFrame, start: date, end: date) -> list[PriceBar]:
    """Daily bars from a yfinance history DataFrame (rows without a positive close are dropped)."""
    if frame is None or frame.empty:
        return []
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert("America/New_York")
    closes = frame["Close"] if "Close" in frame else pd.Series(dtype=float)
    out: list[PriceBar] = []
    for i, ts in enumerate(index):
        d = ts.date()
        if d < start or d > end:
            continue
        close = _price(closes.iloc[i])
        if close is None:
            continue
        row = frame.iloc[i]
        high, low = _price(row.get("High")), _price(row.get("Low"))
        if high is not None and low is not None and high < low:
            high, low = None, None
        volume = _num(row.get("Volume"))
        dividend = _num(row.get("Dividends"))
        out.append(
            PriceBar(
                symbol=symbol,
                price_date=d,
                close=close,
                open=_price(row.get("Open")),
                high=high,
                low=low,
                adj_close=_price(row.get("Adj Close")) or close,
                volume=None if volume is None or volume < 0 else int(volume),
                dividend=Decimal(repr(round(dividend, 6))) if dividend else None,
            )
        )
    return out


def _dividend_yield(info: dict[str, Any]) -> float | None:
    trailing = _num(info.get("trailingAnnualDividendYield"))
    if trailing is not None and trailing >= 0:
        return trailing
    percent = _num(info.get("dividendYield"))
    if percent is not None and percent >= 0:
        return percent / 100.0
    fund_yield = _num(info.get("yield"))
    if fund_yield is not None and fund_yield >= 0:
        return fund_yield
    return None


def info_to_security(symbol: str, info: dict[str, Any]) -> SecurityInfo | None:
    """A SecurityInfo from a yfinance info dict; None when Yahoo does not know the symbol."""
    quote_type = str(info.get("quoteType") or "").upper()
    security_type = QUOTE_TYPES.get(quote_type)
    if security_type is None:
        return None
    exchange_code = str(info.get("exchange") or "")
    exchange = EXCHANGES.get(exchange_code, exchange_code[:16] or None)
    if security_type == "mutual_fund":
        exchange = None
    sector = info.get("sector") or None
    industry = info.get("industry") or None
    if security_type in ("etf", "mutual_fund"):
        sector, industry = "ETF/Fund", info.get("category") or None
    elif security_type == "index":
        sector, industry = "Index", info.get("category") or None
    market_cap = _num(info.get("marketCap"))
    terms = parse_occ(symbol) if security_type == "option" else None
    return SecurityInfo(
        symbol=symbol,
        security_type=security_type,
        name=info.get("longName") or info.get("shortName") or None,
        exchange=exchange,
        country=COUNTRIES.get(str(info.get("country") or "")),
        currency=str(info.get("currency") or "USD").upper()[:3],
        sector=sector,
        industry=industry,
        market_cap=Decimal(int(market_cap)) if market_cap is not None and market_cap > 0 else None,
        dividend_yield=None if security_type in ("index", "option") else _dividend_yield(info),
        underlying_symbol=terms.underlying if terms else None,
        option_type=terms.option_type if terms else None,
        strike_price=terms.strike if terms else None,
        expiration_date=terms.expiration if terms else None,
        multiplier=100 if terms else None,
    )


class YFinanceProvider(MarketDataProvider):
    """Prices, profiles and (approximate) rates from Yahoo Finance via yfinance."""

    name = "yfinance"

    def __init__(
        self,
        fetch: YFinanceFetchLayer | None = None,
        *,
        throttle: Throttle | None = None,
        concurrency: int = 8,
        clock: Any = None,
    ) -> None:
        super().__init__(throttle or Throttle("yfinance", rate_per_minute=60, max_retries=3, timeout_seconds=30))
        self._fetch = fetch
        self.concurrency = concurrency
        self.clock = clock or (lambda: datetime.now(UTC))

    @property
    def fetch(self) -> YFinanceFetchLayer:
        if self._fetch is None:
            self._fetch = LiveYFinance()
        return self._fetch

    async def _call(self, what: str, fn: Any, *args: Any) -> Any:
        async def attempt() -> Any:
            try:
                return await asyncio.to_thread(fn, *args)
            except Exception as exc:
                if _is_missing_error(exc):
                    raise UnknownSymbol(str(args[0])) from exc
                if type(exc).__name__ == "YFRateLimitError":
                    raise ProviderError(self.name, f"rate limited on {what}") from exc
                if isinstance(exc, ProviderError | UnknownSymbol):
                    raise
                raise ProviderError(self.name, f"{what}: {type(exc).__name__}: {exc}") from exc

        return await self.throttle.call(attempt, what=what)

    async def _one_symbol(self, symbol: str, start: date, end: date) -> list[PriceBar]:
        frame = await self._call(
            f"history {symbol}", self.fetch.history, yahoo_ticker(symbol), start, end + timedelta(1)
        )
        bars = frame_to_bars(symbol, frame, start, end)
        terms = parse_occ(symbol)
        if terms is not None and bars:
            bars = await self._with_option_iv(terms.underlying, symbol, terms.expiration, terms.option_type, bars)
        return bars

    async def _with_option_iv(
        self, underlying: str, symbol: str, expiry: date, option_type: str, bars: list[PriceBar]
    ) -> list[PriceBar]:
        """Attach Yahoo's current implied volatility to the latest bar when that bar is the latest session."""
        latest = calendar.latest_completed_trading_day(self.clock())
        if bars[-1].price_date < latest:
            return bars
        try:
            chain = await self._call(
                f"option chain {underlying}", self.fetch.option_chain, yahoo_ticker(underlying), expiry
            )
        except (ProviderError, UnknownSymbol):
            return bars  # the price is stored without vendor IV; Greeks fall back (calculations.md §3.2)
        if chain is None:
            return bars
        frame = chain[0] if option_type == "C" else chain[1]
        match = frame[frame["contractSymbol"] == symbol] if "contractSymbol" in frame else frame.iloc[0:0]
        if match.empty:
            return bars
        iv = _num(match["impliedVolatility"].iloc[0])
        if iv is None or iv <= 0:
            return bars
        last = bars[-1]
        bars[-1] = PriceBar(
            symbol=last.symbol,
            price_date=last.price_date,
            close=last.close,
            open=last.open,
            high=last.high,
            low=last.low,
            adj_close=last.adj_close,
            volume=last.volume,
            implied_volatility=round(iv, 6),
            dividend=last.dividend,
        )
        return bars

    async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
        out = PriceFetch()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(symbol: str) -> None:
            async with gate:
                try:
                    bars = await self._one_symbol(symbol, start, end)
                except UnknownSymbol:
                    out.failed[symbol] = "unknown to Yahoo Finance"
                    return
                except ProviderError as exc:
                    out.failed[symbol] = str(exc)
                    return
            if bars:
                out.rows.extend(bars)
            else:
                out.failed[symbol] = f"no prices between {start.isoformat()} and {end.isoformat()}"

        await asyncio.gather(*(one(s) for s in symbols))
        out.rows.sort(key=lambda b: (b.symbol, b.price_date))
        return out

    async def fetch_rates(self, series_ids: Sequence[str], start: date, end: date) -> list[RateObservation]:
        rows: list[RateObservation] = []
        for series_id in series_ids:
            ticker = RATE_TICKERS.get(series_id)
            if ticker is None:
                continue
            frame = await self._call(f"history {ticker}", self.fetch.history, ticker, start, end + timedelta(1))
            for bar in frame_to_bars(series_id, frame, start, end):
                rows.append(RateObservation(series_id, bar.price_date, round(float(bar.close) / 100.0, 6)))
        return rows

    async def profile(self, symbol: str) -> SecurityInfo | None:
        try:
            info = await self._call(f"info {symbol}", self.fetch.info, yahoo_ticker(symbol))
        except UnknownSymbol:
            return None
        security = info_to_security(canonical_symbol(symbol), info or {})
        return security

    def last_available_date(self, now: datetime) -> date:
        """Yahoo publishes the close shortly after it: the latest completed NYSE session."""
        return calendar.latest_completed_trading_day(now)
