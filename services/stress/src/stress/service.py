"""Snapshot step orchestration (calculations.md §9, api.md §5): inputs in, snapshot stored, event out.

The step starts on `stress.computed` (cascade; after the factor, stress and risk-metric steps of the
day) and on the single-step `cycle.started` trigger "snapshots". Besides the book figures, the
snapshot copies the day's factor exposures, historical VaR/ES, ex-ante volatility, max drawdown and
worst stress result; any of them missing makes it `partial` and is named in `flags`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import (
    CycleStarted,
    Event,
    PortfolioUpdated,
    SnapshotCreated,
    StepError,
    StepInfo,
    StressComputed,
)
from common.formatting import utcnow
from common.service import Plumbing
from stress import bulk_upsert, snapshot_inputs
from stress import repository as repo
from stress.compute.snapshot import (
    ENGINE_VERSION,
    ChainResult,
    SnapshotAnalytics,
    SnapshotFigures,
    build_snapshot,
    chain_returns,
)
from stress.errors import NotATradingDay, PortfolioUnavailable, StressError
from stress.models import portfolio_snapshot

log = logging.getLogger(__name__)

CONSUMER = "stress"
StepStatus = Literal["completed", "partial", "failed"]
STEP = "snapshots"
PurgeHook = Callable[[AsyncSession, UUID], Awaitable[int]]


@dataclass(frozen=True)
class SnapshotOutcome:
    """What happened to one portfolio's snapshot (drives the event's `step` block)."""

    portfolio_id: UUID
    status: StepStatus
    started_at: datetime
    finished_at: datetime
    figures: SnapshotFigures | None = None
    error: StepError | None = None

    def step(self) -> StepInfo:
        return StepInfo(
            name=STEP,
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            records_processed=1 if self.figures is not None else 0,
            error=self.error,
        )


def snapshot_row(
    portfolio_id: UUID,
    as_of: date,
    figures: SnapshotFigures,
    *,
    source: str,
    run_id: UUID | None,
    chain: ChainResult,
    analytics: SnapshotAnalytics | None = None,
) -> dict[str, Any]:
    """The portfolio_snapshot row of `figures` (money back to exact Decimal dollars) with the day's
    analytics (calculations.md §9); `chain` starts at this day's returns."""
    m = repo.cents_to_decimal

    def stat(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else float(value)

    return {
        "portfolio_id": portfolio_id,
        "snapshot_date": as_of,
        "source": source,
        "run_id": run_id,
        "equity": m(figures.equity),
        "cash_balance": m(figures.cash_balance),
        "cash_unknown": figures.cash_unknown,
        "long_mv": m(figures.long_mv),
        "short_mv": m(figures.short_mv),
        "gross_mv": m(figures.gross_mv),
        "net_mv": m(figures.net_mv),
        "long_exposure": m(figures.long_exposure),
        "short_exposure": m(figures.short_exposure),
        "gross_exposure": m(figures.gross_exposure),
        "net_exposure": m(figures.net_exposure),
        "notional": m(figures.notional),
        "gross_leverage": stat(figures.gross_leverage),
        "net_leverage": stat(figures.net_leverage),
        "unrealized_pnl_total": m(figures.unrealized_pnl_total),
        "daily_pnl": m(figures.daily_pnl),
        "realized_pnl_day": m(figures.realized_pnl_day),
        "cumulative_pnl": m(float(chain.cumulative_pnl[0])),
        # No deposit/withdrawal ledger is published by ingest yet: nothing to exclude.
        "net_flows": m(0.0),
        "daily_return": stat(float(chain.daily_return[0])),
        "cumulative_return": stat(float(chain.cumulative_return[0])),
        "dollar_delta": m(figures.dollar_delta),
        "dollar_gamma_1pct": m(figures.dollar_gamma_1pct),
        "theta": stat(figures.theta),
        "vega": stat(figures.vega),
        "rho": stat(figures.rho),
        "num_positions": figures.num_positions,
        "num_long": figures.num_long,
        "num_short": figures.num_short,
        "num_stocks": figures.num_stocks,
        "num_options": figures.num_options,
        "counts_by_type": figures.counts_by_type,
        "positions_unpriced": figures.positions_unpriced,
        "positions_stale": figures.positions_stale,
        "options_without_greeks": figures.options_without_greeks,
        "inputs_status": figures.inputs_status,
        "engine_version": ENGINE_VERSION,
        "flags": sorted(set(figures.flags) | set(figures.missing)),
        **(analytics.fields() if analytics is not None else {}),
    }


class SnapshotService:
    """Builds, stores and announces daily portfolio snapshots."""

    def __init__(self, plumbing: Plumbing, purge_hooks: list[PurgeHook] | None = None) -> None:
        self.plumbing = plumbing
        # Other stress rows of a removed portfolio (risk metrics, scenario results) go in the same unit of work.
        self.purge_hooks: list[PurgeHook] = list(purge_hooks or [])

    async def on_stress_computed(self, events: list[StressComputed]) -> None:
        """A batch of cascading `stress.computed` → the snapshot of each (portfolio, as_of), one transaction."""
        wanted = [e for e in events if e.cascade]
        if not wanted:
            return
        async with self.plumbing.uow.for_events(CONSUMER, list(wanted)) as work:
            if work.duplicate:
                return
            fresh = sorted(
                (e for e in work.fresh if isinstance(e, StressComputed)), key=lambda e: (e.as_of, e.portfolio_id)
            )
            factors_present = await repo.factor_views_present(work.session)
            backfill: dict[UUID | None, bool] = {}
            groups: dict[tuple[date, UUID | None], list[StressComputed]] = {}
            for evt in fresh:
                if evt.run_id not in backfill:
                    backfill[evt.run_id] = await repo.run_is_backfill(work.session, evt.run_id)
                groups.setdefault((evt.as_of, evt.run_id), []).append(evt)
            outcomes: dict[UUID, SnapshotOutcome] = {}
            for (as_of, run_id), group in groups.items():
                source = "backfill" if backfill[run_id] else "batch"
                outcomes.update(await self.snapshot_group(work.session, group, as_of, run_id, source, factors_present))
            for evt in fresh:
                work.emit(self._created(evt, outcomes[evt.event_id]))

    async def snapshot_group(
        self,
        session: AsyncSession,
        events: list[StressComputed],
        as_of: date,
        run_id: UUID | None,
        source: str,
        factors_present: bool,
    ) -> dict[UUID, SnapshotOutcome]:
        """Snapshots of one (date, run) group, keyed by event id: all at once (one SAVEPOINT), else,
        when that raises, portfolio by portfolio in their own SAVEPOINTs so one bad book fails alone."""
        # api.md §5.3: after a failed upstream step, run on what is stored and mark the result partial.
        failed = {
            e.event_id: any(s.status == "failed" for s in (e.step, *e.extra_steps) if s is not None) for e in events
        }
        ids = [e.portfolio_id for e in events]
        if len(set(ids)) == len(ids) > 1:
            try:
                async with session.begin_nested():
                    batch = await self._write_snapshots(
                        session,
                        {e.portfolio_id: (failed[e.event_id], e.stress_run_id) for e in events},
                        as_of,
                        run_id,
                        source,
                        factors_present,
                    )
                if batch is not None:
                    return {e.event_id: batch[e.portfolio_id] for e in events}
            except Exception as exc:
                if is_transient_db_error(exc):
                    raise
                log.warning(
                    "snapshots of %d portfolios on %s not written at once (%r); one by one", len(ids), as_of, exc
                )
        out = {}
        for e in events:
            out[e.event_id] = await self.snapshot_portfolio(
                session,
                e.portfolio_id,
                as_of,
                run_id,
                source,
                upstream_failed=failed[e.event_id],
                stress_run_id=e.stress_run_id,
                factors_present=factors_present,
            )
        return out

    async def on_portfolio_updated(self, evt: PortfolioUpdated) -> None:
        """`removed` → purge the portfolio's snapshots and other stress rows (the snapshot itself now
        starts on `stress.computed`, after the factor and stress steps)."""
        if evt.change == "removed":
            await self.purge(evt)

    async def on_cycle_started(self, evt: CycleStarted) -> None:
        """Single-step admin trigger (`steps[0] == "snapshots"`): snapshot every portfolio in scope."""
        if not evt.steps or evt.steps[0] != STEP:
            return
        async with self.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            backfill = evt.params.get("backfill") is True or await repo.run_is_backfill(work.session, evt.run_id)
            source = "backfill" if backfill else "batch"
            ids = evt.portfolio_ids if evt.portfolio_ids is not None else await repo.active_portfolio_ids(work.session)
            factors_present = await repo.factor_views_present(work.session)
            # Sorted: every multi-portfolio transaction takes the per-portfolio locks in one order.
            for portfolio_id in sorted(set(ids)):
                outcome = await self.snapshot_portfolio(
                    work.session, portfolio_id, evt.as_of, evt.run_id, source, factors_present=factors_present
                )
                work.emit(self._created(evt, outcome))

    async def purge(self, evt: PortfolioUpdated) -> None:
        """Delete every snapshot (and risk metric, scenario result) of a removed portfolio (data-model.md §1.1)."""
        async with self.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            deleted = await repo.delete_portfolio_snapshots(work.session, evt.portfolio_id)
            for hook in self.purge_hooks:
                deleted += await hook(work.session, evt.portfolio_id)
            log.info("purged %d stress rows of removed portfolio %s", deleted, evt.portfolio_id)

    async def snapshot_portfolio(
        self,
        session: AsyncSession,
        portfolio_id: UUID,
        as_of: date,
        run_id: UUID | None,
        source: str,
        *,
        upstream_failed: bool = False,
        stress_run_id: UUID | None = None,
        factors_present: bool = True,
    ) -> SnapshotOutcome:
        """Build and upsert one snapshot inside a savepoint; a failure is reported, not raised
        (transient database errors are re-raised so the delivery is retried)."""
        started = utcnow()
        try:
            async with session.begin_nested():
                figures = await self._write_snapshot(
                    session,
                    portfolio_id,
                    as_of,
                    run_id,
                    source,
                    upstream_failed,
                    stress_run_id=stress_run_id,
                    factors_present=factors_present,
                )
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            return _failure(portfolio_id, as_of, exc, started)
        return _completed(portfolio_id, figures, started)

    async def _write_snapshot(
        self,
        session: AsyncSession,
        portfolio_id: UUID,
        as_of: date,
        run_id: UUID | None,
        source: str,
        upstream_failed: bool,
        *,
        stress_run_id: UUID | None,
        factors_present: bool,
    ) -> SnapshotFigures:
        await repo.lock_portfolio(session, portfolio_id)
        live, cash = await repo.portfolio_cash(session, portfolio_id)
        if not live:
            raise PortfolioUnavailable(f"portfolio {portfolio_id} is not a live portfolio")
        day = await repo.trading_day(session, as_of)
        if not day.is_trading_day:
            raise NotATradingDay(
                f"{as_of.isoformat()} is not an NYSE trading day; snapshots exist for trading days only"
            )
        previous = day.previous or (as_of - timedelta(days=1))
        held = await repo.load_held(session, portfolio_id, as_of)
        closed = await repo.load_closed(session, portfolio_id, as_of, previous)
        figures = await asyncio.to_thread(build_snapshot, held, closed, cash)
        analytics = await repo.snapshot_analytics(
            session, portfolio_id, as_of, stress_run_id=stress_run_id, factors_present=factors_present
        )
        missing = list(figures.missing) + list(analytics.missing())
        if upstream_failed:
            missing.append("upstream_step_failed")
        figures = replace(figures, missing=tuple(missing))
        anchor, later = await repo.chain_context(session, portfolio_id, as_of)
        chain = chain_returns(
            anchor, [figures.equity, *later.equity], np.array([figures.daily_pnl, *later.daily_pnl], dtype=np.float64)
        )
        row = snapshot_row(
            portfolio_id,
            as_of,
            figures,
            source=source,
            run_id=run_id,
            chain=chain,
            analytics=analytics,
        )
        await repo.upsert_snapshot(session, row)
        await _rechain_later(session, [(later.ids, chain)])
        return figures

    async def _write_snapshots(
        self,
        session: AsyncSession,
        portfolios: dict[UUID, tuple[bool, UUID | None]],
        as_of: date,
        run_id: UUID | None,
        source: str,
        factors_present: bool,
    ) -> dict[UUID, SnapshotOutcome] | None:
        """`_write_snapshot` for many portfolios: grouped reads, one compute pass, one bulk upsert.
        Per-portfolio failures (not live, bad inputs) are outcomes; None when `as_of` is not a trading day."""
        started = utcnow()
        ids = sorted(portfolios)
        await snapshot_inputs.lock_portfolios(session, ids)
        day = await repo.trading_day(session, as_of)
        if not day.is_trading_day:
            return None  # rare: the per-portfolio path reports each portfolio's own reason
        previous = day.previous or (as_of - timedelta(days=1))
        stress_runs = {pid: portfolios[pid][1] for pid in ids}
        inputs = await snapshot_inputs.load_inputs(
            session, ids, as_of, previous, stress_runs, factors_present=factors_present
        )
        built = await asyncio.to_thread(snapshot_inputs.build_all, inputs, {pid: portfolios[pid][0] for pid in ids})
        rows, outcomes = [], {}
        later: list[tuple[list[UUID], ChainResult]] = []
        for pid in ids:
            result = built[pid]
            if isinstance(result, BaseException):
                outcomes[pid] = _failure(pid, as_of, result, started)
                continue
            figures, chain = result
            rows.append(
                snapshot_row(
                    pid,
                    as_of,
                    figures,
                    source=source,
                    run_id=run_id,
                    chain=chain,
                    analytics=inputs[pid].analytics,
                )
            )
            later.append((inputs[pid].later.ids, chain))
            outcomes[pid] = _completed(pid, figures, started)
        await bulk_upsert.upsert_rows(session, portfolio_snapshot, rows, ("portfolio_id", "snapshot_date"))
        await _rechain_later(session, later)
        return outcomes

    @staticmethod
    def _created(evt: Event, outcome: SnapshotOutcome) -> SnapshotCreated:
        return SnapshotCreated(
            portfolio_id=outcome.portfolio_id,
            snapshot_date=evt.as_of,
            step=outcome.step(),
            run_id=evt.run_id,
            as_of=evt.as_of,
            correlation_id=evt.correlation_id,
            cascade=evt.cascade,
        )


def _completed(portfolio_id: UUID, figures: SnapshotFigures, started: datetime) -> SnapshotOutcome:
    status: StepStatus = "partial" if figures.missing else "completed"
    error = None
    if figures.missing:
        error = StepError(code="PARTIAL_INPUTS", message="missing inputs: " + ", ".join(figures.missing))
    return SnapshotOutcome(portfolio_id, status, started, utcnow(), figures=figures, error=error)


def _failure(portfolio_id: UUID, as_of: date, exc: BaseException, started: datetime) -> SnapshotOutcome:
    """The failed outcome `snapshot_portfolio` reports for `exc`."""
    if isinstance(exc, StressError):
        log.warning("snapshot of %s on %s not written: %s", portfolio_id, as_of, exc.message)
        return SnapshotOutcome(
            portfolio_id, "failed", started, utcnow(), error=StepError(code=exc.code, message=exc.message)
        )
    log.error("snapshot of %s on %s failed", portfolio_id, as_of, exc_info=exc)
    message = (str(exc) or type(exc).__name__)[:1000]
    return SnapshotOutcome(
        portfolio_id, "failed", started, utcnow(), error=StepError(code="SNAPSHOT_FAILED", message=message)
    )


async def _rechain_later(session: AsyncSession, chains: list[tuple[list[UUID], ChainResult]]) -> None:
    """Re-chain the later snapshots of each (later ids, chain from the written day), in one statement.

    A day written out of order (back-fill, rerun) changes the chain of every later snapshot."""
    ids = [i for later, _ in chains for i in later]
    if not ids:
        return
    tails = [chain for later, chain in chains if later]
    await repo.rewrite_chain(
        session,
        ids,
        np.concatenate([c.daily_return[1:] for c in tails]).tolist(),
        np.concatenate([c.cumulative_pnl[1:] for c in tails]).tolist(),
        np.concatenate([c.cumulative_return[1:] for c in tails]).tolist(),
    )
