"""The factors and correlations steps of the daily cycle for a batch of portfolios (api.md §5.2–5.3).

`FactorPipeline.compute_portfolios` runs inside the caller's transaction:

1. the market-wide factor model of `as_of` (model + raw matrices, regressions of every held
   underlying not regressed yet for that date), built once per date under an advisory lock;
2. position and portfolio factor exposures of all portfolios at once: one read of valuations and
   betas, one vectorised compute (`factors.exposures`), one COPY write, inside a SAVEPOINT; when
   that batch fails unexpectedly it is re-run portfolio by portfolio, each in its own SAVEPOINT,
   so one failing book is marked failed while the others complete;
3. position correlations of the batch (`correlation_batch`: set-based reads done before step 2 so
   their compute overlaps the exposure statements, then one bulk write).

Domain failures (factor history < 60 observations) mark the step failed with a clear error code;
transient database errors propagate so the bus redelivers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import FactorsComputed, StepError, StepInfo
from common.formatting import utcnow
from common.run_cache import RunCache
from factors import compute, exposures, market_model
from factors import repository as repo
from factors.beta_cache import RunBetas
from factors.context import FactorsContext
from factors.correlation_batch import prepare_batch_correlations
from factors.run_grid import RunGrid

log = logging.getLogger(__name__)

StepStatus = Literal["completed", "partial", "failed"]
FACTOR_STEPS = ("factors", "correlations")
NO_RETURN_SERIES = "no return series in v1"


class MarketModelUnavailable(Exception):
    """The factor model of a date cannot be built (e.g. fewer than 60 complete factor rows)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class PortfolioFactorOutcome:
    """What the factors / correlations steps did for one portfolio (everything a FactorsComputed needs)."""

    portfolio_id: UUID
    factors: StepInfo | None = None
    correlations: StepInfo | None = None
    matrix_id: UUID | None = None
    correlation_calculation_id: UUID | None = None
    coverage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Registry:
    """Registry rows split the way the model needs them."""

    ids: dict[str, UUID]  # every code → factor_id
    codes: list[str]  # every code, display order (portfolio rows)
    regression_codes: list[str]  # active regression factors, display order (betas, position rows)
    market: str
    proxies: dict[str, str]  # regression code → ETF symbol or rate series id
    rate_codes: set[str]  # codes whose proxy is a rate series


async def _registry(session: AsyncSession) -> _Registry:
    defs = await repo.factor_definitions(session)
    regression = [d for d in defs if d.is_active and d.calculation_method == "regression" and d.proxy]
    market = next((d.code for d in regression if d.proxy == repo.MARKET_SYMBOL), compute.MARKET)
    return _Registry(
        ids={d.code: d.id for d in defs},
        codes=[d.code for d in defs],
        regression_codes=[d.code for d in regression],
        market=market,
        proxies={d.code: str(d.proxy) for d in regression},
        rate_codes={d.code for d in regression if d.proxy_type == "rate_series"},
    )


def _step(name: Literal["factors", "correlations"], status: StepStatus, started: datetime, **kw: Any) -> StepInfo:
    return StepInfo(name=name, status=status, started_at=started, finished_at=utcnow(), **kw)


def _error(exc: BaseException, code: str) -> StepError:
    """A domain failure keeps its own code (e.g. INSUFFICIENT_FACTOR_HISTORY); anything else gets `code`."""
    if isinstance(exc, MarketModelUnavailable):
        return StepError(code=exc.code, message=exc.message[:1000])
    message = f"{type(exc).__name__}: {exc}"
    return StepError(code=code, message=message[:1000])


def _float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _floats(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


@dataclass
class _Computed:
    """Rows and summaries of one exposure batch."""

    coverage: dict[UUID, dict[str, Any]]
    records: dict[UUID, int]


class FactorPipeline:
    """Factor model, factor exposures and position correlations for batches of portfolios."""

    def __init__(self, ctx: FactorsContext) -> None:
        self.ctx = ctx
        self.betas: RunCache[RunBetas] = RunCache()
        self.grids: RunCache[RunGrid] = RunCache()

    async def _betas(
        self, session: AsyncSession, *, as_of: date, run_id: UUID | None, symbols: list[str], codes: list[str]
    ) -> repo.StoredBetas:
        """Stored betas of `symbols` (a run reads each symbol once; outside a run, always read)."""
        cached = self.betas.get(as_of, run_id)
        if cached is None or cached.codes != tuple(codes):
            cached = RunBetas(tuple(codes))
            self.betas.put(as_of, run_id, cached)
        missing = cached.missing(symbols)
        if missing:
            cached.add(await repo.underlying_betas(session, as_of=as_of, symbols=missing, codes=codes))
        return cached.select(symbols)

    # -- market model --------------------------------------------------------------------------

    async def ensure_market_model(self, session: AsyncSession, *, as_of: date, run_id: UUID | None) -> UUID:
        """The model matrix id of `as_of`; builds the matrices and regresses every held underlying not
        regressed yet for that date. Raises MarketModelUnavailable when the model cannot be built."""
        return await self._ensure(session, as_of=as_of, run_id=run_id, symbols=await repo.held_underlyings(session))

    async def _ensure(self, session: AsyncSession, *, as_of: date, run_id: UUID | None, symbols: Sequence[str]) -> UUID:
        """The model of `as_of` with every one of `symbols` regressed. Once anything must be built,
        every held underlying is regressed too: the first batch of a date pays for one read of the
        whole close matrix, later batches only check their own underlyings (two indexed reads)."""
        wanted = sorted(set(symbols))

        async def state() -> tuple[dict[str, Any] | None, list[str]]:
            stored = await repo.matrix(session, as_of=as_of, lookback_days=market_model.LOOKBACK_DAYS, basis="model")
            done = await repo.regressed_symbols(session, as_of=as_of, symbols=wanted)
            return stored, sorted(set(wanted) - done)

        # Checked before and after the lock: a model that is already complete (the common case once
        # the first batch of the day built it) never serialises concurrent batches on the lock,
        # which is held until the caller's transaction ends.
        stored, missing = await state()
        if stored is not None and not missing:
            matrix_id: UUID = stored["id"]
            return matrix_id
        await repo.lock_market_model(session, as_of=as_of)
        wanted = sorted(set(wanted) | set(await repo.held_underlyings(session)))
        stored, missing = await state()
        if stored is not None and not missing:
            matrix_id = stored["id"]
            return matrix_id
        registry = await _registry(session)
        model, days = await self._build_model(session, registry, as_of)
        if stored is None:
            ids = {}
            for row, cells in market_model.matrix_rows(model, as_of=as_of, run_id=run_id):
                ids[row["basis"]] = await repo.upsert_matrix(session, row=row, cells=cells)
            matrix_id = ids["model"]
        else:
            matrix_id = stored["id"]
        if missing:
            closes = await repo.close_matrix(session, symbols=missing, days=days)
            batch = compute.regress_underlyings(model, compute.simple_returns(closes))
            regressions, betas = market_model.regression_rows(
                batch,
                model=model,
                symbols=missing,
                factor_ids={c: registry.ids[c] for c in registry.regression_codes},
                matrix_id=matrix_id,
                as_of=as_of,
                run_id=run_id,
            )
            # `missing` has no stored regression (checked under the lock): plain inserts.
            await repo.insert_new_regressions(session, regressions=regressions, betas=betas)
        return matrix_id

    async def _build_model(
        self, session: AsyncSession, registry: _Registry, as_of: date
    ) -> tuple[compute.FactorModel, list[date]]:
        days = await repo.trading_window(session, as_of=as_of, returns=compute.FACTOR_WINDOW)
        if len(days) < 2 or days[-1] != as_of:
            raise MarketModelUnavailable("NOT_TRADING_DAY", f"{as_of.isoformat()} is not a trading day with a window")
        etf_codes = [c for c in registry.regression_codes if c not in registry.rate_codes]
        closes = await repo.close_matrix(session, symbols=[registry.proxies[c] for c in etf_codes], days=days)
        returns = compute.simple_returns(closes)
        series = {code: returns[:, j] for j, code in enumerate(etf_codes)}
        for code in registry.rate_codes:
            levels = await repo.rate_levels(session, days=days, series=registry.proxies[code])
            series[code] = compute.yield_changes(levels)
        market = series.pop(registry.market)
        names = {c: registry.proxies[c] for c in etf_codes} | {c: compute.RAW_RATE_NAME for c in registry.rate_codes}
        try:
            model = compute.build_factor_model(
                days[1:],
                market,
                series,
                raw_names=names,
                market_code=registry.market,
                market_name=registry.proxies[registry.market],
                optional={c: "rate_data_missing" for c in registry.rate_codes},
            )
        except compute.FactorModelError as exc:
            raise MarketModelUnavailable(exc.code, str(exc)) from exc
        return model, days

    # -- portfolios ----------------------------------------------------------------------------

    async def compute_portfolios(
        self,
        session: AsyncSession,
        *,
        portfolio_ids: Sequence[UUID],
        as_of: date,
        run_id: UUID | None,
        steps: Collection[str] = FACTOR_STEPS,
        duration_days: int = 90,
    ) -> dict[UUID, PortfolioFactorOutcome]:
        """Run `steps` for every portfolio in the caller's transaction; {portfolio_id: outcome}."""
        ids = list(dict.fromkeys(portfolio_ids))
        outcomes = {pid: PortfolioFactorOutcome(pid) for pid in ids}
        if not ids:
            return outcomes
        prepared = None
        started = utcnow()
        if "correlations" in steps:
            # Reads first: the correlation compute then runs in a worker thread while the factors
            # step's statements keep the database busy (correlations read no factors rows).
            prepared = await prepare_batch_correlations(
                session, portfolio_ids=ids, as_of=as_of, duration_days=duration_days, run_id=run_id, grids=self.grids
            )
        try:
            if "factors" in steps:
                await self._factors(session, outcomes, as_of=as_of, run_id=run_id)
        except BaseException:
            if prepared is not None:
                await prepared.discard()
            raise
        if prepared is not None:
            results = await prepared.finish(session)
            for pid, result in results.items():
                status: StepStatus = "failed" if result.status == "failed" else "completed"
                outcomes[pid].correlations = _step(
                    "correlations", status, started, records_processed=result.records, error=result.error
                )
                outcomes[pid].correlation_calculation_id = result.calculation_id
        return outcomes

    async def _factors(
        self, session: AsyncSession, outcomes: dict[UUID, PortfolioFactorOutcome], *, as_of: date, run_id: UUID | None
    ) -> None:
        ids = list(outcomes)
        started = utcnow()
        try:
            async with session.begin_nested():
                # The batch's own underlyings are checked in _exposures; here only the model itself.
                matrix_id = await self._ensure(session, as_of=as_of, run_id=run_id, symbols=())
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            if not isinstance(exc, MarketModelUnavailable):
                log.exception("factor model of %s failed", as_of)
            error = _error(exc, "FACTOR_MODEL_FAILED")
            for outcome in outcomes.values():
                outcome.factors = _step("factors", "failed", started, records_processed=0, error=error)
            return
        groups = [ids]
        while groups:
            group = groups.pop(0)
            try:
                async with session.begin_nested():
                    computed = await self._exposures(session, group, as_of=as_of, run_id=run_id)
            except Exception as exc:
                if is_transient_db_error(exc):
                    raise
                if len(group) > 1:
                    log.warning("factor exposures of %d portfolios failed; retrying one by one", len(group))
                    groups.extend([pid] for pid in group)
                    continue
                log.exception("factor exposures of portfolio %s on %s failed", group[0], as_of)
                outcomes[group[0]].factors = _step(
                    "factors", "failed", started, records_processed=0, error=_error(exc, "FACTORS_FAILED")
                )
                continue
            for pid in group:
                outcome = outcomes[pid]
                outcome.matrix_id = matrix_id
                outcome.coverage = computed.coverage[pid]
                outcome.factors = _step("factors", "completed", started, records_processed=computed.records[pid])

    async def _exposures(
        self, session: AsyncSession, ids: list[UUID], *, as_of: date, run_id: UUID | None
    ) -> _Computed:
        """Read, compute and store the exposures of `ids` (one read, one compute, one COPY write)."""
        registry = await _registry(session)
        valued = await repo.valuations(session, portfolio_ids=ids, as_of=as_of)
        codes = registry.regression_codes
        underlyings = sorted(set(valued.underlying))
        # Positions valued on `as_of` but no longer held (a re-run of a past day) are regressed too.
        # A symbol whose regression row this run already read (the beta cache) needs no re-check.
        cached = self.betas.get(as_of, run_id)
        known = cached.beta if cached is not None and cached.codes == tuple(codes) else {}
        await self._ensure(session, as_of=as_of, run_id=run_id, symbols=[s for s in underlyings if s not in known])
        stored = await self._betas(session, as_of=as_of, run_id=run_id, symbols=underlyings, codes=codes)
        computed = _compute(registry, ids, valued, stored, underlyings)
        positions = _position_columns(registry, valued, computed, run_id=run_id)
        portfolios = _portfolio_columns(registry, ids, valued, underlyings, computed, run_id=run_id)
        await repo.replace_exposures(
            session, portfolio_ids=ids, as_of=as_of, positions=positions, portfolios=portfolios
        )
        return _Computed(*_summaries(ids, computed, valued))

    # -- events --------------------------------------------------------------------------------

    @staticmethod
    def event(
        outcome: PortfolioFactorOutcome,
        *,
        as_of: date,
        run_id: UUID | None,
        cascade: bool,
        correlation_id: str | None,
    ) -> FactorsComputed:
        """The `factors.computed` of one portfolio: `step` = factors (else correlations), the other in
        `extra_steps`."""
        steps = [s for s in (outcome.factors, outcome.correlations) if s is not None]
        return FactorsComputed(
            portfolio_id=outcome.portfolio_id,
            matrix_id=outcome.matrix_id,
            correlation_calculation_id=outcome.correlation_calculation_id,
            coverage=outcome.coverage,
            step=steps[0] if steps else None,
            extra_steps=steps[1:],
            run_id=run_id,
            as_of=as_of,
            correlation_id=correlation_id,
            cascade=cascade,
        )


# -- pure assembly of one exposure batch (arrays in, rows out) -----------------------------------


@dataclass(frozen=True)
class _BatchResult:
    book: exposures.PositionBook
    x: np.ndarray  # (N, K) position factor exposures
    portfolio: exposures.PortfolioExposures
    beta_source: np.ndarray  # (N,) str
    cash_unknown: np.ndarray  # (P,) bool


def _compute(
    registry: _Registry,
    ids: list[UUID],
    valued: repo.Valuations,
    stored: repo.StoredBetas,
    underlyings: list[str],
) -> _BatchResult:
    pindex = {pid: i for i, pid in enumerate(ids)}
    uindex = {s: i for i, s in enumerate(underlyings)}
    sindex = {s: i for i, s in enumerate(stored.symbols)}
    portfolio = np.array([pindex[p] for p in valued.portfolio_id], dtype=np.int64)
    underlying = np.array([uindex[u] for u in valued.underlying], dtype=np.int64)
    # Underlyings without a stored regression fall back to the default betas (§4.4: market 1, others 0).
    row_of_underlying = np.array([sindex.get(u, -1) for u in underlyings], dtype=np.int64)
    k = len(registry.regression_codes)
    default_beta = np.zeros(k)
    default_beta[registry.regression_codes.index(registry.market)] = 1.0
    table = np.vstack([stored.beta, default_beta[None, :]]) if stored.symbols else default_beta[None, :]
    source_table = np.array([*stored.beta_source, "default"])
    quality_table = np.array([*stored.quality, compute.QUALITY_INSUFFICIENT])
    rows = row_of_underlying[underlying] if underlying.size else np.zeros(0, dtype=np.int64)
    rows = np.where(rows >= 0, rows, len(stored.symbols))
    beta = table[rows] if rows.size else np.zeros((0, k))
    beta_source = source_table[rows]
    book = exposures.PositionBook(
        portfolio=portfolio,
        underlying=underlying,
        exposure=_floats(valued.exposure),
        beta=beta,
        regression=beta_source == "regression",
        quality=quality_table[rows],
    )
    cash = _floats([valued.cash.get(pid) for pid in ids])
    equity = exposures.equity(cash, _floats(valued.market_value), portfolio, len(ids))
    result = exposures.portfolio_exposures(book, equity=equity, n_underlyings=len(underlyings))
    return _BatchResult(book, exposures.position_exposures(book.exposure, beta), result, beta_source, np.isnan(cash))


def _position_columns(
    registry: _Registry, valued: repo.Valuations, r: _BatchResult, *, run_id: UUID | None
) -> repo.PositionExposureColumns:
    """position_factor_exposure columns of the positions with a known exposure."""
    codes = registry.regression_codes
    keep = np.flatnonzero(np.isfinite(r.book.exposure))
    n = keep.size

    def each(values: Any) -> list[Any]:  # one value per kept position
        return np.asarray(values, dtype=object)[keep].tolist() if n else []

    def money(values: np.ndarray) -> list[float]:  # USD to the cent (numeric(20,2)); NaN = NULL
        out: list[float] = np.round(np.asarray(values, dtype=np.float64), 2).tolist()
        return out

    return repo.PositionExposureColumns(
        factor_id=[registry.ids[c] for c in codes],
        position_id=each(valued.position_id),
        portfolio_id=each(valued.portfolio_id),
        symbol=each(valued.symbol),
        underlying_symbol=each(valued.underlying),
        exposure=money(r.book.exposure[keep]),
        beta_source=each(r.beta_source),
        quality_flag=each(r.book.quality),
        beta=r.book.beta[keep].ravel().tolist(),
        exposure_dollar=money(r.x[keep].ravel()),
        run_id=run_id,
    )


def _portfolio_columns(
    registry: _Registry,
    ids: list[UUID],
    valued: repo.Valuations,
    underlyings: list[str],
    r: _BatchResult,
    *,
    run_id: UUID | None,
) -> repo.PortfolioExposureColumns:
    """portfolio_factor_exposure rows of every registry factor (display order) of every portfolio.
    An inactive factor (short_interest) is listed, never a number (§4.1): no amounts, no betas, no
    contributors, status not_calculated."""
    pe = r.portfolio
    p = len(ids)
    column_of = {c: j for j, c in enumerate(registry.regression_codes)}
    source = np.array([column_of.get(c, -1) for c in registry.codes], dtype=np.int64)  # (F,) −1 = inactive
    active = source >= 0
    pick = np.where(active, source, 0)

    def per_factor(values: np.ndarray, inactive: Any) -> np.ndarray:  # (P, K) → (P, F)
        return np.where(active[None, :], np.asarray(values)[:, pick], inactive)

    largest = per_factor(pe.largest_contributor, -1).ravel().tolist()
    status = per_factor(pe.status.astype(object), "not_calculated").ravel().tolist()
    reason = per_factor(pe.reason.astype(object), NO_RETURN_SERIES).ravel().tolist()
    excluded = np.flatnonzero(~np.isfinite(r.book.exposure))
    excluded_by: dict[int, list[dict[str, str]]] = {}
    for i in excluded.tolist():
        excluded_by.setdefault(int(r.book.portfolio[i]), []).append(
            {"position_id": str(valued.position_id[i]), "symbol": valued.symbol[i], "reason": "missing_exposure"}
        )
    flags = [
        [
            name
            for name, on in (
                ("equity_undefined", bool(pe.equity_undefined[q])),
                ("cash_unknown", bool(r.cash_unknown[q])),
                ("missing_exposure", q in excluded_by),
            )
            if on
        ]
        for q in range(p)
    ]
    return repo.PortfolioExposureColumns(
        portfolio_id=list(ids),
        factor_id=[registry.ids[c] for c in registry.codes],
        exposure_dollar=per_factor(pe.exposure_dollar, np.nan),
        beta=per_factor(pe.beta, np.nan),
        beta_gross=per_factor(pe.beta_gross, np.nan),
        equity=pe.equity,
        gross_exposure=pe.gross_exposure,
        contributing_positions=per_factor(pe.contributing, 0),
        largest_contributor=[underlyings[u] if u >= 0 else None for u in largest],
        coverage_pct=pe.coverage_pct,
        positions_full=pe.positions_full,
        positions_limited=pe.positions_limited,
        positions_default=pe.positions_default,
        status=[str(x) for x in status],
        reason=reason,
        flags=flags,
        # Serialised once per portfolio, not once per factor row.
        excluded=[json.dumps(excluded_by[q]) if q in excluded_by else "[]" for q in range(p)],
        engine_version=compute.ENGINE_VERSION,
        run_id=run_id,
    )


def _summaries(
    ids: list[UUID], r: _BatchResult, valued: repo.Valuations
) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, int]]:
    """The `coverage` block of each portfolio's factors.computed and its processed-position count."""
    pe = r.portfolio
    included = pe.positions_full + pe.positions_limited + pe.positions_default
    coverage = {
        pid: {
            "positions_total": int(included[p] + pe.positions_excluded[p]),
            "full_history": int(pe.positions_full[p]),
            "limited_history": int(pe.positions_limited[p]),
            "default_betas": int(pe.positions_default[p]),
            "excluded": int(pe.positions_excluded[p]),
            "coverage_pct": _float(float(pe.coverage_pct[p])),
            "status": "ok" if (pe.status[p] == "ok").any() else "not_calculated",
        }
        for p, pid in enumerate(ids)
    }
    return coverage, {pid: int(included[p]) for p, pid in enumerate(ids)}
