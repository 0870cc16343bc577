"""Sized hedges for each suggestion goal, from the engines' view of the session's current book (pure).

Inputs are an `Evaluation` of the current pro-forma book ("current") plus probe books holding
PROBE_DOLLARS of each candidate instrument ("probe:<symbol>"); the closed forms are in
`modeling.sizing`. Each goal returns Hedge candidates; the caller turns them into trades and
evaluates the hedged books through the same engines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.errors import ValidationFailed
from ingest.modeling import sizing
from ingest.modeling.impacts import Evaluation
from ingest.modeling.valuation import ValuedBook

PROBE_DOLLARS = 1_000_000.0
CURRENT = "current"
MARKET = "market"


def probe_key(symbol: str) -> str:
    return f"probe:{symbol}"


@dataclass(frozen=True)
class Hedge:
    """One candidate: trade `shares` of `symbol` (signed) at `price`, with how it was sized."""

    symbol: str
    price: float
    shares: int
    rationale: str
    formula: str
    sizing: dict[str, Any] = field(default_factory=dict)
    target_met: bool = True


def _factor(evaluation: Evaluation, code: str) -> dict[str, Any]:
    rows = evaluation.factors.get(CURRENT, {}).get("factors", [])
    row = next((f for f in rows if f["code"] == code), None)
    if row is None or row.get("exposure_dollar") is None:
        raise ValidationFailed.field(
            "body.factor", f"the {code} exposure of the session could not be computed", code, code="FACTOR_UNAVAILABLE"
        )
    return row


def _proxy_beta(evaluation: Evaluation, symbol: str, code: str) -> float:
    value = ((evaluation.betas.get(symbol) or {}).get("betas") or {}).get(code)
    return math.nan if value is None else float(value)


def exposure_hedge(evaluation: Evaluation, code: str, symbol: str, price: float, target: float, equity: float) -> Hedge:
    """Neutralise (t = 1) or cut by t the book's exposure to factor `code` with `symbol` (H = −t·X_f/β_{P,f})."""
    row = _factor(evaluation, code)
    x = float(row["exposure_dollar"])
    beta = _proxy_beta(evaluation, symbol, code)
    h = sizing.hedge_exposure(x, beta, target)
    shares = sizing.whole_units(h, price)
    after = x + shares * price * beta if math.isfinite(beta) else math.nan
    name = "market beta" if code == MARKET else f"{code} exposure"
    return Hedge(
        symbol=symbol,
        price=price,
        shares=shares,
        rationale=(
            f"{'Short' if shares < 0 else 'Buy'} {abs(shares)} {symbol} to take the {name} from "
            f"{x / equity:.4f} to {after / equity:.4f} of equity"
            if equity > 0
            else f"Hedge the {name} with {symbol}"
        ),
        formula=f"H = -target * X_{code} / beta_{symbol},{code}; shares = round(H / price)",
        sizing={
            "factor": code,
            "target_pct": target,
            "exposure_before": x,
            "beta_before": row.get("beta"),
            "proxy_beta": beta,
            "hedge_notional": h,
            "price": price,
            "exposure_after": after,
            "beta_after": after / equity if equity > 0 else None,
        },
    )


def delta_hedge(book: ValuedBook, underlying: str | None, symbol: str, price: float, target: float) -> Hedge:
    """Cut the net dollar delta (of the book, or of one underlying) by t with a stock (delta 1): H = −t·D."""
    mask = np.isfinite(book.exposure)
    if underlying is not None:
        mask &= np.array([u.instrument.underlying == underlying for u in book.units], dtype=bool)
        if not mask.any():
            raise ValidationFailed.field("body.underlying", "the session holds nothing on this underlying", underlying)
    d = float(book.exposure[mask].sum())
    h = -target * d
    shares = sizing.whole_units(h, price)
    scope = underlying or "the book"
    return Hedge(
        symbol=symbol,
        price=price,
        shares=shares,
        rationale=f"{'Sell/short' if shares < 0 else 'Buy'} {abs(shares)} {symbol} to move the dollar delta of "
        f"{scope} from {d:,.0f} to {d + shares * price:,.0f}",
        formula="H = -target * dollar_delta; shares = round(H / price)",
        sizing={
            "underlying": underlying,
            "target_pct": target,
            "dollar_delta_before": d,
            "hedge_notional": h,
            "price": price,
            "dollar_delta_after": d + shares * price,
        },
    )


def stress_hedges(
    evaluation: Evaluation, prices: Mapping[str, float], target: float, scenario_id: str | None
) -> list[Hedge]:
    """Per candidate instrument, the smallest hedge that cuts the worst correlated loss (or one scenario's) by t."""
    current = {s["scenario_id"]: s["correlated_pnl"] for s in evaluation.scenarios.get(CURRENT, [])}
    if not current:
        raise ValidationFailed.field("body.goal", "the stress engine gave no scenario results", "reduce_stress_loss")
    ids = sorted(current)
    if scenario_id is not None:
        if scenario_id not in current:
            raise ValidationFailed.field("body.scenario_id", "not an active, computed scenario", scenario_id)
        ids = [scenario_id]
    symbols = [s for s in prices if probe_key(s) in evaluation.scenarios]
    per_dollar = np.full((len(ids), len(symbols)), np.nan)
    for j, symbol in enumerate(symbols):
        probe = {s["scenario_id"]: s["correlated_pnl"] for s in evaluation.scenarios[probe_key(symbol)]}
        per_dollar[:, j] = [probe.get(i, math.nan) / PROBE_DOLLARS for i in ids]
    pnl = np.array([current[i] for i in ids], dtype=np.float64)
    result = sizing.stress_hedges(pnl, per_dollar, target)
    worst_id = ids[int(np.argmin(pnl))]
    out = []
    for j, symbol in enumerate(symbols):
        h = float(result.exposure[j])
        shares = sizing.whole_units(h, prices[symbol])
        out.append(
            Hedge(
                symbol=symbol,
                price=prices[symbol],
                shares=shares,
                rationale=f"{'Short' if shares < 0 else 'Buy'} {abs(shares)} {symbol} to lift the worst scenario "
                f"P&L from {pnl.min():,.0f} to about {result.worst_after[j]:,.0f}",
                formula="min_s(pnl_s + H * r_symbol,s) >= (1 - target) * worst; smallest |H|",
                sizing={
                    "target_pct": target,
                    "scenario_id": worst_id,
                    "worst_before": float(pnl.min()),
                    "worst_after_estimate": float(result.worst_after[j]),
                    "hedge_notional": h,
                    "price": prices[symbol],
                },
                target_met=bool(result.target_met[j]),
            )
        )
    return out


def ranked(hedges: Sequence[Hedge], limit: int = 3) -> list[Hedge]:
    """Hedges that trade something, those meeting the target first, then the smallest notional."""
    useful = [h for h in hedges if h.shares != 0]
    return sorted(useful, key=lambda h: (not h.target_met, abs(h.shares * h.price), h.symbol))[:limit]
