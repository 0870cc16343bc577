"""The preview valuation of api.md #63. Pure.

Each holding is valued at its current close, else at its entry price (`priced_with: "entry"`).
Money stays exact: per-position values are Decimal arrays computed elementwise by numpy (object
dtype), totals are exact sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.models import POSITION_TYPES
from ingest.onboarding.model import MIN_HISTORY_DAYS, Holding, MarketData

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
    quotes = [market.current_quote_for(h.symbol) for h in holdings]
    und_quotes = [market.current_quote_for(h.underlying_symbol) for h in holdings]
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
    # Option exposure is delta-adjusted, so it stays null until the first run computes Greeks.
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
    by_type = dict.fromkeys(POSITION_TYPES, 0)
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
