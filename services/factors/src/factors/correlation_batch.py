"""The `correlations` step for a batch of portfolios: set-based reads, per-portfolio writes.

One read of every portfolio's valued positions, one of the calculations stored under their keys
and one price grid over the union of the symbols that must be recomputed (each portfolio slices
its columns), all in one SAVEPOINT. A portfolio whose inputs are unchanged keeps its stored
calculation without another round trip; the others compute and store in their own SAVEPOINT
exactly as `compute_portfolio_correlations` does, so one failing portfolio fails alone. When a
batched read raises, the batch is redone portfolio by portfolio (same results, slower).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from factors import correlation_repository as repo
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
    CorrelationOutcome,
    _apply,
    _guarded,
    _Inputs,
    _invalid_duration,
    _reused,
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
    for pid in ids:
        current = inputs[pid]
        if current.existing is not None and pid not in todo:
            outcomes[pid] = _reused(current.existing)  # nothing to write: no savepoint needed
            CALCULATIONS.labels("reused").inc()
            continue

        async def run(current: _Inputs = current, pid: UUID = pid) -> CorrelationOutcome:
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
    return outcomes
