"""`rpc.factors.evaluate` (api.md §5.4): factor exposures of hypothetical books, computed and never stored.

Request `{as_of_date?, books: [{key, cash, positions: [{symbol, underlying_symbol, market_value,
dollar_exposure}]}]}` (money as decimal strings or numbers). The factor model is the stored one of
the latest date ≤ as_of_date (default: the latest stored). Betas are the stored regressions of that
date; an underlying nobody held then (e.g. a hedge ETF) is regressed in memory against the same
model (calculations.md §4.3-4.4: default betas below 60 observations) and nothing is written.
Exposures use the factor step's own maths (`factors.exposures`, §4.8): X_f = Σ E_i·β_{u(i),f},
b_f = X_f / V with V = cash + Σ MV, b_f^G = X_f / G.

Reply `{as_of_date, model_date, underlyings: {symbol: {beta_source, quality, betas: {code: β}}},
books: [{key, equity, gross_exposure, coverage_pct, factors: [{code, name, proxy, beta, beta_gross,
exposure_dollar, status, reason}]}]}`; every registry factor is listed in display order.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from common.bus import Bus
from common.errors import NotCalculated
from common.service import Plumbing
from factors import compute, exposures, market_model
from factors import repository as repo
from factors.service import NO_RETURN_SERIES, FactorPipeline, MarketModelUnavailable, _Registry, _registry

MAX_BOOKS = 32
MAX_POSITIONS = 10_000


class EvaluatePosition(BaseModel):
    """One hypothetical position: its underlying, market value and signed delta-adjusted exposure E (USD)."""

    model_config = ConfigDict(extra="ignore")

    symbol: str
    underlying_symbol: str
    market_value: float | None = None
    dollar_exposure: float | None = None


class EvaluateBook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    cash: float = 0.0
    positions: list[EvaluatePosition] = Field(default_factory=list, max_length=MAX_POSITIONS)


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of_date: date | None = None
    books: list[EvaluateBook] = Field(min_length=1, max_length=MAX_BOOKS)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class BetaTable:
    """Betas of underlyings (rows) on the registry's regression codes (columns), with source and quality."""

    def __init__(self, symbols: list[str], beta: np.ndarray, source: list[str], quality: list[str]) -> None:
        self.symbols, self.beta, self.source, self.quality = symbols, beta, source, quality
        self.row = {s: i for i, s in enumerate(symbols)}

    def extend(self, other: BetaTable) -> BetaTable:
        return BetaTable(
            self.symbols + other.symbols,
            np.vstack([self.beta, other.beta]),
            self.source + other.source,
            self.quality + other.quality,
        )


async def _regress_in_memory(
    session: AsyncSession, pipeline: FactorPipeline, registry: _Registry, model_date: date, symbols: list[str]
) -> BetaTable:
    """Betas of `symbols` against the model of `model_date`, computed like the daily step, not stored."""
    codes = registry.regression_codes
    if not symbols:
        return BetaTable([], np.zeros((0, len(codes))), [], [])
    default = np.zeros(len(codes))
    default[codes.index(registry.market)] = 1.0
    try:
        model, days = await pipeline._build_model(session, registry, model_date)
    except MarketModelUnavailable:
        n = len(symbols)
        return BetaTable(symbols, np.tile(default, (n, 1)), ["default"] * n, [compute.QUALITY_INSUFFICIENT] * n)
    closes = await repo.close_matrix(session, symbols=symbols, days=days)
    batch = await asyncio.to_thread(compute.regress_underlyings, model, compute.simple_returns(closes))
    column = {c: j for j, c in enumerate(batch.codes)}
    beta = np.column_stack([batch.beta[:, column[c]] if c in column else np.full(len(symbols), np.nan) for c in codes])
    return BetaTable(symbols, beta, [str(s) for s in batch.beta_source], [str(q) for q in batch.quality])


def _book_arrays(request: EvaluateRequest, table: BetaTable) -> tuple[exposures.PositionBook, np.ndarray]:
    positions = [(b, p) for b, book in enumerate(request.books) for p in book.positions]
    underlying = np.array([table.row[p.underlying_symbol] for _, p in positions], dtype=np.int64)
    portfolio = np.array([b for b, _ in positions], dtype=np.int64)
    book = exposures.PositionBook(
        portfolio=portfolio,
        underlying=underlying,
        exposure=np.array([_nan(p.dollar_exposure) for _, p in positions], dtype=np.float64),
        beta=table.beta[underlying] if positions else np.zeros((0, table.beta.shape[1])),
        regression=np.array([table.source[u] == "regression" for u in underlying], dtype=bool),
        quality=np.array([table.quality[u] for u in underlying], dtype=str),
    )
    cash = np.array([b.cash for b in request.books], dtype=np.float64)
    mv = np.array([_nan(p.market_value) for _, p in positions], dtype=np.float64)
    return book, exposures.equity(cash, mv, portfolio, len(request.books))


def _factor_rows(registry: _Registry, result: exposures.PortfolioExposures, p: int) -> list[dict[str, Any]]:
    column = {c: j for j, c in enumerate(registry.regression_codes)}
    defs = {d: (registry.proxies.get(d)) for d in registry.codes}
    rows = []
    for code in registry.codes:
        j = column.get(code)
        row: dict[str, Any] = {"code": code, "proxy": defs[code]}
        if j is None:  # an inactive factor (short interest): listed, never a number (§4.1)
            row.update(beta=None, beta_gross=None, exposure_dollar=None, status="not_calculated")
            row["reason"] = NO_RETURN_SERIES
        else:
            row.update(
                beta=_num(float(result.beta[p, j])),
                beta_gross=_num(float(result.beta_gross[p, j])),
                exposure_dollar=_num(round(float(result.exposure_dollar[p, j]), 2)),
                status=str(result.status[p, j]),
                reason=result.reason[p, j],
            )
        rows.append(row)
    return rows


async def evaluate_books(session: AsyncSession, pipeline: FactorPipeline, request: EvaluateRequest) -> dict[str, Any]:
    """Factor exposures of every book of `request` (nothing is stored)."""
    model_date = await repo.latest_matrix_date(
        session, lookback_days=market_model.LOOKBACK_DAYS, on_or_before=request.as_of_date
    )
    if model_date is None:
        raise NotCalculated("No factor model is stored yet", hint="POST /api/v1/admin/batch/factors")
    registry = await _registry(session)
    codes = registry.regression_codes
    underlyings = sorted({p.underlying_symbol for b in request.books for p in b.positions})
    stored = await repo.underlying_betas(session, as_of=model_date, symbols=underlyings, codes=codes)
    table = BetaTable(stored.symbols, stored.beta, list(stored.beta_source), list(stored.quality))
    missing = [s for s in underlyings if s not in table.row]
    table = table.extend(await _regress_in_memory(session, pipeline, registry, model_date, missing))
    book, equity = _book_arrays(request, table)
    result = await asyncio.to_thread(
        exposures.portfolio_exposures, book, equity=equity, n_underlyings=max(len(table.symbols), 1)
    )
    names = {d.code: d.name for d in await repo.factor_definitions(session)}
    books = []
    for p, b in enumerate(request.books):
        factors = _factor_rows(registry, result, p)
        for row in factors:
            row["name"] = names.get(row["code"])
        books.append(
            {
                "key": b.key,
                "equity": _num(round(float(result.equity[p]), 2)),
                "gross_exposure": _num(round(float(result.gross_exposure[p]), 2)),
                "coverage_pct": _num(float(result.coverage_pct[p])),
                "factors": factors,
            }
        )
    return {
        "as_of_date": (request.as_of_date or model_date).isoformat(),
        "model_date": model_date.isoformat(),
        "underlyings": {
            s: {
                "beta_source": table.source[i],
                "quality": table.quality[i],
                "betas": {c: _num(float(table.beta[i, j])) for j, c in enumerate(codes)},
            }
            for s, i in table.row.items()
            if s in underlyings
        },
        "books": books,
    }


def register(bus: Bus, plumbing: Plumbing, pipeline: FactorPipeline) -> None:
    """Serve `rpc.factors.evaluate`."""

    async def evaluate(payload: dict[str, Any]) -> dict[str, Any]:
        request = EvaluateRequest.model_validate(payload)
        async with plumbing.db.session() as session:
            return await evaluate_books(session, pipeline, request)

    bus.respond("factors.evaluate", evaluate)
