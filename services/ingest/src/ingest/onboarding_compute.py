"""Onboarding readiness (api.md #61), collection steps (§4.9) and the preview valuation (#63). Pure.

Inputs are plain data read from the marketdata/factors views plus the portfolio's open positions;
the reference trading date and the oldest date a close may have to count as current are passed
in (never read from the clock). Money stays exact: per-position values are Decimal arrays
computed elementwise by numpy (object dtype), totals are exact sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

MIN_HISTORY_DAYS = 60  # calculations.md §0.6 FACTOR_MIN_OBS
FULL_HISTORY_DAYS = 252  # FACTOR_WINDOW: what collection aims for
HV_MIN_CLOSES = 21  # HV_WINDOW minimum of 20 returns
RISK_FREE_SERIES = ("DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2")

CheckStatus = Literal["pass", "warn", "fail", "skip", "pending"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]
CHECK_STEP = {
    "security_master": "security_master",
    "classification": "security_master",
    "current_prices": "current_prices",
    "price_history": "price_history",
    "option_inputs": "option_inputs",
}


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
        return bool(self.sector) and bool(self.industry) and "Unknown" not in (self.sector, self.industry)


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


# --------------------------------------------------------------------------------------------
# Checks (#61)


@dataclass
class Check:
    check: str
    status: CheckStatus
    blocking: bool
    detail: str
    symbols: list[str] | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "status": self.status,
            "blocking": self.blocking,
            "detail": self.detail,
        }
        if self.symbols is not None:
            out["symbols"] = self.symbols
        return out

    @property
    def failing(self) -> bool:
        return self.blocking and self.status in ("fail", "pending")


def _price_symbol(symbol: str, market: MarketData) -> str:
    sec = market.resolve(symbol)
    return sec.symbol if sec is not None else symbol


def evaluate(
    holdings: Sequence[Holding], market: MarketData, running_steps: frozenset[str] = frozenset()
) -> list[Check]:
    """The seven readiness checks of api.md #61, in order."""
    checks = [
        _positions(holdings),
        _security_master(holdings, market),
        _classification(holdings, market),
        _current_prices(holdings, market),
        _price_history(holdings, market),
        _option_inputs(holdings, market),
        _factor_definitions(market),
    ]
    for c in checks:
        step = CHECK_STEP.get(c.check)
        if step in running_steps and c.status != "skip":
            c.status = "pending"
            c.detail = f"{step.replace('_', ' ')} collection is running; {c.detail}"
    return checks


def ready(checks: Sequence[Check]) -> bool:
    return not any(c.failing for c in checks)


def _positions(holdings: Sequence[Holding]) -> Check:
    n = len(holdings)
    if n == 0:
        return Check("positions", "fail", True, "no open positions")
    return Check("positions", "pass", True, f"{n} open position{'s' if n != 1 else ''}")


def _security_master(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    unknown = [s for s in symbols if market.resolve(s) is None]
    known = len(symbols) - len(unknown)
    detail = f"{known}/{len(symbols)} symbols known"
    if not symbols:
        return Check("security_master", "skip", True, "no symbols to verify")
    if unknown:
        return Check("security_master", "fail", True, f"{detail}; unknown: {', '.join(unknown)}", unknown)
    return Check("security_master", "pass", True, detail)


def _classification(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    missing = [s for s in symbols if (sec := market.resolve(s)) is None or not sec.classified]
    detail = f"{len(symbols) - len(missing)}/{len(symbols)} symbols classified"
    if not symbols:
        return Check("classification", "skip", False, "no symbols to classify", [])
    return Check("classification", "warn" if missing else "pass", False, detail, missing)


def _current_prices(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    missing = [s for s in symbols if market.current_quote(_price_symbol(s, market)) is None]
    detail = f"close within 5 trading days for {len(symbols) - len(missing)}/{len(symbols)}"
    if not symbols:
        return Check("current_prices", "skip", True, "no symbols to price")
    if missing:
        return Check("current_prices", "fail", True, f"{detail}; missing: {', '.join(missing)}", missing)
    return Check("current_prices", "pass", True, detail)


def _price_history(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    short = [s for s in symbols if market.history.get(_price_symbol(s, market), 0) < MIN_HISTORY_DAYS]
    detail = f">= {MIN_HISTORY_DAYS} trading days for {len(symbols) - len(short)}/{len(symbols)}"
    if not symbols:
        return Check("price_history", "skip", False, "no symbols")
    if short:
        return Check("price_history", "warn", False, f"{detail}; short history: {', '.join(short)}", short)
    return Check("price_history", "pass", False, detail)


@dataclass(frozen=True, slots=True)
class OptionInputs:
    symbol: str
    underlying_price: bool
    vol_source: Literal["market", "vendor", "historical", "default"]


def option_inputs(holdings: Sequence[Holding], market: MarketData) -> list[OptionInputs]:
    """Per option contract: is the underlying priced, and which volatility source Greeks will use."""
    out: list[OptionInputs] = []
    first = {h.symbol: h for h in reversed(holdings) if h.instrument_type == "option"}
    for symbol in option_symbols(holdings):
        h = first[symbol]
        und = _price_symbol(h.underlying_symbol, market)
        quote = market.current_quote(symbol)
        source: Literal["market", "vendor", "historical", "default"]
        if quote is not None:
            source = "market"
        elif (q := market.quotes.get(symbol)) is not None and q.implied_volatility is not None:
            source = "vendor"
        elif market.history.get(und, 0) >= HV_MIN_CLOSES:
            source = "historical"
        else:
            source = "default"
        out.append(OptionInputs(symbol, market.current_quote(und) is not None, source))
    return out


def _option_inputs(holdings: Sequence[Holding], market: MarketData) -> Check:
    inputs = option_inputs(holdings, market)
    if not inputs:
        return Check("option_inputs", "skip", False, "no option positions")
    rates = any(market.rates.get(s, 0) > 0 for s in RISK_FREE_SERIES)
    lacking = [i.symbol for i in inputs if not i.underlying_price or i.vol_source == "default"]
    n = len(inputs)
    parts = [
        f"underlying price for {sum(i.underlying_price for i in inputs)}/{n}",
        f"volatility source for {sum(i.vol_source != 'default' for i in inputs)}/{n}",
        "risk-free curve available" if rates else "no risk-free curve (fallback 0.04)",
    ]
    without_quotes = [i.symbol for i in inputs if i.vol_source != "market"]
    if without_quotes:
        parts.append(f"{len(without_quotes)} without option quotes (model inputs)")
    status: CheckStatus = "pass" if not lacking and rates else "warn"
    return Check(
        "option_inputs", status, False, "; ".join(parts), lacking + [s for s in without_quotes if s not in lacking]
    )


def _factor_definitions(market: MarketData) -> Check:
    active = [f for f in market.factors if f.is_active and f.calculation_method == "regression"]
    if not active:
        return Check("factor_definitions", "fail", True, "no active factor definitions")
    short: list[str] = []
    for f in active:
        if f.proxy is None:
            short.append(f.code)
        elif f.proxy_type == "rate_series":
            if market.rates.get(f.proxy, 0) < MIN_HISTORY_DAYS:
                short.append(f.proxy)
        elif market.history.get(f.proxy, 0) < MIN_HISTORY_DAYS:
            short.append(f.proxy)
    equity = [f for f in active if f.proxy_type != "rate_series"]
    macro = [f for f in active if f.proxy_type == "rate_series"]
    label = f"{len(equity)} active factors" + (" + " + ", ".join(f.name.lower() for f in macro) if macro else "")
    if short:
        return Check(
            "factor_definitions",
            "fail",
            True,
            f"{label}; proxies without {MIN_HISTORY_DAYS} days of history: {', '.join(short)}",
            short,
        )
    return Check("factor_definitions", "pass", True, f"{label}, proxies priced >= {MIN_HISTORY_DAYS} days")


def factor_proxies(market_factors: Sequence[FactorDef]) -> tuple[list[str], list[str]]:
    """(ETF proxy symbols, rate series ids) of the active regression factors."""
    etfs = [f.proxy for f in market_factors if f.is_active and f.proxy and f.proxy_type != "rate_series"]
    rates = [f.proxy for f in market_factors if f.is_active and f.proxy and f.proxy_type == "rate_series"]
    return etfs, rates


# --------------------------------------------------------------------------------------------
# Collection steps (onboarding_step)


@dataclass(frozen=True)
class StepState:
    step: str
    status: StepStatus
    last_error: str | None
    details: dict[str, Any]


def collection_steps(
    holdings: Sequence[Holding], market: MarketData, only: Sequence[str] | None = None
) -> list[StepState]:
    """Status of the four data-collection steps computed from what marketdata already holds."""
    symbols = underlyings(holdings)
    out: list[StepState] = []
    if only is None or "security_master" in only:
        unknown = [s for s in symbols if market.resolve(s) is None]
        unclassified = [s for s in symbols if (sec := market.resolve(s)) is not None and not sec.classified]
        out.append(
            StepState(
                "security_master",
                "failed" if unknown else "completed",
                f"unknown symbols: {', '.join(unknown)}" if unknown else None,
                {"symbols": len(symbols), "unknown": unknown, "unclassified": unclassified},
            )
        )
    if only is None or "current_prices" in only:
        missing = [s for s in symbols if market.current_quote(_price_symbol(s, market)) is None]
        out.append(
            StepState(
                "current_prices",
                "failed" if missing else "completed",
                f"no close within 5 trading days: {', '.join(missing)}" if missing else None,
                {"symbols": len(symbols), "missing": missing, "reference_date": market.reference_date.isoformat()},
            )
        )
    if only is None or "price_history" in only:
        days = {s: market.history.get(_price_symbol(s, market), 0) for s in symbols}
        short = [s for s, n in days.items() if n < MIN_HISTORY_DAYS]
        out.append(
            StepState(
                "price_history",
                "failed" if short else "completed",
                f"fewer than {MIN_HISTORY_DAYS} trading days: {', '.join(short)}" if short else None,
                {
                    "symbols": len(symbols),
                    "short": short,
                    "full_history": sum(1 for n in days.values() if n >= FULL_HISTORY_DAYS),
                },
            )
        )
    if only is None or "option_inputs" in only:
        inputs = option_inputs(holdings, market)
        if not inputs:
            out.append(StepState("option_inputs", "skipped", None, {"options": 0}))
        else:
            unpriced = [i.symbol for i in inputs if not i.underlying_price]
            out.append(
                StepState(
                    "option_inputs",
                    "failed" if unpriced else "completed",
                    f"no underlying price for: {', '.join(unpriced)}" if unpriced else None,
                    {
                        "options": len(inputs),
                        "missing_underlying_price": unpriced,
                        "vol_sources": {i.symbol: i.vol_source for i in inputs},
                        "risk_free_curve": any(market.rates.get(s, 0) > 0 for s in RISK_FREE_SERIES),
                    },
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# Preview valuation (#63)

ObjArray = npt.NDArray[np.object_]


@dataclass
class PreviewValues:
    """Per-holding values aligned with the input order (None where not applicable)."""

    last_price: list[Decimal]
    price_date: list[date | None]
    price_source: list[str | None]
    priced_with: list[str]
    underlying_price: list[Decimal | None]
    market_value: list[Decimal]
    cost_basis: list[Decimal]
    dollar_exposure: list[Decimal | None]
    notional: list[Decimal | None]
    unrealized_pnl: list[Decimal]
    unrealized_pnl_pct: list[float | None]
    weight: list[float | None]
    issues: list[list[dict[str, str]]]


def _obj(values: Sequence[Any]) -> ObjArray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def preview(holdings: Sequence[Holding], market: MarketData) -> PreviewValues:
    """Value each holding at its current close, else at its entry price (`priced_with: "entry"`)."""
    n = len(holdings)
    quotes = [market.current_quote(_price_symbol(h.symbol, market)) for h in holdings]
    und_quotes = [market.current_quote(_price_symbol(h.underlying_symbol, market)) for h in holdings]
    priced = np.array([q is not None for q in quotes], dtype=bool)
    is_option = np.array([h.instrument_type == "option" for h in holdings], dtype=bool)
    qty = _obj([h.quantity for h in holdings])
    mult = _obj([h.multiplier for h in holdings])
    entry = _obj([h.entry_price for h in holdings])
    last = _obj([q.close if q is not None else h.entry_price for q, h in zip(quotes, holdings, strict=True)])
    und_px = _obj(
        [
            (uq.close if uq is not None else None) if h.instrument_type == "option" else last[i]
            for i, (uq, h) in enumerate(zip(und_quotes, holdings, strict=True))
        ]
    )
    mv = qty * mult * last if n else _obj([])
    cb = qty * mult * entry if n else _obj([])
    upl = mv - cb if n else _obj([])
    has_und = np.array([u is not None for u in und_px], dtype=bool)
    notional = np.full(n, None, dtype=object)
    if n and has_und.any():
        notional[has_und] = np.abs(qty[has_und]) * mult[has_und] * und_px[has_und]
    exposure = np.full(n, None, dtype=object)
    stocks = ~is_option
    exposure[stocks] = mv[stocks]
    gross = sum((abs(e) for e in exposure if e is not None), Decimal(0))
    weight: list[float | None] = [
        float(abs(e) / gross) if e is not None and gross > 0 else None for e in exposure.tolist()
    ]
    pct: list[float | None] = [
        float(u / abs(c)) if c != 0 else None for u, c in zip(upl.tolist(), cb.tolist(), strict=True)
    ]
    issues = [_issues(h, market, bool(priced[i])) for i, h in enumerate(holdings)]
    return PreviewValues(
        last_price=last.tolist(),
        price_date=[q.price_date if q is not None else None for q in quotes],
        price_source=[
            None if q is None else ("close" if q.price_date >= market.reference_date else "stale") for q in quotes
        ],
        priced_with=["close" if p else "entry" for p in priced.tolist()],
        underlying_price=[und_px[i] if is_option[i] else None for i in range(n)],
        market_value=mv.tolist(),
        cost_basis=cb.tolist(),
        dollar_exposure=exposure.tolist(),
        notional=notional.tolist(),
        unrealized_pnl=upl.tolist(),
        unrealized_pnl_pct=pct,
        weight=weight,
        issues=issues,
    )


def _issues(h: Holding, market: MarketData, priced: bool) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    und = market.resolve(h.underlying_symbol)
    if und is None:
        out.append({"code": "UNKNOWN_SYMBOL", "message": f"'{h.underlying_symbol}' is not in the security master"})
    elif not und.classified:
        out.append({"code": "UNKNOWN_CLASSIFICATION", "message": f"no sector/industry found for '{und.symbol}'"})
    if not priced:
        out.append({"code": "NO_CURRENT_PRICE", "message": "no close within 5 trading days; valued at the entry price"})
    if h.instrument_type == "option" and h.symbol not in market.securities and h.symbol not in market.quotes:
        out.append(
            {
                "code": "NO_OPTION_DATA",
                "message": f"no market data found for option '{h.symbol}'; priced from model inputs",
            }
        )
    if und is not None and market.history.get(und.symbol, 0) < MIN_HISTORY_DAYS:
        out.append({"code": "SHORT_HISTORY", "message": f"fewer than {MIN_HISTORY_DAYS} trading days of price history"})
    return out


def totals(holdings: Sequence[Holding], values: PreviewValues) -> dict[str, Any]:
    """Totals block of #63: counts by type, market-value views and cost basis (exact)."""
    by_type = {"LONG": 0, "SHORT": 0, "LC": 0, "LP": 0, "SC": 0, "SP": 0}
    for h in holdings:
        by_type[h.position_type] += 1
    mv = values.market_value
    long = sum((v for v in mv if v > 0), Decimal(0))
    short = sum((v for v in mv if v < 0), Decimal(0))
    return {
        "positions": len(holdings),
        "by_type": by_type,
        "market_value": {"long": long, "short": short, "gross": long - short, "net": long + short},
        "cost_basis": sum(values.cost_basis, Decimal(0)),
        "priced_with_entry": sum(1 for p in values.priced_with if p == "entry"),
    }
