"""Onboarding readiness checks, collection steps and preview valuation (pure, api.md #61/#63)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from ingest.onboarding.checks import evaluate, ready
from ingest.onboarding.model import FactorDef, Holding, MarketData, Quote, SecurityInfo
from ingest.onboarding.preview import preview, totals
from ingest.onboarding.steps import collection_steps

REF = date(2026, 11, 25)
SINCE = date(2026, 11, 18)
FACTORS = [
    FactorDef("market", "Market", "SPY", "etf", "regression", True),
    FactorDef("value", "Value", "VTV", "etf", "regression", True),
    FactorDef("short_interest", "Short Interest", None, None, "not_calculated", False),
    FactorDef("interest_rate", "Interest Rate", "DGS10", "rate_series", "regression", True),
]


def stock(symbol: str, qty: str, entry: str, ptype: str | None = None) -> Holding:
    q = Decimal(qty)
    return Holding(
        symbol, symbol, "stock", ptype or ("LONG" if q > 0 else "SHORT"), q, 1, symbol, Decimal(entry), date(2026, 1, 5)
    )


def option(symbol: str, und: str, qty: str, entry: str, cp: str, strike: str, expiry: date) -> Holding:
    q = Decimal(qty)
    ptype = ("L" if q > 0 else "S") + cp
    return Holding(
        symbol, symbol, "option", ptype, q, 100, und, Decimal(entry), date(2026, 6, 1), cp, Decimal(strike), expiry
    )


def market(**overrides: object) -> MarketData:
    base: dict[str, object] = {
        "reference_date": REF,
        "current_since": SINCE,
        "securities": {
            "AAPL": SecurityInfo("AAPL", "stock", "Apple", "Technology", "Consumer Electronics"),
            "SPY": SecurityInfo("SPY", "etf", "SPDR", "ETF/Fund", "Large Blend"),
            "VTV": SecurityInfo("VTV", "etf", "Value", "ETF/Fund", "Large Value"),
            "NEWCO": SecurityInfo("NEWCO", "stock", "New Co", "Unknown", "Unknown"),
            "SPY270917C00460000": SecurityInfo("SPY270917C00460000", "option"),
        },
        "aliases": {"BRK.B": "BRK-B"},
        "quotes": {
            "AAPL": Quote(REF, Decimal("230.00")),
            "SPY": Quote(REF, Decimal("530.00")),
            "VTV": Quote(REF, Decimal("170.00")),
            "NEWCO": Quote(date(2026, 11, 1), Decimal("9.00")),
            "SPY270917C00460000": Quote(date(2026, 11, 24), Decimal("7.50"), 0.21),
        },
        "history": {"AAPL": 252, "SPY": 252, "VTV": 252, "NEWCO": 30},
        "rates": {"DGS3MO": 252, "DGS10": 252},
        "factors": FACTORS,
    }
    base.update(overrides)
    return MarketData(**base)  # type: ignore[arg-type]


def test_a_priced_classified_book_is_ready_with_the_seven_checks_in_order() -> None:
    hold = [stock("AAPL", "10", "200"), option("SPY270917C00460000", "SPY", "2", "7.00", "C", "460", date(2027, 9, 17))]
    checks = evaluate(hold, market())
    assert [(c.check, c.status, c.blocking) for c in checks] == [
        ("positions", "pass", True),
        ("security_master", "pass", True),
        ("classification", "pass", False),
        ("current_prices", "pass", True),
        ("price_history", "pass", False),
        ("option_inputs", "pass", False),
        ("factor_definitions", "pass", True),
    ]
    assert checks[6].detail == "2 active factors + interest rate, proxies priced >= 60 days"
    assert checks[5].detail == "underlying price for 1/1; volatility source for 1/1; risk-free curve available"
    assert ready(checks)


def test_unknown_stale_and_unclassified_symbols_fail_or_warn() -> None:
    hold = [stock("AAPL", "10", "200"), stock("NEWCO", "5", "9"), stock("ZZZZ", "1", "1")]
    checks = {c.check: c for c in evaluate(hold, market())}
    assert (checks["security_master"].status, checks["security_master"].symbols) == ("fail", ["ZZZZ"])
    assert (checks["classification"].status, checks["classification"].symbols) == ("warn", ["NEWCO", "ZZZZ"])
    assert (checks["current_prices"].status, checks["current_prices"].symbols) == ("fail", ["NEWCO", "ZZZZ"])
    assert checks["price_history"].status == "warn"
    assert checks["option_inputs"].status == "skip"
    assert not ready(list(checks.values()))


def test_running_collection_reports_pending_and_blocks() -> None:
    checks = evaluate([stock("AAPL", "10", "200")], market(), frozenset({"current_prices"}))
    by = {c.check: c for c in checks}
    assert by["current_prices"].status == "pending" and by["current_prices"].detail.startswith("current prices")
    assert not ready(checks)


def test_empty_portfolio_and_missing_factor_proxies_fail() -> None:
    checks = {c.check: c for c in evaluate([], market(history={"SPY": 252, "VTV": 10}, rates={}))}
    assert checks["positions"].status == "fail"
    assert checks["factor_definitions"].status == "fail" and checks["factor_definitions"].symbols == ["VTV", "DGS10"]
    none = {c.check: c for c in evaluate([stock("AAPL", "1", "1")], market(factors=[]))}
    assert none["factor_definitions"].detail == "no active factor definitions"


def test_option_without_quotes_falls_back_to_historical_volatility_and_warns_without_rates() -> None:
    opt = option("AAPL271217C00300000", "AAPL", "1", "5", "C", "300", date(2027, 12, 17))
    check = next(c for c in evaluate([opt], market(rates={"DGS10": 252})) if c.check == "option_inputs")
    assert check.status == "warn" and check.blocking is False
    assert "no risk-free curve (fallback 0.04)" in check.detail and "1 without option quotes" in check.detail
    assert check.symbols == ["AAPL271217C00300000"]


def test_collection_steps_from_market_state() -> None:
    hold = [stock("AAPL", "10", "200"), stock("NEWCO", "5", "9")]
    states = {s.step: s for s in collection_steps(hold, market())}
    assert states["security_master"].status == "completed"
    assert states["security_master"].details["unclassified"] == ["NEWCO"]
    assert (states["current_prices"].status, states["current_prices"].details["missing"]) == ("failed", ["NEWCO"])
    assert states["current_prices"].last_error == "no close within 5 trading days: NEWCO"
    assert states["price_history"].status == "failed" and states["price_history"].details["full_history"] == 1
    assert states["option_inputs"].status == "skipped"
    only = collection_steps(hold, market(), only=["current_prices"])
    assert [s.step for s in only] == ["current_prices"]


def test_preview_values_at_current_close_else_entry_exactly() -> None:
    hold = [
        stock("AAPL", "10", "200"),
        stock("NEWCO", "-3", "9.50"),
        option("SPY270917C00460000", "SPY", "-2", "7.00", "C", "460", date(2027, 9, 17)),
    ]
    v = preview(hold, market())
    assert v.priced_with == ["close", "entry", "close"]
    assert v.last_price == [Decimal("230.00"), Decimal("9.50"), Decimal("7.50")]
    assert v.price_source == ["close", None, "stale"]
    assert v.market_value == [Decimal("2300.00"), Decimal("-28.50"), Decimal("-1500.00")]
    assert v.cost_basis == [Decimal("2000"), Decimal("-28.50"), Decimal("-1400.00")]
    assert v.unrealized_pnl == [Decimal("300.00"), Decimal("0.00"), Decimal("-100.00")]
    assert v.dollar_exposure == [Decimal("2300.00"), Decimal("-28.50"), None]
    assert v.notional == [Decimal("2300.00"), Decimal("28.50"), Decimal("106000.00")]
    assert v.underlying_price == [None, None, Decimal("530.00")]
    assert v.unrealized_pnl_pct[0] == 0.15 and v.weight[2] is None
    assert abs(sum(w for w in v.weight if w is not None) - 1.0) < 1e-12
    assert [i["code"] for i in v.issues[1]] == ["UNKNOWN_CLASSIFICATION", "NO_CURRENT_PRICE", "SHORT_HISTORY"]
    t = totals(hold, v)
    assert t["market_value"] == {
        "long": Decimal("2300.00"),
        "short": Decimal("-1528.50"),
        "gross": Decimal("3828.50"),
        "net": Decimal("771.50"),
    }
    assert t["by_type"]["SC"] == 1 and t["priced_with_entry"] == 1 and t["cost_basis"] == Decimal("571.50")


def test_preview_of_an_empty_book() -> None:
    v = preview([], market())
    assert v.market_value == [] and totals([], v)["positions"] == 0
