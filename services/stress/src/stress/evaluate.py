"""`rpc.stress.evaluate` (api.md §5.4): stress tests, market-risk scenarios and VaR of hypothetical books.

Nothing is stored. The books go through the very code of the daily steps: `scenarios_inputs.assemble`
(inclusion rules, option legs, default betas), `compute_stress` (§6.3 direct and §6.4 correlated impact
of every active catalogue scenario), `compute.market_risk` (§5) and the VaR of `compute.var` on the
shared market window of `RiskMetricsEngine` (§8.1-8.3: delta-gamma historical and delta-normal).

Request `{as_of_date?, books: [{key, cash, positions: [...]}], betas?}`. A position carries symbol,
underlying_symbol, market_value, dollar_exposure (signed E, USD) and, for an option, is_option,
quantity, multiplier and its per-share revaluation inputs (spot, strike, is_call, time_to_expiry in
years, rate, dividend_yield, sigma, greek_status "ok") plus its position gamma Γ·q·m. `betas`
(`{symbol: {beta_source, betas: {code: β}}}`, e.g. rpc.factors.evaluate's `underlyings`) supplies
underlyings without a stored regression on the model date (a hedge ETF nobody holds).

Reply `{as_of_date, model_date, flags, books: [{key, equity, factor_exposures, stress: [{scenario_id,
name, category, direct_pnl, correlated_pnl}], market_risk: [{scenario, kind, shock, pnl, linear_pnl}],
var: {observations, historical: {"0.95": {var, es}, …}, parametric: {…}, sigma_daily,
ex_ante_volatility_annual}, coverage, flags}]}`; P&L in dollars (losses negative), VaR positive.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from common.bus import Bus
from stress import risk_repository as risk_repo
from stress import stress_repository as repo
from stress.catalogue import active_factor_codes
from stress.compute.market_risk import market_risk
from stress.compute.risk_metrics import ANNUALIZATION, MarketWindow
from stress.compute.scenarios import MODEL_FACTORS
from stress.compute.var import CONFIDENCES, aggregate_underlyings, var_metrics
from stress.pipeline import StressPipeline
from stress.scenarios_inputs import AssembledBook, BetaTable, assemble, factor_availability
from stress.stress_service import LoadedBooks, NoFactorModel, compute_stress, scenario_set

MAX_BOOKS = 32


class EvaluatePosition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symbol: str
    underlying_symbol: str
    market_value: float | None = None
    dollar_exposure: float | None = None
    is_option: bool = False
    quantity: float | None = None
    multiplier: float = 1.0
    spot: float | None = None
    strike: float | None = None
    is_call: bool = False
    time_to_expiry: float | None = None
    rate: float | None = None
    dividend_yield: float | None = None
    sigma: float | None = None
    gamma: float | None = None
    greek_status: str | None = None


class EvaluateBook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    cash: float = 0.0
    positions: list[EvaluatePosition] = Field(default_factory=list)


class SuppliedBetas(BaseModel):
    model_config = ConfigDict(extra="ignore")

    beta_source: str = "regression"
    betas: dict[str, float | None] = Field(default_factory=dict)


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of_date: date | None = None
    books: list[EvaluateBook] = Field(min_length=1, max_length=MAX_BOOKS)
    betas: dict[str, SuppliedBetas] = Field(default_factory=dict)


def _num(value: float, digits: int | None = 2) -> float | None:
    if not math.isfinite(value):
        return None
    return round(float(value), digits) if digits is not None else float(value)


def _columns(request: EvaluateRequest, ids: list[uuid.UUID]) -> dict[str, list[Any]]:
    """The position columns `assemble` reads, from the request's books."""
    rows = [(ids[b], p) for b, book in enumerate(request.books) for p in book.positions]

    def col(name: str) -> list[Any]:
        return [getattr(p, name) for _, p in rows]

    return {
        "position_id": [f"{pid}:{i}" for i, (pid, _) in enumerate(rows)],
        "portfolio_id": [pid for pid, _ in rows],
        "symbol": col("symbol"),
        "underlying_symbol": col("underlying_symbol"),
        "dollar_exposure": col("dollar_exposure"),
        "market_value": col("market_value"),
        "is_option": col("is_option"),
        "greek_status": col("greek_status"),
        "spot": col("spot"),
        "strike": col("strike"),
        "time_to_expiry": col("time_to_expiry"),
        "rate": col("rate"),
        "dividend_yield": col("dividend_yield"),
        "sigma": col("sigma"),
        "is_call": col("is_call"),
        "quantity": col("quantity"),
        "multiplier": col("multiplier"),
    }


def with_supplied(table: BetaTable, supplied: dict[str, SuppliedBetas]) -> BetaTable:
    """Fill underlyings that have no stored regression with the caller's betas (NaN where a code is missing)."""
    betas, regression = table.betas.copy(), table.regression.copy()
    for i, symbol in enumerate(table.symbols):
        given = supplied.get(symbol)
        if given is None or regression[i]:
            continue
        values = [given.betas.get(code) for code in MODEL_FACTORS]
        betas[i] = [math.nan if v is None else float(v) for v in values]
        regression[i] = given.beta_source == "regression"
    return replace(table, betas=betas, regression=regression)


def _var_block(window: MarketWindow, request: EvaluateRequest, equity: np.ndarray) -> list[dict[str, Any]]:
    """Historical (delta-gamma) and parametric VaR/ES of each book on the shared window (§8.1-8.3)."""
    out = []
    for b, book in enumerate(request.books):
        kept = [p for p in book.positions if p.dollar_exposure is not None and math.isfinite(p.dollar_exposure)]
        columns = np.array([window.column[p.underlying_symbol] for p in kept], dtype=np.int64)
        exposure = np.array([p.dollar_exposure for p in kept], dtype=np.float64)
        # Γ$_u = Γ·q·m·S² (the position gamma times the squared spot); stocks have none.
        gamma = np.array(
            [(p.gamma or 0.0) * (p.spot or 0.0) ** 2 if p.is_option else 0.0 for p in kept], dtype=np.float64
        )
        var = var_metrics(window.panel.returns, aggregate_underlyings(columns, exposure, gamma))
        v = float(equity[b])
        sigma = var.sigma_daily
        out.append(
            {
                "observations": var.observations,
                "historical": {str(a): {"var": _num(t.var), "es": _num(t.es)} for a, t in var.historical.items()},
                "parametric": {str(a): {"var": _num(t.var), "es": _num(t.es)} for a, t in var.parametric.items()},
                "sigma_daily": None if sigma is None else _num(sigma),
                "ex_ante_volatility_annual": (
                    None if sigma is None or not v > 0 else _num(sigma * math.sqrt(ANNUALIZATION) / v, None)
                ),
                "confidences": list(CONFIDENCES),
            }
        )
    return out


def _book_reply(assembled: AssembledBook, p: int) -> dict[str, Any]:
    """Equity, the stress engine's own factor exposures X_f, coverage and flags of book `p`."""
    return {
        "equity": _num(float(assembled.book.equity[p])),
        "factor_exposures": dict(
            zip(MODEL_FACTORS, [_num(float(x)) for x in assembled.book.factor_exposures()[p]], strict=True)
        ),
        "coverage": assembled.coverage[p],
        "flags": assembled.flags[p],
    }


async def evaluate_books(session: AsyncSession, pipeline: StressPipeline, request: EvaluateRequest) -> dict[str, Any]:
    """Stress, market-risk scenarios and VaR of every book of `request` (nothing is stored)."""
    as_of = request.as_of_date
    matrix = await repo.latest_model_matrix(session, as_of or date.max)
    if matrix is None:
        raise NoFactorModel("no factor model is stored yet; run the factors step first")
    as_of = as_of or matrix.calculation_date
    ids = [uuid.uuid4() for _ in request.books]
    columns = _columns(request, ids)
    underlyings = sorted(set(columns["underlying_symbol"]))
    codes = frozenset(await active_factor_codes(session))
    table = BetaTable.from_rows(await repo.underlying_betas(session, underlyings, matrix.calculation_date), underlyings)
    table = with_supplied(table, request.betas)
    available = factor_availability(matrix, codes, table)
    assembled = assemble(ids, [b.cash for b in request.books], columns, table, available)
    scenarios, meta = scenario_set(await repo.scenarios(session, active_only=True), codes)
    loaded = LoadedBooks(as_of, matrix, assembled, {}, codes)
    computation = await asyncio.to_thread(compute_stress, loaded, scenarios)
    risk = await asyncio.to_thread(market_risk, assembled.book, available)
    present = await risk_repo.views_present(session, risk_repo.FACTOR_VIEWS)
    panel = risk_repo.ClosePanel(days=await risk_repo.calendar_days(session, as_of))
    window = await pipeline.risk.market_window(session, as_of, panel, set(underlyings), present)
    var = await asyncio.to_thread(_var_block, window, request, assembled.book.equity)

    direct = computation.direct.total
    # Without a covariance the correlated impact is not computed (NaN → null), never replaced by the direct one.
    correlated = computation.correlated.impacts.total if computation.correlated else np.full_like(direct, np.nan)
    books = []
    for p, book in enumerate(request.books):
        reply = {"key": book.key, **_book_reply(assembled, p), "var": var[p]}
        reply["stress"] = [
            {
                "scenario_id": meta.keys[s],
                "name": meta.names[s],
                "category": meta.categories[s],
                "direct_pnl": _num(float(direct[s, p])),
                "correlated_pnl": _num(float(correlated[s, p])),
            }
            for s in range(len(meta.keys))
        ]
        reply["market_risk"] = [
            {
                "scenario": risk.scenarios.keys[s],
                "kind": risk.kinds[s],
                "shock": float(next(iter(v for v in risk.scenarios.shocks[s] if v))),
                "pnl": _num(float(risk.impacts.total[s, p])),
                "linear_pnl": _num(float(risk.impacts.linear[s, p])),
            }
            for s in range(len(risk.scenarios))
        ]
        books.append(reply)
    flags = ["factor_model_stale"] if matrix.calculation_date < as_of else []
    return {
        "as_of_date": as_of.isoformat(),
        "model_date": matrix.calculation_date.isoformat(),
        "flags": flags,
        "books": books,
    }


def register(bus: Bus, pipeline: StressPipeline) -> None:
    """Serve `rpc.stress.evaluate`."""

    async def evaluate(payload: dict[str, Any]) -> dict[str, Any]:
        request = EvaluateRequest.model_validate(payload)
        async with pipeline.plumbing.db.session() as session:
            return await evaluate_books(session, pipeline, request)

    bus.respond("stress.evaluate", evaluate)
