"""The four data-collection steps of onboarding (`ingest.onboarding_step`, api.md §4.9). Pure.

A step's status is computed from what marketdata already holds; `retry` recomputes chosen steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ingest.onboarding.checks import option_inputs
from ingest.onboarding.model import FULL_HISTORY_DAYS, MIN_HISTORY_DAYS, Holding, MarketData, underlyings

StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]
# The `details` list of symbols that makes a step fail (those a retry may re-check one by one).
FAILING_SYMBOLS = {"security_master": "unknown", "current_prices": "missing", "price_history": "short"}


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
        unknown = market.unknown(symbols)
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
        missing = market.without_current_close(symbols)
        out.append(
            StepState(
                "current_prices",
                "failed" if missing else "completed",
                f"no close within 5 trading days: {', '.join(missing)}" if missing else None,
                {"symbols": len(symbols), "missing": missing, "reference_date": market.reference_date.isoformat()},
            )
        )
    if only is None or "price_history" in only:
        days = {s: market.history_days(s) for s in symbols}
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
        out.append(_option_inputs_step(holdings, market))
    return out


def _option_inputs_step(holdings: Sequence[Holding], market: MarketData) -> StepState:
    inputs = option_inputs(holdings, market)
    if not inputs:
        return StepState("option_inputs", "skipped", None, {"options": 0})
    unpriced = [i.symbol for i in inputs if not i.underlying_price]
    return StepState(
        "option_inputs",
        "failed" if unpriced else "completed",
        f"no underlying price for: {', '.join(unpriced)}" if unpriced else None,
        {
            "options": len(inputs),
            "missing_underlying_price": unpriced,
            "vol_sources": {i.symbol: i.vol_source for i in inputs},
            "risk_free_curve": market.has_risk_free_curve,
        },
    )


def restrict_to_symbols(state: StepState, previous: dict[str, Any] | None, symbols: set[str]) -> StepState:
    """Re-check only `symbols`: symbols outside the set keep their previous failure."""
    key = FAILING_SYMBOLS.get(state.step)
    if key is None or previous is None:
        return state
    before = set((previous.get("details") or {}).get(key) or [])
    now = set(state.details.get(key) or [])
    merged = sorted((before - symbols) | (now & symbols))
    details = {**state.details, key: merged}
    if merged:
        return StepState(state.step, "failed", f"{key.replace('_', ' ')}: {', '.join(merged)}", details)
    return StepState(state.step, "completed", None, details)
