"""Market-risk scenarios (`risk_scenarios` step) and stress tests (`stress_tests` step) of the stress service.

The daily orchestration (stress.handlers, on `factors.computed`) calls, inside its unit of work:

* `compute_market_risk(session, portfolio_id=, as_of=, run_id=)` → `MarketRiskOutcome`: stores the ten
  `stress.market_risk_result` rows (§5) and returns them with X_M, X_R and DV01;
* `run_stress_tests(session, portfolio_id=, as_of=, trigger=, categories=, scenario_ids=, run_id=, job_id=)`
  → `StressRunOutcome`: stores one `stress.stress_run` with its results (one `stress.stress_result_set` row, read per
  scenario through the view `stress.stress_result`, §6).

`compute_market_risk_many` / `run_stress_tests_many` do the same for many portfolios with one set of
reads, one vectorised computation and bulk upserts (the daily cycle runs them for every book).
Each runs in a SAVEPOINT: a failure is returned as a failed outcome (with the step's error) and
leaves the caller's transaction usable; transient database errors propagate so the bus retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import StepError, StepInfo
from common.formatting import utcnow
from stress import stress_repository as repo
from stress.beta_cache import beta_table
from stress.catalogue import active_factor_codes, validate_shocks
from stress.compute.market_risk import MarketRisk, market_risk
from stress.compute.scenarios import MARKET, MODEL_FACTORS, ScenarioSet, correlated_impact, direct_impact
from stress.errors import StressError
from stress.money_vector import money_decimals
from stress.scenarios_inputs import AssembledBook, ScenarioMeta, assemble, factor_availability
from stress.scenarios_present import ScenarioPresenter, StressComputation, market_risk_rows

log = logging.getLogger(__name__)

Status = Literal["completed", "partial", "failed"]


class NoFactorModel(StressError):
    """No model-basis factor covariance is stored on or before the date (the factors step has not run)."""

    code = "NOT_CALCULATED"


class PortfolioMissing(StressError):
    """The portfolio is not (or no longer) live in ingest."""

    code = "PORTFOLIO_NOT_FOUND"


@dataclass(frozen=True)
class MarketRiskOutcome:
    """Result of the `risk_scenarios` step for one portfolio."""

    portfolio_id: UUID
    as_of: date
    status: Status
    rows: list[dict[str, Any]] = field(default_factory=list)  # the stored market_risk_result rows
    market_exposure: Decimal | None = None  # X_M
    rate_exposure_dollar: Decimal | None = None  # X_R: P&L per 1.00 yield change
    dv01: Decimal | None = None  # X_R / 10,000: P&L per +1 bp
    factor_exposure_date: date | None = None
    flags: list[str] = field(default_factory=list)
    error: StepError | None = None
    step: StepInfo | None = None

    @property
    def partial(self) -> bool:
        return self.status == "partial"


@dataclass(frozen=True)
class StressRunOutcome:
    """Result of the `stress_tests` step for one portfolio."""

    portfolio_id: UUID
    as_of: date
    status: Status
    stress_run_id: UUID | None = None
    worst_pnl: Decimal | None = None  # lowest correlated (else direct) P&L over the scenarios run
    worst_scenario: str | None = None
    scenarios_run: int = 0
    partial: bool = False
    flags: list[str] = field(default_factory=list)
    error: StepError | None = None
    step: StepInfo | None = None


def _step(name: str, status: Status, started: datetime, records: int, error: StepError | None) -> StepInfo:
    return StepInfo(
        name=name,
        status=status,
        started_at=started,
        finished_at=utcnow(),
        records_processed=records,
        error=error,
    )


_NOT_LIVE = StepError(code="PORTFOLIO_NOT_FOUND", message="portfolio is not live in ingest")

_Outcome = TypeVar("_Outcome", MarketRiskOutcome, StressRunOutcome)
# `(live portfolio ids, their cash balances, step start) -> outcomes`: the step's work on the live books.
_StepBody = Callable[[list[UUID], list[Any], datetime], Awaitable[dict[UUID, _Outcome]]]


async def _run_step(
    session: AsyncSession,
    name: str,
    portfolio_ids: Sequence[UUID],
    as_of: date,
    failed: Callable[[UUID, StepError, StepInfo], _Outcome],
    body: _StepBody[_Outcome],
) -> dict[UUID, _Outcome]:
    """One step for many portfolios in a SAVEPOINT: portfolios not live fail alone, `body` runs on the
    others; a failure of `body` fails every portfolio (transient database errors propagate)."""
    started = utcnow()
    ids = list(dict.fromkeys(portfolio_ids))
    outcomes: dict[UUID, _Outcome] = {}
    try:
        async with session.begin_nested():
            live = await _live_portfolios(session, ids)
            for pid in ids:
                if pid not in live:
                    outcomes[pid] = failed(pid, _NOT_LIVE, _step(name, "failed", started, 0, _NOT_LIVE))
            present = [pid for pid in ids if pid in live]
            if present:
                outcomes.update(await body(present, [live[p].cash_balance for p in present], started))
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        if not isinstance(exc, StressError):
            log.exception("%s failed for %d portfolio(s) on %s", name, len(ids), as_of)
        err = _error(exc)
        for pid in ids:
            if pid not in outcomes or outcomes[pid].status != "failed":
                outcomes[pid] = failed(pid, err, _step(name, "failed", started, 0, err))
    return outcomes


async def _live_portfolios(session: AsyncSession, ids: list[UUID]) -> dict[UUID, repo.PortfolioRow]:
    """`repo.portfolios`, memoised for the unit of work as `load_books` is: the market-risk and
    stress-test parts of one batch ask for the very same portfolios, and neither writes them."""
    key = ("stress.live_portfolios", tuple(ids))
    if key not in session.info:
        session.info[key] = await repo.portfolios(session, ids)
    live: dict[UUID, repo.PortfolioRow] = session.info[key]
    return live


# ---------------------------------------------------------------------------------------------
# Loading a book and its factor model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedBooks:
    """Books of several portfolios on one date with the factor model they are stressed through."""

    as_of: date
    matrix: repo.ModelMatrix
    assembled: AssembledBook
    exposure_dates: dict[UUID, date]
    active_codes: frozenset[str]


async def load_books(
    session: AsyncSession,
    portfolio_ids: Sequence[UUID],
    cash: Sequence[float],
    as_of: date,
    *,
    matrix: repo.ModelMatrix | None = None,
    run_id: UUID | None = None,
) -> LoadedBooks:
    """Positions valued on `as_of`, betas and covariance of the latest model on or before it.

    Memoised for the unit of work (`session.info`): the market-risk and stress-test parts of one
    batch read the very same books, and nothing in between writes what they read; the positions read
    (`repo.batch_position_rows`) also serves the batch's risk metrics. Within a run (`run_id`),
    underlying betas already read by an earlier batch come from `beta_cache`."""
    key = ("stress.loaded_books", as_of, tuple(portfolio_ids), tuple(cash))
    if matrix is None and key in session.info:
        cached: LoadedBooks = session.info[key]
        return cached
    loaded = await _load_books(session, portfolio_ids, cash, as_of, matrix=matrix, run_id=run_id)
    if matrix is None:
        session.info[key] = loaded
    return loaded


async def _load_books(
    session: AsyncSession,
    portfolio_ids: Sequence[UUID],
    cash: Sequence[float],
    as_of: date,
    *,
    matrix: repo.ModelMatrix | None = None,
    run_id: UUID | None = None,
) -> LoadedBooks:
    if matrix is None:
        matrix = await repo.latest_model_matrix(session, as_of)
    if matrix is None:
        raise NoFactorModel(f"no factor model stored on or before {as_of.isoformat()}")
    columns = await repo.batch_position_rows(session, portfolio_ids, as_of)
    underlyings = sorted(set(columns["underlying_symbol"]))
    table = await beta_table(session, underlyings, matrix.calculation_date, as_of=as_of, run_id=run_id)
    codes = frozenset(await active_factor_codes(session))
    available = factor_availability(matrix, codes, table)
    assembled = assemble(portfolio_ids, cash, columns, table, available)
    dates = await repo.exposure_dates(session, portfolio_ids, as_of)
    return LoadedBooks(as_of, matrix, assembled, dates, codes)


def _partial_flags(loaded: LoadedBooks, p: int) -> list[str]:
    """Why a portfolio's results are partial: stale model, no exposures of the day, excluded positions."""
    flags = []
    pid = loaded.assembled.portfolio_ids[p]
    if loaded.matrix.calculation_date < loaded.as_of:
        flags.append("factor_model_stale")
    if loaded.exposure_dates.get(pid) != loaded.as_of:
        flags.append("factor_exposures_missing")
    if "positions_excluded" in loaded.assembled.flags[p]:
        flags.append("positions_excluded")
    return flags


def _error(exc: BaseException) -> StepError:
    code = getattr(exc, "code", None) or "INTERNAL_ERROR"
    return StepError(code=str(code), message=(getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:500])


# ---------------------------------------------------------------------------------------------
# risk_scenarios: calculations.md §5
# ---------------------------------------------------------------------------------------------


async def compute_market_risk(
    session: AsyncSession, *, portfolio_id: UUID, as_of: date, run_id: UUID | None = None
) -> MarketRiskOutcome:
    """Market ±5/10/20 % and rates ±100/200 bp for one portfolio; stores market_risk_result rows."""
    outcomes = await compute_market_risk_many(session, portfolio_ids=[portfolio_id], as_of=as_of, run_id=run_id)
    return outcomes[portfolio_id]


async def compute_market_risk_many(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date, run_id: UUID | None = None
) -> dict[UUID, MarketRiskOutcome]:
    """The `risk_scenarios` step for many portfolios at once (one load, one computation, one upsert)."""

    async def body(present: list[UUID], cash: list[Any], started: datetime) -> dict[UUID, MarketRiskOutcome]:
        loaded = await load_books(session, present, cash, as_of, run_id=run_id)
        if not loaded.assembled.available[MODEL_FACTORS.index(MARKET)]:
            raise NoFactorModel("the market factor has no data in the factor model")
        result = await asyncio.to_thread(market_risk, loaded.assembled.book, loaded.assembled.available)
        rows = market_risk_rows(loaded.assembled, result, as_of, run_id)
        await repo.upsert_market_risk(session, rows)
        return _market_outcomes(loaded, result, rows, started)

    return await _run_step(
        session,
        "risk_scenarios",
        portfolio_ids,
        as_of,
        lambda pid, err, step: MarketRiskOutcome(pid, as_of, "failed", error=err, step=step),
        body,
    )


def _market_outcomes(
    loaded: LoadedBooks, result: MarketRisk, rows: list[dict[str, Any]], started: datetime
) -> dict[UUID, MarketRiskOutcome]:
    out = {}
    per = len(result.scenarios)
    n_p = len(loaded.assembled.portfolio_ids)
    amounts = money_decimals(np.stack([result.market_exposure, result.rate_exposure, result.dv01]))
    rate_missing = (~np.isfinite(result.rate_exposure)).tolist()
    for p, pid in enumerate(loaded.assembled.portfolio_ids):
        flags = _partial_flags(loaded, p)
        if rate_missing[p]:
            flags.append("rate_data_missing")
        status: Status = "partial" if flags else "completed"
        mine = rows[p * per : (p + 1) * per]
        out[pid] = MarketRiskOutcome(
            portfolio_id=pid,
            as_of=loaded.as_of,
            status=status,
            rows=mine,
            market_exposure=amounts[p],
            rate_exposure_dollar=amounts[n_p + p],
            dv01=amounts[2 * n_p + p],
            factor_exposure_date=loaded.matrix.calculation_date,
            flags=flags,
            step=_step("risk_scenarios", status, started, len(mine), None),
        )
    return out


# ---------------------------------------------------------------------------------------------
# stress_tests: calculations.md §6
# ---------------------------------------------------------------------------------------------


def scenario_set(
    rows: list[dict[str, Any]], active_codes: frozenset[str] | set[str]
) -> tuple[ScenarioSet, ScenarioMeta]:
    """A ScenarioSet from catalogue rows, validated at load against the factor registry.

    A shock on a code that is not an active registry factor makes the scenario `factor_unavailable`;
    a shock outside its bounds makes it `invalid_scenario`. Neither is computed.
    """
    shocks: list[dict[str, float]] = []
    enabled: list[bool] = []
    reasons: list[str | None] = []
    for row in rows:
        issues = validate_shocks(row["shocks"], active_codes, float(row["option_iv_shift"] or 0.0))
        reason = None
        if any(i.code == "UNKNOWN_FACTOR" for i in issues):
            reason = "factor_unavailable"
        elif issues:
            reason = "invalid_scenario"
        reasons.append(reason)
        enabled.append(reason is None)
        shocks.append({k: float(v) for k, v in row["shocks"].items() if k in MODEL_FACTORS and reason is None})
    meta = ScenarioMeta(
        ids=[r["id"] for r in rows],
        keys=[r["scenario_key"] for r in rows],
        names=[r["name"] for r in rows],
        categories=[r["category"] for r in rows],
        severities=[r["severity"] for r in rows],
        shocks=[dict(r["shocks"]) for r in rows],
        iv_shift=[float(r["option_iv_shift"] or 0.0) for r in rows],
        invalid=reasons,
    )
    keys = [r["scenario_key"] for r in rows]
    return ScenarioSet.build(keys, shocks, MODEL_FACTORS, meta.iv_shift, enabled), meta


def compute_stress(loaded: LoadedBooks, scenarios: ScenarioSet) -> StressComputation:
    """Direct and correlated impacts (CPU; run off the event loop)."""
    book, available = loaded.assembled.book, loaded.assembled.available
    direct = direct_impact(book, scenarios, available)
    covariance = np.where(np.isfinite(loaded.matrix.covariance), loaded.matrix.covariance, 0.0)
    correlated = correlated_impact(book, scenarios, covariance, available)
    return StressComputation(scenarios, direct, correlated)


async def run_stress_tests(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    as_of: date,
    trigger: Literal["batch", "api"] = "batch",
    categories: Sequence[str] | None = None,
    scenario_ids: Sequence[str] | None = None,
    run_id: UUID | None = None,
    job_id: UUID | None = None,
) -> StressRunOutcome:
    """Every selected catalogue scenario (direct and correlated) for one portfolio; stores the run."""
    outcomes = await run_stress_tests_many(
        session,
        portfolio_ids=[portfolio_id],
        as_of=as_of,
        trigger=trigger,
        categories=categories,
        scenario_ids=scenario_ids,
        run_id=run_id,
        job_id=job_id,
    )
    return outcomes[portfolio_id]


async def run_stress_tests_many(
    session: AsyncSession,
    *,
    portfolio_ids: Sequence[UUID],
    as_of: date,
    trigger: Literal["batch", "api"] = "batch",
    categories: Sequence[str] | None = None,
    scenario_ids: Sequence[str] | None = None,
    run_id: UUID | None = None,
    job_id: UUID | None = None,
) -> dict[UUID, StressRunOutcome]:
    """The `stress_tests` step for many portfolios. Batch runs replace the (portfolio, date) run; an API
    run (one portfolio) is a new run whose id is `job_id` when given."""

    async def body(present: list[UUID], cash: list[Any], started: datetime) -> dict[UUID, StressRunOutcome]:
        rows = await repo.scenarios(
            session,
            keys=list(scenario_ids) if scenario_ids else None,
            categories=list(categories) if categories else None,
            active_only=not scenario_ids,
        )
        loaded = await load_books(session, present, cash, as_of, run_id=run_id)
        scenarios, meta = scenario_set(rows, loaded.active_codes)
        computation = await asyncio.to_thread(compute_stress, loaded, scenarios)
        presenter = ScenarioPresenter(loaded.assembled, meta, computation)
        return await _store_runs(session, loaded, presenter, trigger, run_id, job_id, started)

    return await _run_step(
        session,
        "stress_tests",
        portfolio_ids,
        as_of,
        lambda pid, err, step: StressRunOutcome(pid, as_of, "failed", error=err, step=step),
        body,
    )


async def _store_runs(
    session: AsyncSession,
    loaded: LoadedBooks,
    presenter: ScenarioPresenter,
    trigger: str,
    run_id: UUID | None,
    job_id: UUID | None,
    started: datetime,
) -> dict[UUID, StressRunOutcome]:
    assembled = loaded.assembled
    n_scen = len(presenter.c.scenarios)
    runs: list[dict[str, Any]] = []
    partial_flags: list[list[str]] = []
    summaries: list[dict[str, Any]] = []
    equity = money_decimals(assembled.book.equity)
    for p, (pid, summary) in enumerate(zip(assembled.portfolio_ids, presenter.summaries(), strict=True)):
        flags = _partial_flags(loaded, p)
        if summary["scenarios_not_computed"]:
            flags.append("factor_unavailable")
        summary["partial_reasons"] = flags
        partial_flags.append(flags)
        summaries.append(summary)
        runs.append(
            {
                "id": (
                    job_id if trigger == "api" and job_id is not None and len(assembled.portfolio_ids) == 1 else uuid4()
                ),
                "portfolio_id": pid,
                "calculation_date": loaded.as_of,
                "trigger": trigger,
                "factor_exposure_date": loaded.exposure_dates.get(pid, loaded.matrix.calculation_date),
                "matrix_id": loaded.matrix.id,
                "equity": equity[p],
                "scenarios_run": n_scen,
                "summary": summary,
                "partial": bool(flags),
                "run_id": run_id,
                "job_id": job_id,
            }
        )
    if trigger == "batch":
        run_ids = await repo.upsert_batch_runs(session, runs)
        ordered = [run_ids[pid] for pid in assembled.portfolio_ids]
    else:
        ordered = [await repo.insert_run(session, run) for run in runs]
    await repo.replace_result_sets(session, presenter.result_sets(ordered, loaded.as_of))
    out = {}
    for p, pid in enumerate(assembled.portfolio_ids):
        summary = summaries[p]
        worst = summary.get("worst_case_pnl")
        status: Status = "partial" if partial_flags[p] else "completed"
        out[pid] = StressRunOutcome(
            portfolio_id=pid,
            as_of=loaded.as_of,
            status=status,
            stress_run_id=ordered[p],
            worst_pnl=Decimal(worst) if worst is not None else None,
            worst_scenario=summary.get("worst_scenario"),
            scenarios_run=n_scen,
            partial=bool(partial_flags[p]),
            flags=partial_flags[p],
            step=_step("stress_tests", status, started, n_scen, None),
        )
    return out
