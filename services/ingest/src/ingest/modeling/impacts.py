"""Before/after risk of pro-forma books through the engines (api.md #56-#57): orchestration, no storage.

1. units: latest closes of symbols new to the session, per-share Greeks of every option contract
   (rpc.greeks.evaluate);
2. the books go to rpc.factors.evaluate (exposures and betas) and rpc.stress.evaluate (scenarios,
   VaR), the stress engine getting the factor engine's betas for underlyings without a stored
   regression so both engines see the same betas;
3. M per book (ingest.modeling.metrics). An engine that fails leaves its blocks empty and a warning;
   the local figures (market value, exposure, notional, Greeks, concentration) are always there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from common.db import Database
from common.errors import ApiError
from ingest.modeling import metrics
from ingest.modeling.book import BookedTrade, trade_summary
from ingest.modeling.engines import Engines, payload_books
from ingest.modeling.market import latest_closes
from ingest.modeling.proforma import SessionBook, session_units
from ingest.modeling.valuation import Unit, ValuedBook

GREEK_STATUSES_WITH_VALUES = ("ok", "expired")


@dataclass
class Evaluation:
    """What the engines said about a set of books, keyed like the books."""

    as_of: date
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # M (floats) per book
    scenarios: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # every scenario per book
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)  # factors engine answer per book
    betas: dict[str, Any] = field(default_factory=dict)  # underlying → {beta_source, quality, betas}
    model_date: str | None = None
    warnings: list[str] = field(default_factory=list)


async def load_units(
    db: Database, engines: Engines, book: SessionBook, as_of: date, extra: Sequence[BookedTrade] = ()
) -> tuple[dict[str, Unit], list[str]]:
    """Units of every symbol of the session (plus `extra` trades) and warnings about missing inputs."""
    warnings: list[str] = []
    closes = await latest_closes(db, book.new_instruments(extra), as_of)
    options: dict[str, Any] = {}
    contracts = book.option_symbols(extra)
    if contracts:
        try:
            options = await engines.option_inputs(contracts, as_of)
        except ApiError as exc:
            warnings.append(f"option Greeks unavailable ({exc.code}): {exc.message}")
    no_greeks = sorted(s for s in contracts if s not in options or options[s].status not in GREEK_STATUSES_WITH_VALUES)
    if no_greeks and options:
        warnings.append("no model Greeks for " + ", ".join(no_greeks) + "; their Greeks are left out of the totals")
    units = session_units(book, {s: q.price for s, q in closes.items()}, options, extra)
    return units, warnings


async def evaluate(engines: Engines, books: Mapping[str, ValuedBook], as_of: date) -> Evaluation:
    """Factor exposures, stress and VaR of every book, then M per book."""
    out = Evaluation(as_of)
    payload = payload_books(books)
    factors: dict[str, Any] | None = None
    stress: dict[str, Any] | None = None
    try:
        factors = await engines.factors(payload, as_of)
        out.betas = factors.get("underlyings") or {}
        out.model_date = factors.get("model_date")
    except ApiError as exc:
        out.warnings.append(f"factor exposures unavailable ({exc.code}): {exc.message}")
    try:
        stress = await engines.stress(payload, as_of, out.betas)
        if "factor_model_stale" in stress.get("flags", []):
            out.warnings.append(f"the factor model of {stress['model_date']} is older than {as_of.isoformat()}")
    except ApiError as exc:
        out.warnings.append(f"stress tests and VaR unavailable ({exc.code}): {exc.message}")
    f_by = {b["key"]: b for b in (factors or {}).get("books", [])}
    s_by = {b["key"]: b for b in (stress or {}).get("books", [])}
    for key, book in books.items():
        out.figures[key] = metrics.compose(book, f_by.get(key), s_by.get(key))
        out.scenarios[key] = metrics.scenario_pnls(s_by.get(key))
        if key in f_by:
            out.factors[key] = f_by[key]
        unknown = [u.instrument.symbol for u, e in zip(book.units, book.exposure, strict=True) if not math.isfinite(e)]
        if unknown and key == "after":
            out.warnings.append("no delta-adjusted exposure for " + ", ".join(unknown) + "; left out of exposures")
    return out


def comparison(evaluation: Evaluation, before: str, after: str) -> dict[str, Any]:
    """{before, after, change} in wire format for two books of an evaluation."""
    b, a = evaluation.figures[before], evaluation.figures[after]
    delta = metrics.change(a, b, evaluation.scenarios.get(before, []))
    return {"before": metrics.present(b), "after": metrics.present(a), "change": metrics.present(delta)}


def impacts_document(
    evaluation: Evaluation, trades: Sequence[BookedTrade], trade_version: int, warnings: Sequence[str]
) -> dict[str, Any]:
    """The stored impacts of a calculation (api.md #57 without the per-request fields)."""
    return {
        "trade_version": trade_version,
        "as_of": evaluation.as_of.isoformat(),
        "model_date": evaluation.model_date,
        **comparison(evaluation, "before", "after"),
        "changes_summary": [trade_summary(t) for t in trades],
        "warnings": [*warnings, *evaluation.warnings],
    }
