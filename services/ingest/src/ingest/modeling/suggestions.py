"""Trade suggestions for a stated goal (api.md §6 row 14): sized hedges with their impact, nothing stored.

1. The session's current pro-forma book ("after" of its trades) and probe books of each candidate
   instrument go through the engines once: factor exposures and betas, stress P&L per scenario.
2. `modeling.goals` sizes the hedges (closed forms in `modeling.sizing`):
   neutralize_beta → SPY; neutralize_factor → the factor's ETF proxy (calculations.md §4.1);
   reduce_delta → SPY, or the underlying's own stock; reduce_stress_loss → SPY and every style ETF,
   the smallest hedges that meet the target first.
3. Each hedge becomes trades valid for #55 (`trades`, ready to post) and the hedged book goes
   through the same engines: `impact` = {before: current, after: hedged, change}.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np

from common.auth import Principal
from common.db import Database
from common.errors import ServiceUnavailable, UpstreamError, ValidationFailed
from common.formatting import money, qty
from ingest.modeling import goals
from ingest.modeling.book import Instrument, TradeIntent, apply_trades
from ingest.modeling.goals import CURRENT, PROBE_DOLLARS, Hedge, probe_key
from ingest.modeling.impacts import Evaluation, comparison, evaluate, load_units
from ingest.modeling.market import latest_closes
from ingest.modeling.proforma import before_after
from ingest.modeling.schemas import SuggestionRequest
from ingest.modeling.service import ModelingService, require_active, session_book
from ingest.modeling.sizing import split_order
from ingest.modeling.store import list_trades
from ingest.modeling.valuation import Unit, ValuedBook, stock_unit
from ingest.upload.errors import MARKET_ERRORS

MARKET_PROXY = "SPY"
DEFAULT_TARGET = {"reduce_stress_loss": 0.5}

_FACTORS_SQL = "SELECT code, proxy, proxy_type, is_active FROM factors.api_factor_definition ORDER BY display_order"


async def _etf_proxies(db: Database) -> dict[str, str]:
    """Active factor code → ETF proxy (the rate factor's proxy is a yield series, not tradable)."""
    try:
        rows = await db.fetch(_FACTORS_SQL)
    except MARKET_ERRORS as exc:
        raise ServiceUnavailable(f"The factor registry is unavailable: {exc}") from exc
    return {r["code"]: r["proxy"] for r in rows if r["is_active"] and r["proxy"] and r["proxy_type"] == "etf"}


async def _candidates(db: Database, body: SuggestionRequest) -> list[str]:
    if body.goal == "neutralize_beta":
        return [MARKET_PROXY]
    if body.goal == "reduce_delta":
        return [body.underlying.strip().upper() if body.underlying else MARKET_PROXY]
    proxies = await _etf_proxies(db)
    if body.goal == "reduce_stress_loss":
        return list(dict.fromkeys([MARKET_PROXY, *proxies.values()]))
    assert body.factor is not None
    if body.factor not in proxies:
        registry = await db.fetch("SELECT code FROM factors.api_factor_definition")
        known = body.factor in {r["code"] for r in registry}
        code, issue = ("FACTOR_UNAVAILABLE", "has no tradable ETF proxy") if known else ("UNKNOWN_FACTOR", "unknown")
        message = f"Factor {body.factor!r} cannot be hedged: {issue}"
        raise ValidationFailed.field("body.factor", issue, body.factor, code=code, message=message)
    return [proxies[body.factor]]


def _probe(unit: Unit) -> ValuedBook:
    """PROBE_DOLLARS of exposure in one stock: its betas and per-dollar scenario P&L."""
    return ValuedBook(units=[unit], quantity=np.array([PROBE_DOLLARS / unit.price]), cash=0.0)


def _hedges(
    body: SuggestionRequest, evaluation: Evaluation, current: ValuedBook, prices: dict[str, float]
) -> list[Hedge]:
    target = body.target_pct or DEFAULT_TARGET.get(body.goal, 1.0)
    equity = float(evaluation.figures[CURRENT]["equity"])
    if body.goal == "reduce_stress_loss":
        return goals.ranked(goals.stress_hedges(evaluation, prices, target, body.scenario_id))
    symbol = next(iter(prices))
    if body.goal == "reduce_delta":
        underlying = body.underlying.strip().upper() if body.underlying else None
        return goals.ranked([goals.delta_hedge(current, underlying, symbol, prices[symbol], target)])
    code = goals.MARKET if body.goal == "neutralize_beta" else str(body.factor)
    return goals.ranked([goals.exposure_hedge(evaluation, code, symbol, prices[symbol], target, equity)])


async def suggest(
    svc: ModelingService, principal: Principal, session_id: UUID, body: SuggestionRequest
) -> dict[str, Any]:
    """Sized hedge trades for `body.goal`, each with its before/after impact."""
    async with svc.db.session() as session:
        row = await svc.load(session, principal, session_id)
        trade_rows = await list_trades(session, session_id)
    require_active(row)
    as_of = row["base_as_of_date"]
    book = session_book(row, trade_rows)
    units, warnings = await load_units(svc.db, svc.engines, book, as_of)
    _, current = before_after(book, units)
    if body.goal == "reduce_delta" and body.underlying is not None:
        held = {u.instrument.underlying for u in current.units}
        if body.underlying.strip().upper() not in held:
            raise ValidationFailed.field(
                "body.underlying", "the session holds nothing on this underlying", body.underlying
            )
    candidates = await _candidates(svc.db, body)
    closes = await latest_closes(svc.db, candidates, as_of)
    prices = {
        s: float(units[s].price) if s in units else float(closes[s].price)
        for s in candidates
        if s in units or s in closes
    }
    if not prices:
        raise ValidationFailed.field("body.goal", "no price for the hedge instrument", candidates, code="NO_PRICE")
    for symbol in prices:
        units.setdefault(symbol, stock_unit(Instrument(symbol, "stock", symbol), closes[symbol].price))
    probes = {probe_key(s): _probe(units[s]) for s in prices}
    first = await evaluate(svc.engines, {CURRENT: current, **probes}, as_of)
    needed = first.scenarios.get(CURRENT) if body.goal == "reduce_stress_loss" else first.factors.get(CURRENT)
    if body.goal != "reduce_delta" and not needed:
        raise UpstreamError("The engines could not evaluate the session: " + "; ".join(first.warnings))
    hedges = _hedges(body, first, current, prices)

    holdings = book.holdings_after()
    lots = {p.id: p.quantity for p in book.base}
    hedged: dict[str, ValuedBook] = {}
    orders: list[list[dict[str, Any]]] = []
    for k, hedge in enumerate(hedges):
        unit = units[hedge.symbol]
        steps = split_order(holdings.get(hedge.symbol, Decimal(0)), hedge.shares)
        intents = [
            TradeIntent(
                f"suggestion.{k}", unit.instrument, Decimal(repr(hedge.price)), "last_close", side=s, quantity=q
            )
            for s, q in steps
        ]
        booked, _ = apply_trades(holdings, lots, intents)
        hedged[f"hedge:{k}"] = before_after(book, units, extra=booked)[1]
        orders.append([{"ticker": hedge.symbol, "side": s, "quantity": qty(q)} for s, q in steps])
    second = await evaluate(svc.engines, hedged, as_of) if hedged else Evaluation(as_of)
    second.figures[CURRENT] = first.figures[CURRENT]
    second.scenarios[CURRENT] = first.scenarios[CURRENT]
    suggestions = [
        {
            "rank": k + 1,
            "instrument": hedge.symbol,
            "rationale": hedge.rationale,
            "formula": hedge.formula,
            "target_met": hedge.target_met,
            "sizing": {key: _wire(key, v) for key, v in hedge.sizing.items()},
            "trades": orders[k],
            "impact": comparison(second, CURRENT, f"hedge:{k}"),
        }
        for k, hedge in enumerate(hedges)
    ]
    return {
        "session_id": str(session_id),
        "trade_version": row["trade_version"],
        "goal": body.goal,
        "as_of": as_of.isoformat(),
        "current": comparison(second, CURRENT, CURRENT)["after"],
        "suggestions": suggestions,
        "message": None if suggestions else "The session is already within the target; no trade is needed",
        "warnings": [*warnings, *first.warnings, *second.warnings],
    }


MONEY_SIZING = {
    "exposure_before",
    "exposure_after",
    "hedge_notional",
    "dollar_delta_before",
    "dollar_delta_after",
    "worst_before",
    "worst_after_estimate",
}


def _wire(key: str, value: Any) -> Any:
    if key in MONEY_SIZING:
        return money(value)
    if key == "price":
        return f"{value:.4f}"
    if isinstance(value, float):
        return round(value, 6) if value == value else None
    return value
