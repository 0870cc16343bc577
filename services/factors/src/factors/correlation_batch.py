"""The `correlations` step for a batch of portfolios: set-based reads, one compute pass, bulk writes.

One read of every portfolio's valued positions, one of the calculations stored under their keys
and one price grid over the union of the symbols that must be recomputed (each portfolio slices
its columns), all in one SAVEPOINT. A portfolio whose inputs are unchanged keeps its stored
calculation without another round trip. The others are computed in one pass (in a worker thread
when the batch is large) and written in ONE savepoint with one statement per table for the whole
batch (`correlation_bulk_store`), followed by one retention delete. When a batched read or the
batched write raises, or one portfolio's compute raises, the portfolios concerned are redone one
by one, each in its own SAVEPOINT exactly as `compute_portfolio_correlations` does, so one failing
portfolio fails alone and the stored rows are the same either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from factors import correlation_bulk_store as bulk
from factors import correlation_repository as repo
from factors.correlation_bulk_store import ComputedCalculation
from factors.correlation_compute import (
    MAX_DURATION_DAYS,
    MIN_DURATION_DAYS,
    POS_CORR_WINDOW,
    CorrelationFilters,
    build_nodes,
    candidate_mask,
)
from factors.correlation_service import (
    CALCULATIONS,
    THREAD_THRESHOLD_CELLS,
    CorrelationOutcome,
    _apply,
    _completed,
    _compute,
    _guarded,
    _Inputs,
    _invalid_duration,
    _reused,
    _skipped,
    compute_portfolio_correlations,
)

log = logging.getLogger(__name__)


async def _batch_inputs(
    session: AsyncSession, ids: list[UUID], *, as_of: date, duration_days: int, filters: CorrelationFilters
) -> dict[UUID, _Inputs]:
    positions = await repo.position_exposures_of(session, portfolio_ids=ids, as_of=as_of)
    existing = await repo.existing_calculations(session, portfolio_ids=ids, duration_days=duration_days, as_of=as_of)
    out = {}
    for pid in ids:
        nodes = build_nodes(positions.get(pid, []))
        out[pid] = _Inputs(nodes, candidate_mask(nodes, filters), existing.get(pid))
    return out


async def compute_batch_correlations(
    session: AsyncSession,
    *,
    portfolio_ids: Sequence[UUID],
    as_of: date,
    duration_days: int = POS_CORR_WINDOW,
    filters: CorrelationFilters | None = None,
    run_id: UUID | None = None,
) -> dict[UUID, CorrelationOutcome]:
    """`compute_portfolio_correlations` of every portfolio (same outcomes, same stored rows)."""
    ids = list(dict.fromkeys(portfolio_ids))
    chosen = filters or CorrelationFilters()
    if not MIN_DURATION_DAYS <= duration_days <= MAX_DURATION_DAYS:
        CALCULATIONS.labels("failed").inc(len(ids))
        return {pid: _invalid_duration() for pid in ids}
    try:
        async with session.begin_nested():
            inputs = await _batch_inputs(session, ids, as_of=as_of, duration_days=duration_days, filters=chosen)
            todo = {
                pid
                for pid in ids
                if not inputs[pid].reusable(chosen, as_of=as_of, duration_days=duration_days, force=False)
            }
            symbols = sorted({s for pid in todo for s in inputs[pid].wanted()})
            dates, closes = (
                await repo.price_grid(session, symbols=symbols, as_of=as_of, days=duration_days + 1)
                if symbols
                else ([], np.zeros((0, 0)))
            )
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        log.warning("batched correlation reads of %d portfolios failed (%s); one by one", len(ids), exc)
        return {
            pid: await compute_portfolio_correlations(
                session, portfolio_id=pid, as_of=as_of, duration_days=duration_days, filters=chosen, run_id=run_id
            )
            for pid in ids
        }
    column = {s: j for j, s in enumerate(symbols)}

    async def grid(wanted: list[str]) -> tuple[list[date], np.ndarray]:
        return dates, closes[:, [column[s] for s in wanted]]

    outcomes: dict[UUID, CorrelationOutcome] = {}
    stale: list[UUID] = []  # skipped portfolios whose stored calculation no longer describes the book
    compute: list[UUID] = []
    for pid in ids:
        current = inputs[pid]
        if current.existing is not None and pid not in todo:
            outcomes[pid] = _reused(current.existing)  # nothing to write
        elif int(current.candidates.sum()) < 2:
            outcomes[pid] = _skipped(current.nodes, int(current.candidates.sum()), as_of)
            if current.existing is not None:
                stale.append(pid)
        else:
            compute.append(pid)
    cells = len(dates) * sum(len(inputs[pid].nodes) for pid in compute)
    pass_args = (inputs, compute, dates, closes, column, chosen, as_of, duration_days)
    computed, alone = (
        await asyncio.to_thread(_compute_all, *pass_args)
        if cells > THREAD_THRESHOLD_CELLS
        else _compute_all(*pass_args)
    )
    try:
        async with session.begin_nested():  # one statement per table for the whole batch
            await bulk.delete_calculations(session, portfolio_ids=stale, duration_days=duration_days, as_of=as_of)
            cids = await bulk.store_calculations(
                session, items=computed, as_of=as_of, duration_days=duration_days, filters=chosen, run_id=run_id
            )
            await bulk.apply_retention_of(session, portfolio_ids=[c.portfolio_id for c in computed])
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        log.warning("batched correlation writes failed (%s); %d portfolios one by one", exc, len(stale) + len(computed))
        alone = [*stale, *(c.portfolio_id for c in computed), *alone]
    else:
        for c in computed:
            outcomes[c.portfolio_id] = _completed(cids[c.portfolio_id], c.result)
    for pid, outcome in outcomes.items():
        if pid not in alone:
            CALCULATIONS.labels("reused" if outcome.reused else outcome.status).inc()

    for pid in alone:  # each in its own savepoint, exactly as the per-portfolio path: fails alone

        async def run(current: _Inputs = inputs[pid], pid: UUID = pid) -> CorrelationOutcome:
            return await _apply(
                session,
                current,
                grid,
                portfolio_id=pid,
                as_of=as_of,
                duration_days=duration_days,
                filters=chosen,
                run_id=run_id,
                force=False,
            )

        outcomes[pid] = await _guarded(session, run, portfolio_id=pid, as_of=as_of)
    return {pid: outcomes[pid] for pid in ids}


def _compute_all(
    inputs: dict[UUID, _Inputs],
    compute: list[UUID],
    dates: list[date],
    closes: np.ndarray,
    column: dict[str, int],
    filters: CorrelationFilters,
    as_of: date,
    duration_days: int,
) -> tuple[list[ComputedCalculation], list[UUID]]:
    """The compute pass over the batch: (calculations to store, portfolios whose compute raised — they
    are redone alone so their failure is reported exactly as the per-portfolio path reports it)."""
    computed: list[ComputedCalculation] = []
    failed: list[UUID] = []
    for pid in compute:
        current = inputs[pid]
        try:
            grid = np.full((len(dates), len(current.nodes)), np.nan)
            grid[:, np.flatnonzero(current.candidates)] = closes[:, [column[s] for s in current.wanted()]]
            result, rho_dir = _compute(current.nodes, current.candidates, grid, dates, filters)
        except Exception:
            failed.append(pid)
            continue
        digest = current.digest(filters, as_of=as_of, duration_days=duration_days)
        computed.append(ComputedCalculation(pid, result, rho_dir, digest))
    return computed, failed
