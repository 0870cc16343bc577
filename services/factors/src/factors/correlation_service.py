"""The `correlations` step for one portfolio: load exposures and prices, compute, store (§7.2–7.3).

`compute_portfolio_correlations` runs inside the caller's transaction (the per-portfolio factors
handler, or the `correlations.calculate` job): a failure is contained in a savepoint and reported in
the outcome (status "failed") so the caller's other results still commit; transient database errors
propagate so the bus redelivers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common import metrics
from common.db import is_transient_db_error
from common.errors import NotFound
from common.events import StepError
from common.jobs import JobFailed, JobOutcome
from common.service import Plumbing
from factors import correlation_repository as repo
from factors import repository as factor_repo
from factors.correlation_compute import (
    MAX_DURATION_DAYS,
    MIN_DURATION_DAYS,
    POS_CORR_WINDOW,
    CorrelationFilters,
    CorrelationResult,
    Nodes,
    NodeSums,
    build_nodes,
    candidate_mask,
    compute_correlations,
    direction_adjusted,
    inputs_hash,
)

__all__ = [
    "CorrelationFilters",
    "CorrelationOutcome",
    "compute_portfolio_correlations",
    "metrics_url",
    "passing_nodes",
    "run_calculation_job",
]

log = logging.getLogger(__name__)

CALCULATIONS = metrics.counter(
    "factors", "correlation_calculations", "Position-correlation calculations by outcome", ("outcome",)
)
# Above this many price cells the compute runs in a worker thread (a small book is faster inline).
THREAD_THRESHOLD_CELLS = 20_000


@dataclass
class CorrelationOutcome:
    """What the step did for one portfolio."""

    calculation_id: UUID | None
    status: Literal["completed", "failed", "skipped"]
    records: int = 0  # nodes included in the stored calculation
    error: StepError | None = None
    reused: bool = False  # inputs unchanged: the stored calculation was kept
    data_quality: str | None = None
    nodes_included: int = 0
    nodes_excluded: int = 0
    reason: str | None = None  # why the step was skipped


async def passing_nodes(
    session: AsyncSession, *, portfolio_id: UUID, as_of: date, filters: CorrelationFilters
) -> tuple[Nodes, np.ndarray]:
    """The portfolio's nodes at `as_of` and the mask of those passing the inclusion filter."""
    nodes = build_nodes(await repo.position_exposures(session, portfolio_id=portfolio_id, as_of=as_of))
    return nodes, candidate_mask(nodes, filters)


def _compute(
    nodes: Nodes, candidates: np.ndarray, closes: np.ndarray, dates: list[date], filters: CorrelationFilters
) -> tuple[CorrelationResult, np.ndarray]:
    result = compute_correlations(nodes, candidates, closes, dates, filters)
    rho_dir = direction_adjusted(result.pairs.rho, nodes.exposure[result.included_index])
    return result, rho_dir


# Loads (dates, closes) of the wanted symbols over the window: one read per portfolio, or a slice of
# the batch's grid.
GridLoader = Callable[[list[str]], Awaitable[tuple[list[date], np.ndarray]]]


def _skipped(nodes: Nodes, passing: int, as_of: date) -> CorrelationOutcome:
    return CorrelationOutcome(
        None,
        "skipped",
        nodes_excluded=len(nodes),
        reason=f"{passing} node(s) pass the filters on {as_of.isoformat()}; at least 2 are needed",
    )


def _reused(existing: repo.ExistingCalculation) -> CorrelationOutcome:
    return CorrelationOutcome(
        existing.id,
        "completed",
        records=existing.nodes_included,
        reused=True,
        data_quality=existing.data_quality,
        nodes_included=existing.nodes_included,
        nodes_excluded=existing.nodes_excluded,
    )


def unchanged(
    nodes: Nodes | NodeSums,
    candidates: np.ndarray,
    existing: repo.ExistingCalculation | None,
    filters: CorrelationFilters,
    *,
    as_of: date,
    duration_days: int,
) -> bool:
    """The stored calculation still describes the book: at least two candidate nodes and the same
    inputs hash (full `Nodes`, or the `NodeSums` the batch's light read gives: same numbers)."""
    return (
        int(candidates.sum()) >= 2
        and existing is not None
        and existing.inputs_hash
        == inputs_hash(nodes, filters, as_of=as_of, duration_days=duration_days, candidates=candidates)
    )


@dataclass(frozen=True)
class _Inputs:
    """One portfolio's nodes at `as_of`, its filter mask and the calculation stored under its key."""

    nodes: Nodes
    candidates: np.ndarray
    existing: repo.ExistingCalculation | None

    def digest(self, filters: CorrelationFilters, *, as_of: date, duration_days: int) -> bytes:
        return inputs_hash(self.nodes, filters, as_of=as_of, duration_days=duration_days, candidates=self.candidates)

    def reusable(self, filters: CorrelationFilters, *, as_of: date, duration_days: int, force: bool) -> bool:
        """Inputs unchanged since the stored calculation (the step would only rewrite the same rows)."""
        return not force and unchanged(
            self.nodes, self.candidates, self.existing, filters, as_of=as_of, duration_days=duration_days
        )

    def wanted(self) -> list[str]:
        return [s for s, ok in zip(self.nodes.symbols, self.candidates.tolist(), strict=True) if ok]


async def _apply(
    session: AsyncSession,
    inputs: _Inputs,
    grid: GridLoader,
    *,
    portfolio_id: UUID,
    as_of: date,
    duration_days: int,
    filters: CorrelationFilters,
    run_id: UUID | None,
    force: bool,
) -> CorrelationOutcome:
    nodes, candidates, existing = inputs.nodes, inputs.candidates, inputs.existing
    passing = int(candidates.sum())
    if passing < 2:
        if existing is not None:  # a stored calculation for this key no longer describes the book
            await repo.delete_calculation(session, portfolio_id=portfolio_id, duration_days=duration_days, as_of=as_of)
        return _skipped(nodes, passing, as_of)
    if existing is not None and inputs.reusable(filters, as_of=as_of, duration_days=duration_days, force=force):
        return _reused(existing)
    digest = inputs.digest(filters, as_of=as_of, duration_days=duration_days)
    dates, wanted_closes = await grid(inputs.wanted())
    closes = np.full((len(dates), len(nodes)), np.nan)
    closes[:, np.flatnonzero(candidates)] = wanted_closes
    if closes.size > THREAD_THRESHOLD_CELLS:
        result, rho_dir = await asyncio.to_thread(_compute, nodes, candidates, closes, dates, filters)
    else:
        result, rho_dir = _compute(nodes, candidates, closes, dates, filters)
    cid = await repo.store_calculation(
        session,
        portfolio_id=portfolio_id,
        as_of=as_of,
        duration_days=duration_days,
        filters=filters,
        result=result,
        rho_dir=rho_dir,
        digest=digest,
        run_id=run_id,
    )
    await repo.apply_retention(session, portfolio_id=portfolio_id)
    return _completed(cid, result)


def _completed(cid: UUID, result: CorrelationResult) -> CorrelationOutcome:
    included = int(result.included.sum())
    return CorrelationOutcome(
        cid,
        "completed",
        records=included,
        data_quality=result.data_quality,
        nodes_included=included,
        nodes_excluded=len(result.nodes) - included,
    )


def _invalid_duration() -> CorrelationOutcome:
    return CorrelationOutcome(
        None,
        "failed",
        error=StepError(
            code="INVALID_PARAMETERS",
            message=f"duration_days must be between {MIN_DURATION_DAYS} and {MAX_DURATION_DAYS}",
        ),
    )


async def _guarded(
    session: AsyncSession, run: Callable[[], Awaitable[CorrelationOutcome]], *, portfolio_id: UUID, as_of: date
) -> CorrelationOutcome:
    """`run` in its own savepoint: a failure rolls back its partial writes and becomes a "failed"
    outcome; transient database errors propagate so the bus redelivers."""
    try:
        async with session.begin_nested():
            outcome = await run()
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        log.exception("position correlations failed for portfolio %s on %s", portfolio_id, as_of)
        CALCULATIONS.labels("failed").inc()
        return CorrelationOutcome(
            None,
            "failed",
            error=StepError(
                code="CORRELATIONS_FAILED", message=f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
            ),
        )
    CALCULATIONS.labels("reused" if outcome.reused else outcome.status).inc()
    return outcome


async def compute_portfolio_correlations(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    as_of: date,
    duration_days: int = POS_CORR_WINDOW,
    filters: CorrelationFilters | None = None,
    run_id: UUID | None = None,
    force: bool = False,
) -> CorrelationOutcome:
    """Compute and store one portfolio's position correlations for `as_of` inside the caller's transaction.

    Reuses the stored calculation of (portfolio, duration_days, as_of) when the nodes, their exposures and
    the filters are unchanged, unless `force`. "skipped" when fewer than 2 nodes pass the filters;
    "failed" (with `error`) when the calculation raised — its partial writes are rolled back."""
    chosen = filters or CorrelationFilters()
    if not MIN_DURATION_DAYS <= duration_days <= MAX_DURATION_DAYS:
        CALCULATIONS.labels("failed").inc()
        return _invalid_duration()

    async def grid(symbols: list[str]) -> tuple[list[date], np.ndarray]:
        return await repo.price_grid(session, symbols=symbols, as_of=as_of, days=duration_days + 1)

    async def run() -> CorrelationOutcome:
        nodes, candidates = await passing_nodes(session, portfolio_id=portfolio_id, as_of=as_of, filters=chosen)
        existing = await repo.existing_calculation(
            session, portfolio_id=portfolio_id, duration_days=duration_days, as_of=as_of
        )
        return await _apply(
            session,
            _Inputs(nodes, candidates, existing),
            grid,
            portfolio_id=portfolio_id,
            as_of=as_of,
            duration_days=duration_days,
            filters=chosen,
            run_id=run_id,
            force=force,
        )

    return await _guarded(session, run, portfolio_id=portfolio_id, as_of=as_of)


def metrics_url(portfolio_id: UUID, duration_days: int, as_of: date) -> str:
    """Where #41 serves a calculation."""
    return (
        f"/api/v1/risk/correlations/positions/metrics?portfolio_id={portfolio_id}"
        f"&duration_days={duration_days}&as_of_date={as_of.isoformat()}"
    )


async def run_calculation_job(
    plumbing: Plumbing,
    *,
    portfolio_id: UUID,
    as_of: date,
    duration_days: int,
    filters: CorrelationFilters,
    force: bool,
) -> JobOutcome:
    """Job correlations.calculate: compute and store one portfolio's correlations (no event: nothing
    downstream depends on an on-demand recalculation)."""
    async with plumbing.uow.begin() as work:
        if await factor_repo.portfolio(work.session, portfolio_id=portfolio_id) is None:
            raise NotFound("PORTFOLIO")
        outcome = await compute_portfolio_correlations(
            work.session,
            portfolio_id=portfolio_id,
            as_of=as_of,
            duration_days=duration_days,
            filters=filters,
            force=force,
        )
    if outcome.status == "failed":
        message = outcome.error.message if outcome.error else "position correlations failed"
        raise JobFailed(message, code=outcome.error.code if outcome.error else "CORRELATIONS_FAILED")
    if outcome.status == "skipped" or outcome.calculation_id is None:
        raise JobFailed(outcome.reason or "fewer than 2 nodes pass the filters", code="INSUFFICIENT_NODES")
    return JobOutcome(
        status="completed",
        result={
            "calculation_id": str(outcome.calculation_id),
            "portfolio_id": str(portfolio_id),
            "calculation_date": as_of.isoformat(),
            "duration_days": duration_days,
            "reused": outcome.reused,
            "nodes_included": outcome.nodes_included,
            "nodes_excluded": outcome.nodes_excluded,
            "data_quality": outcome.data_quality,
        },
        result_url=metrics_url(portfolio_id, duration_days, as_of),
    )
