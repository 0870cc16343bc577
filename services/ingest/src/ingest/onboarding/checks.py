"""The seven readiness checks of api.md #61 and the option inputs they (and the steps) report. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ingest.onboarding.model import (
    HV_MIN_CLOSES,
    MIN_HISTORY_DAYS,
    Holding,
    MarketData,
    option_symbols,
    underlyings,
)

CheckStatus = Literal["pass", "warn", "fail", "skip", "pending"]
VolSource = Literal["market", "vendor", "historical", "default"]
# The collection step whose running state turns a check `pending`.
CHECK_STEP = {
    "security_master": "security_master",
    "classification": "security_master",
    "current_prices": "current_prices",
    "price_history": "price_history",
    "option_inputs": "option_inputs",
}


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


def _symbol_check(
    name: str,
    symbols: list[str],
    flagged: list[str],
    *,
    blocking: bool,
    detail: str,
    flagged_status: CheckStatus,
    flagged_label: str,
    no_symbols: str,
) -> Check:
    """A per-symbol rule over the underlyings: `skip` without symbols, else pass or list the flagged ones."""
    if not symbols:
        return Check(name, "skip", blocking, no_symbols)
    if flagged:
        return Check(name, flagged_status, blocking, f"{detail}; {flagged_label}: {', '.join(flagged)}", flagged)
    return Check(name, "pass", blocking, detail)


def _security_master(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    unknown = market.unknown(symbols)
    return _symbol_check(
        "security_master",
        symbols,
        unknown,
        blocking=True,
        detail=f"{len(symbols) - len(unknown)}/{len(symbols)} symbols known",
        flagged_status="fail",
        flagged_label="unknown",
        no_symbols="no symbols to verify",
    )


def _classification(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    missing = [s for s in symbols if (sec := market.resolve(s)) is None or not sec.classified]
    detail = f"{len(symbols) - len(missing)}/{len(symbols)} symbols classified"
    if not symbols:
        return Check("classification", "skip", False, "no symbols to classify", [])
    # Non-blocking: lists the symbols even when it passes (an empty list then).
    return Check("classification", "warn" if missing else "pass", False, detail, missing)


def _current_prices(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    missing = market.without_current_close(symbols)
    return _symbol_check(
        "current_prices",
        symbols,
        missing,
        blocking=True,
        detail=f"close within 5 trading days for {len(symbols) - len(missing)}/{len(symbols)}",
        flagged_status="fail",
        flagged_label="missing",
        no_symbols="no symbols to price",
    )


def _price_history(holdings: Sequence[Holding], market: MarketData) -> Check:
    symbols = underlyings(holdings)
    short = [s for s in symbols if market.history_days(s) < MIN_HISTORY_DAYS]
    return _symbol_check(
        "price_history",
        symbols,
        short,
        blocking=False,
        detail=f">= {MIN_HISTORY_DAYS} trading days for {len(symbols) - len(short)}/{len(symbols)}",
        flagged_status="warn",
        flagged_label="short history",
        no_symbols="no symbols",
    )


@dataclass(frozen=True, slots=True)
class OptionInputs:
    symbol: str
    underlying_price: bool
    vol_source: VolSource


def option_inputs(holdings: Sequence[Holding], market: MarketData) -> list[OptionInputs]:
    """Per option contract: is the underlying priced, and which volatility source Greeks will use."""
    out: list[OptionInputs] = []
    first = {h.symbol: h for h in reversed(holdings) if h.instrument_type == "option"}
    for symbol in option_symbols(holdings):
        underlying = first[symbol].underlying_symbol
        source: VolSource
        if market.current_quote(symbol) is not None:
            source = "market"
        elif (q := market.quotes.get(symbol)) is not None and q.implied_volatility is not None:
            source = "vendor"
        elif market.history_days(underlying) >= HV_MIN_CLOSES:
            source = "historical"
        else:
            source = "default"
        out.append(OptionInputs(symbol, market.current_quote_for(underlying) is not None, source))
    return out


def _option_inputs(holdings: Sequence[Holding], market: MarketData) -> Check:
    inputs = option_inputs(holdings, market)
    if not inputs:
        return Check("option_inputs", "skip", False, "no option positions")
    rates = market.has_risk_free_curve
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
