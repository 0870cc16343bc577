"""The yfinance provider on recorded library responses (tests/fixtures/yfinance; no network)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

from marketdata.providers.throttle import Backoff, Throttle
from marketdata.providers.yfinance_provider import YFinanceProvider, info_to_security

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "yfinance"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # before the close: the latest session is 2026-11-24


class RecordedYFinance:
    """A fetch layer replaying recorded yfinance responses; unknown tickers raise like the library."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def history(self, ticker: str, start: date, end_exclusive: date) -> pd.DataFrame:
        self.calls.append(("history", ticker))
        path = RECORDED / "history" / f"{ticker}.csv"
        if not path.exists():
            raise YFTickerMissingError(ticker, "possibly delisted; no price data found")
        frame = pd.read_csv(path, index_col="Date")
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True)).tz_convert("America/New_York")
        frame.index.name = "Date"
        days = frame.index.date
        return frame[(days >= start) & (days < end_exclusive)]

    def info(self, ticker: str) -> dict[str, Any]:
        self.calls.append(("info", ticker))
        path = RECORDED / "info" / f"{ticker}.json"
        if not path.exists():
            path = RECORDED / "info" / "NOSUCH.json"
        return json.loads(path.read_text())

    def option_chain(self, ticker: str, expiry: date) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        self.calls.append(("option_chain", ticker))
        calls = RECORDED / "option_chain" / f"{ticker}_{expiry.isoformat()}_calls.csv"
        if not calls.exists():
            return None
        puts = RECORDED / "option_chain" / f"{ticker}_{expiry.isoformat()}_puts.csv"
        return pd.read_csv(calls, index_col=0), pd.read_csv(puts, index_col=0)


class NoSleep:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _provider(fetch: Any | None = None, retries: int = 2) -> tuple[YFinanceProvider, NoSleep]:
    sleep = NoSleep()
    throttle = Throttle(
        "yfinance", rate_per_minute=10_000, max_retries=retries, backoff=Backoff(rng=random.Random(3)), sleep=sleep
    )
    return YFinanceProvider(fetch or RecordedYFinance(), throttle=throttle, clock=lambda: NOW), sleep


async def test_daily_bars_map_ohlc_adjusted_close_volume_and_dividends() -> None:
    provider, _ = _provider()
    out = await provider.fetch_prices(["AAPL"], date(2026, 11, 10), date(2026, 11, 24))
    assert out.failed == {}
    assert len(out.rows) == 11
    first, last = out.rows[0], out.rows[-1]
    assert first.price_date == date(2026, 11, 10) and first.dividend == Decimal("0.26")
    assert (last.open, last.high, last.low, last.close, last.adj_close) == (
        Decimal("225.3"), Decimal("226.1"), Decimal("224.02"), Decimal("225.0"), Decimal("225.0"),
    )  # fmt: skip
    assert last.volume == 40123500 and last.dividend is None and last.implied_volatility is None


async def test_window_is_inclusive_and_nothing_outside_it_is_returned() -> None:
    provider, _ = _provider()
    out = await provider.fetch_prices(["AAPL"], date(2026, 11, 18), date(2026, 11, 20))
    assert [b.price_date for b in out.rows] == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]


async def test_index_symbols_use_the_yahoo_caret_ticker() -> None:
    fetch = RecordedYFinance()
    provider, _ = _provider(fetch)
    out = await provider.fetch_prices(["VIX"], date(2026, 11, 18), date(2026, 11, 24))
    assert ("history", "^VIX") in fetch.calls
    assert out.rows[-1].symbol == "VIX" and out.rows[-1].close == Decimal("18.5")


async def test_option_history_skips_empty_rows_and_takes_vendor_iv_from_the_chain() -> None:
    provider, _ = _provider()
    out = await provider.fetch_prices(["SPY270917C00460000"], date(2026, 11, 18), date(2026, 11, 24))
    dates = [b.price_date for b in out.rows]
    assert date(2026, 11, 20) not in dates and len(dates) == 4  # the NaN row is dropped
    assert out.rows[-1].implied_volatility == pytest.approx(0.1812)
    assert all(b.implied_volatility is None for b in out.rows[:-1])


async def test_unknown_symbols_fail_alone_and_are_not_retried() -> None:
    fetch = RecordedYFinance()
    provider, sleep = _provider(fetch)
    out = await provider.fetch_prices(["AAPL", "NOSUCH"], date(2026, 11, 20), date(2026, 11, 24))
    assert {b.symbol for b in out.rows} == {"AAPL"}
    assert out.failed == {"NOSUCH": "unknown to Yahoo Finance"}
    assert fetch.calls.count(("history", "NOSUCH")) == 1 and sleep.sleeps == []


async def test_rate_limiting_is_retried_with_backoff_then_reported_per_symbol() -> None:
    class RateLimited(RecordedYFinance):
        def history(self, ticker: str, start: date, end_exclusive: date) -> pd.DataFrame:
            if ticker == "BRK-B":
                self.calls.append(("history", ticker))
                raise YFRateLimitError()
            return super().history(ticker, start, end_exclusive)

    fetch = RateLimited()
    provider, sleep = _provider(fetch, retries=2)
    out = await provider.fetch_prices(["AAPL", "BRK-B"], date(2026, 11, 20), date(2026, 11, 24))
    assert fetch.calls.count(("history", "BRK-B")) == 3  # first try + 2 retries
    assert len(sleep.sleeps) == 2 and sleep.sleeps[1] > sleep.sleeps[0] / 2
    assert "BRK-B" in out.failed and "rate limited" in out.failed["BRK-B"]
    assert {b.symbol for b in out.rows} == {"AAPL"}


async def test_network_errors_are_transient_provider_errors() -> None:
    class Offline(RecordedYFinance):
        def history(self, ticker: str, start: date, end_exclusive: date) -> pd.DataFrame:
            raise ConnectionError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com")

    provider, sleep = _provider(Offline(), retries=1)
    out = await provider.fetch_prices(["AAPL"], date(2026, 11, 20), date(2026, 11, 24))
    assert out.rows == [] and "after 2 attempt(s)" in out.failed["AAPL"]
    assert len(sleep.sleeps) == 1


async def test_rates_come_from_yahoo_yield_indices_as_fractions() -> None:
    provider, _ = _provider()
    rows = await provider.fetch_rates(["DGS1MO", "DGS3MO", "DGS10"], date(2026, 11, 20), date(2026, 11, 24))
    by_series = {(r.series_id, r.observation_date): r.value for r in rows}
    assert by_series[("DGS10", date(2026, 11, 24))] == pytest.approx(0.043)
    assert by_series[("DGS3MO", date(2026, 11, 24))] == pytest.approx(0.04348)
    assert not any(series == "DGS1MO" for series, _ in by_series)  # not available from Yahoo


async def test_profiles_map_quote_types_classification_and_dividend_yield() -> None:
    provider, _ = _provider()
    aapl = await provider.profile("AAPL")
    assert aapl is not None
    assert (aapl.security_type, aapl.name, aapl.exchange, aapl.country) == ("stock", "Apple Inc.", "NASDAQ", "US")
    assert (aapl.sector, aapl.industry) == ("Technology", "Consumer Electronics")
    assert aapl.market_cap == Decimal(3341260000000) and aapl.dividend_yield == pytest.approx(0.004533)

    spy = await provider.profile("SPY")
    assert spy is not None and (spy.security_type, spy.sector, spy.industry, spy.exchange) == (
        "etf", "ETF/Fund", "Large Blend", "ARCA",
    )  # fmt: skip
    assert spy.dividend_yield == pytest.approx(0.0118)

    fund = await provider.profile("VTIAX")
    assert fund is not None and fund.security_type == "mutual_fund" and fund.industry == "Foreign Large Blend"
    assert fund.exchange is None

    vix = await provider.profile("VIX")
    assert vix is not None and vix.security_type == "index" and vix.exchange == "CBOE"
    assert vix.dividend_yield is None

    option = await provider.profile("SPY270917C00460000")
    assert option is not None and option.security_type == "option"
    assert (option.underlying_symbol, option.option_type, option.strike_price, option.multiplier) == (
        "SPY", "C", Decimal("460"), 100,
    )  # fmt: skip

    assert await provider.profile("NOSUCH") is None


def test_dividend_yield_in_yahoo_percent_is_converted_to_a_fraction() -> None:
    info = {"quoteType": "EQUITY", "dividendYield": 0.46, "sector": "Technology", "industry": "Software"}
    security = info_to_security("ACME", info)
    assert security is not None and security.dividend_yield == pytest.approx(0.0046)
    assert info_to_security("BTC-USD", {"quoteType": "CRYPTOCURRENCY"}) is None


def test_last_available_date_is_the_latest_completed_session() -> None:
    provider, _ = _provider()
    assert provider.last_available_date(NOW) == date(2026, 11, 24)
    assert provider.last_available_date(datetime(2026, 11, 25, 21, 5, tzinfo=UTC)) == date(2026, 11, 25)
