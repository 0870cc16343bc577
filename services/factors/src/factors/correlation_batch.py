"""The `correlations` step for a batch of portfolios: set-based reads, one compute pass, bulk writes.

One read of every portfolio's valued positions, one of the calculations stored under their keys
and one price grid over the union of the symbols that must be recomputed (each portfolio slices
its columns), all in one SAVEPOINT. A portfolio whose inputs are unchanged keeps its stored
calculation without another round trip. The others are computed in one pass on stacked arrays
(`correlation_stacked`: each book's numbers are those it gets alone; in a worker thread when the
batch is large, started right after the reads so that the factors step's statements run on the
database meanwhile: `prepare_batch_correlations` … `finish`) and written in
ONE savepoint with one statement per table for the whole batch (`correlation_bulk_store`),
followed by one retention delete. When a batched read or the
batched write raises, or one portfolio's compute raises, the portfolios concerned are redone one
by one, each in its own SAVEPOINT exactly as `compute_portfolio_correlations` does, so one failing
portfolio fails alone and the stored rows are the same either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.run_cache import RunCache
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
    node_sums,
)
from factors.correlation_repository import ExistingCalculation
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
    unchanged,
)
from factors.correlation_stacked import Book, compute_books
from factors.run_grid import RunGrid, cached_price_grid

log = logging.getLogger(__name__)


async def _batch_inputs(
    session: AsyncSession, ids: list[UUID], *, as_of: date, duration_days: int, filters: CorrelationFilters
) -> tuple[dict[UUID, _Inputs], dict[UUID, ExistingCalculation]]:
    """(inputs of the portfolios to compute or skip, stored calculations kept as they are).

    A re-run mostly finds every book unchanged: the reuse check needs only each node's symbol and
    exposure (`node_sums`, the numbers `build_nodes` hashes), so the full rows (position ids, types,
    tags, sectors) are read and grouped only for the portfolios whose inputs hash changed."""
    existing = await repo.existing_calculations(session, portfolio_ids=ids, duration_days=duration_days, as_of=as_of)
    reused: dict[UUID, ExistingCalculation] = {}
    if existing:
        light = await repo.node_exposures_of(session, portfolio_ids=list(existing), as_of=as_of)
        for pid, stored in existing.items():
            if pid not in light:
                continue
            sums = node_sums(*light[pid])
            if unchanged(
                sums, candidate_mask(sums, filters), stored, filters, as_of=as_of, duration_days=duration_days
            ):
                reused[pid] = stored
    rest = [pid for pid in ids if pid not in reused]
    positions = await repo.position_exposures_of(session, portfolio_ids=rest, as_of=as_of) if rest else {}
    out = {}
    for pid in rest:
        nodes = build_nodes(positions.get(pid, []))
        out[pid] = _Inputs(nodes, candidate_mask(nodes, filters), existing.get(pid))
    return out, reused


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
    batch = await prepare_batch_correlations(
        session, portfolio_ids=portfolio_ids, as_of=as_of, duration_days=duration_days, filters=filters, run_id=run_id
    )
    return await batch.finish(session)


async def prepare_batch_correlations(
    session: AsyncSession,
    *,
    portfolio_ids: Sequence[UUID],
    as_of: date,
    duration_days: int = POS_CORR_WINDOW,
    filters: CorrelationFilters | None = None,
    run_id: UUID | None = None,
    grids: RunCache[RunGrid] | None = None,
) -> PreparedCorrelations:
    """The batched reads, then the compute pass started in a worker thread (large batches): the
    caller may run other statements on `session` (the factors step) while it computes — the
    compute needs no database, so the two overlap — and then calls `finish` to store the results."""
    ids = list(dict.fromkeys(portfolio_ids))
    grids = grids if grids is not None else RunCache()  # the caller's run-scoped grid, else one of its own
    chosen = filters or CorrelationFilters()
    batch = PreparedCorrelations(ids, as_of, duration_days, chosen, run_id)
    if not MIN_DURATION_DAYS <= duration_days <= MAX_DURATION_DAYS:
        CALCULATIONS.labels("failed").inc(len(ids))
        batch.outcomes = {pid: _invalid_duration() for pid in ids}
        batch.decided = True
        return batch
    try:
        async with session.begin_nested():
            inputs, reused = await _batch_inputs(session, ids, as_of=as_of, duration_days=duration_days, filters=chosen)
            symbols = sorted({s for current in inputs.values() for s in current.wanted()})
            dates, closes = (
                await cached_price_grid(
                    session, grids, symbols=symbols, as_of=as_of, days=duration_days + 1, run_id=run_id
                )
                if symbols
                else ([], np.zeros((0, 0)))
            )
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        log.warning("batched correlation reads of %d portfolios failed (%s); one by one", len(ids), exc)
        batch.read_failed = True
        return batch
    batch.inputs, batch.dates, batch.closes = inputs, dates, closes
    batch.column = {s: j for j, s in enumerate(symbols)}
    for pid in ids:
        if pid in reused:
            batch.outcomes[pid] = _reused(reused[pid])  # nothing to write
            continue
        current = inputs[pid]
        if int(current.candidates.sum()) < 2:
            batch.outcomes[pid] = _skipped(current.nodes, int(current.candidates.sum()), as_of)
            if current.existing is not None:
                batch.stale.append(pid)
        else:
            batch.compute.append(pid)
    cells = len(dates) * sum(len(inputs[pid].nodes) for pid in batch.compute)
    if cells > THREAD_THRESHOLD_CELLS:
        batch.pending = asyncio.ensure_future(asyncio.to_thread(batch.compute_pass))
    return batch


@dataclass
class PreparedCorrelations:
    """One batch between its reads and its writes (see `prepare_batch_correlations`)."""

    ids: list[UUID]
    as_of: date
    duration_days: int
    filters: CorrelationFilters
    run_id: UUID | None
    read_failed: bool = False
    decided: bool = False  # every outcome known without reads (invalid window)
    inputs: dict[UUID, _Inputs] = field(default_factory=dict)
    dates: list[date] = field(default_factory=list)
    closes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    column: dict[str, int] = field(default_factory=dict)
    outcomes: dict[UUID, CorrelationOutcome] = field(default_factory=dict)
    stale: list[UUID] = field(default_factory=list)  # skipped portfolios whose stored calculation is stale
    compute: list[UUID] = field(default_factory=list)
    pending: asyncio.Future[tuple[list[ComputedCalculation], list[UUID]]] | None = None

    def compute_pass(self) -> tuple[list[ComputedCalculation], list[UUID]]:
        return _compute_all(
            self.inputs,
            self.compute,
            self.dates,
            self.closes,
            self.column,
            self.filters,
            self.as_of,
            self.duration_days,
        )

    async def discard(self) -> None:
        """Wait for a compute still running (the caller failed before `finish`); its result is dropped."""
        if self.pending is not None:
            await asyncio.gather(self.pending, return_exceptions=True)

    async def finish(self, session: AsyncSession) -> dict[UUID, CorrelationOutcome]:
        """Store the computed calculations (one statement per table) and return every outcome."""
        ids, as_of, duration_days, chosen, run_id = self.ids, self.as_of, self.duration_days, self.filters, self.run_id
        if self.read_failed:
            return {
                pid: await compute_portfolio_correlations(
                    session, portfolio_id=pid, as_of=as_of, duration_days=duration_days, filters=chosen, run_id=run_id
                )
                for pid in ids
            }
        if self.decided:
            return self.outcomes
        return await self._store(session)

    async def _store(self, session: AsyncSession) -> dict[UUID, CorrelationOutcome]:
        ids, as_of, duration_days, chosen, run_id = self.ids, self.as_of, self.duration_days, self.filters, self.run_id
        inputs, outcomes, stale = self.inputs, self.outcomes, self.stale
        computed, alone = await self.pending if self.pending is not None else self.compute_pass()
        dates, closes, column = self.dates, self.closes, self.column

        async def grid(wanted: list[str]) -> tuple[list[date], np.ndarray]:
            return dates, closes[:, [column[s] for s in wanted]]

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
            log.warning(
                "batched correlation writes failed (%s); %d portfolios one by one", exc, len(stale) + len(computed)
            )
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
    are redone alone so their failure is reported exactly as the per-portfolio path reports it).

    The books are computed together on stacked arrays (`correlation_stacked`, the same numbers as
    each alone); should that raise, each book is computed alone so that only a failing one fails."""
    # The grid column of every node of the batch in one pass (−1: not read, the node is no candidate).
    nodes = [inputs[pid].nodes for pid in compute]
    columns = np.array([column.get(s, -1) for n in nodes for s in n.symbols], dtype=np.int64)
    ends = np.cumsum([len(n) for n in nodes]).tolist()
    books = [
        Book(n, inputs[pid].candidates, columns[end - len(n) : end])
        for pid, n, end in zip(compute, nodes, ends, strict=True)
    ]
    try:
        results = compute_books(books, closes, dates, filters)
    except Exception:
        log.warning("stacked correlation compute of %d portfolios failed; one by one", len(compute), exc_info=True)
        return _compute_each(inputs, compute, books, dates, closes, filters, as_of, duration_days)
    computed = [
        ComputedCalculation(pid, result, rho_dir, inputs[pid].digest(filters, as_of=as_of, duration_days=duration_days))
        for pid, (result, rho_dir) in zip(compute, results, strict=True)
    ]
    return computed, []


def _compute_each(
    inputs: dict[UUID, _Inputs],
    compute: list[UUID],
    books: list[Book],
    dates: list[date],
    closes: np.ndarray,
    filters: CorrelationFilters,
    as_of: date,
    duration_days: int,
) -> tuple[list[ComputedCalculation], list[UUID]]:
    computed: list[ComputedCalculation] = []
    failed: list[UUID] = []
    for pid, book in zip(compute, books, strict=True):
        current = inputs[pid]
        try:
            grid = np.full((len(dates), len(current.nodes)), np.nan)
            grid[:, np.flatnonzero(current.candidates)] = closes[:, book.columns[current.candidates]]
            result, rho_dir = _compute(current.nodes, current.candidates, grid, dates, filters)
        except Exception:
            failed.append(pid)
            continue
        digest = current.digest(filters, as_of=as_of, duration_days=duration_days)
        computed.append(ComputedCalculation(pid, result, rho_dir, digest))
    return computed, failed
