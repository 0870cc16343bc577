"""Async orchestration: the `aggregations` step, the demo-reset job and business dates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common import metrics
from common.db import is_transient_db_error
from common.errors import TransientError
from common.events import CycleStarted, Event, GreeksComputed, PortfolioUpdated, StepError, StepInfo
from common.formatting import utcnow
from common.jobs import JobOutcome
from common.run_cache import RunCache
from ingest import catalog, demo, repository, valuation_batch
from ingest.catalog import ViewCatalog
from ingest.context import SERVICE, IngestContext
from ingest.run_closes import RunCloses
from ingest.summary_query import expected_prices_bound

log = logging.getLogger(__name__)

STEP = "aggregations"
VALUATION_SECONDS = metrics.histogram(
    SERVICE, "valuation_duration_seconds", "Valuation of one portfolio (aggregations step)", ("status",)
)


@dataclass(frozen=True)
class ValuationSummary:
    """What one portfolio's valuation did."""

    positions: int
    unpriced: int
    stale: int
    without_delta: int
    prev_missing: int

    @classmethod
    def of(cls, counts: valuation_batch.PortfolioCounts, i: int) -> ValuationSummary:
        """The summary of the `i`-th portfolio of a batch."""
        return cls(
            positions=int(counts.positions[i]),
            unpriced=int(counts.unpriced[i]),
            stale=int(counts.stale[i]),
            without_delta=int(counts.without_delta[i]),
            prev_missing=int(counts.prev_missing[i]),
        )

    @property
    def status(self) -> str:
        return "partial" if self.unpriced or self.without_delta else "completed"


def _is_transient(exc: Exception) -> bool:
    """Worth a retry of the whole delivery rather than a failed step."""
    return isinstance(exc, TransientError) or is_transient_db_error(exc)


async def value_portfolio(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    as_of: date,
    run_id: UUID | None,
    present: frozenset[str],
    stale_days: int,
) -> ValuationSummary:
    """Value a portfolio's positions held at `as_of` (a batch of one) and store the results."""
    counts = await valuation_batch.value_many(
        session, portfolio_ids=[portfolio_id], as_of=as_of, run_id=run_id, present=present, stale_days=stale_days
    )
    return ValuationSummary.of(counts, 0)


class IngestService:
    """Valuation step and jobs, on the shared context."""

    def __init__(self, ctx: IngestContext, views: ViewCatalog) -> None:
        self.ctx = ctx
        self.views = views
        # Closes read by a run's batches, shared by its later batches (ingest.run_closes).
        self.closes: RunCache[RunCloses] = RunCache()

    def _valued_event(
        self, evt: Event, portfolio_id: UUID, started: datetime, status: str, records: int, error: StepError | None
    ) -> PortfolioUpdated:
        return PortfolioUpdated(
            run_id=evt.run_id,
            as_of=evt.as_of,
            correlation_id=evt.correlation_id,
            cascade=evt.cascade,
            portfolio_id=portfolio_id,
            change="valued",
            step=StepInfo(
                name=STEP,
                status=status,
                started_at=started,
                finished_at=utcnow(),
                records_processed=records,
                error=error,
            ),
        )

    async def run_aggregations(self, evt: Event, portfolio_id: UUID, consumer: str) -> None:
        """Value one portfolio for `evt.as_of` at most once per (consumer, event); always report the step."""
        started = utcnow()
        uow = self.ctx.plumbing.uow
        try:
            async with uow.for_event(consumer, evt) as work:
                if work.duplicate:
                    return
                if not await repository.portfolio_exists(work.session, portfolio_id):
                    work.emit(
                        self._valued_event(
                            evt,
                            portfolio_id,
                            started,
                            "failed",
                            0,
                            StepError(code="PORTFOLIO_NOT_FOUND", message="portfolio no longer exists"),
                        )
                    )
                    return
                summary = await value_portfolio(
                    work.session,
                    portfolio_id=portfolio_id,
                    as_of=evt.as_of,
                    run_id=evt.run_id,
                    present=await self.views.present(),
                    stale_days=self.ctx.settings.stale_price_max_days,
                )
                work.emit(self._valued_event(evt, portfolio_id, started, summary.status, summary.positions, None))
            VALUATION_SECONDS.labels(summary.status).observe((utcnow() - started).total_seconds())
            log.info("valued portfolio %s for %s: %s", portfolio_id, evt.as_of, summary)
        except TransientError:
            raise
        except Exception as exc:
            log.exception("valuation of portfolio %s for %s failed", portfolio_id, evt.as_of)
            VALUATION_SECONDS.labels("failed").observe((utcnow() - started).total_seconds())
            error = StepError(code="VALUATION_FAILED", message=str(exc)[:500])
            async with uow.for_event(consumer, evt) as work:
                if work.duplicate:
                    return
                work.emit(self._valued_event(evt, portfolio_id, started, "failed", 0, error))

    async def on_greeks_computed(self, events: list[GreeksComputed]) -> None:
        """A batch of cascading `greeks.computed` → value those portfolios in one transaction.

        The portfolios of one (as_of, run_id) are valued together in one SAVEPOINT; if that fails, each
        is valued again inside its own SAVEPOINT, so a failure rolls back only that portfolio and is
        reported as a failed step (api.md §5.3); the others commit. A transient database error aborts
        the batch, which the bus then retries event by event.
        """
        wanted = [e for e in events if e.cascade]
        if not wanted:
            return
        async with self.ctx.plumbing.uow.for_events(SERVICE, list(wanted)) as work:
            fresh = sorted(
                (e for e in work.fresh if isinstance(e, GreeksComputed)), key=lambda e: (e.as_of, e.portfolio_id)
            )
            if not fresh:
                return
            present = await self.views.present()
            live = await repository.live_portfolio_ids(work.session, [e.portfolio_id for e in fresh])
            groups: dict[tuple[date, UUID | None], list[GreeksComputed]] = {}
            for evt in fresh:
                groups.setdefault((evt.as_of, evt.run_id), []).append(evt)
            for group in groups.values():
                for event in await self._value_group(work.session, group, live, present):
                    work.emit(event)

    async def _value_group(
        self, session: AsyncSession, events: list[GreeksComputed], live: set[UUID], present: frozenset[str]
    ) -> list[PortfolioUpdated]:
        """Events of one (as_of, run_id): all live portfolios valued in one SAVEPOINT; if that raises,
        each portfolio again in its own SAVEPOINT so only the bad one fails (same stored numbers)."""
        started = utcnow()
        first = events[0]
        pids = list(dict.fromkeys(e.portfolio_id for e in events if e.portfolio_id in live))
        try:
            async with session.begin_nested():
                counts = await valuation_batch.value_many(
                    session,
                    portfolio_ids=pids,
                    as_of=first.as_of,
                    run_id=first.run_id,
                    present=present,
                    stale_days=self.ctx.settings.stale_price_max_days,
                    closes=self.closes,
                )
        except Exception as exc:
            if _is_transient(exc):
                raise
            log.warning("batch valuation for %s failed (%s); valuing portfolio by portfolio", first.as_of, exc)
            return [await self._value_in_savepoint(session, evt, live, present) for evt in events]
        share = (utcnow() - started).total_seconds() / max(len(pids), 1)
        at = {pid: i for i, pid in enumerate(pids)}
        out: list[PortfolioUpdated] = []
        for evt in events:
            i = at.get(evt.portfolio_id)
            if i is None:
                error = StepError(code="PORTFOLIO_NOT_FOUND", message="portfolio no longer exists")
                out.append(self._valued_event(evt, evt.portfolio_id, started, "failed", 0, error))
                continue
            summary = ValuationSummary.of(counts, i)
            VALUATION_SECONDS.labels(summary.status).observe(share)
            out.append(self._valued_event(evt, evt.portfolio_id, started, summary.status, summary.positions, None))
        return out

    async def _value_in_savepoint(
        self, session: AsyncSession, evt: GreeksComputed, live: set[UUID], present: frozenset[str]
    ) -> PortfolioUpdated:
        started = utcnow()
        pid = evt.portfolio_id
        if pid not in live:
            error = StepError(code="PORTFOLIO_NOT_FOUND", message="portfolio no longer exists")
            return self._valued_event(evt, pid, started, "failed", 0, error)
        try:
            async with session.begin_nested():
                summary = await value_portfolio(
                    session,
                    portfolio_id=pid,
                    as_of=evt.as_of,
                    run_id=evt.run_id,
                    present=present,
                    stale_days=self.ctx.settings.stale_price_max_days,
                )
        except Exception as exc:
            if _is_transient(exc):
                raise
            log.exception("valuation of portfolio %s for %s failed", pid, evt.as_of)
            VALUATION_SECONDS.labels("failed").observe((utcnow() - started).total_seconds())
            error = StepError(code="VALUATION_FAILED", message=str(exc)[:500])
            return self._valued_event(evt, pid, started, "failed", 0, error)
        VALUATION_SECONDS.labels(summary.status).observe((utcnow() - started).total_seconds())
        log.debug("valued portfolio %s for %s: %s", pid, evt.as_of, summary)
        return self._valued_event(evt, pid, started, summary.status, summary.positions, None)

    async def on_cycle_started(self, evt: CycleStarted) -> None:
        """Single-step trigger: `cycle.started` whose first step is `aggregations`, for its scope."""
        if not evt.steps or evt.steps[0] != STEP:
            return
        portfolio_ids = evt.portfolio_ids
        if portfolio_ids is None:
            async with self.ctx.db.session() as session:
                portfolio_ids = await repository.active_portfolio_ids(session)
        for pid in portfolio_ids:
            await self.run_aggregations(evt, pid, f"{SERVICE}.{STEP}.{pid}")

    async def business_date(self, session: AsyncSession, now: datetime) -> date:
        """The latest trading day whose closes should be stored by `now` (event `as_of` outside runs)."""
        bound = expected_prices_bound(now)
        if await self.views.has(catalog.TRADING_DAY):
            row = await session.execute(
                sa.text("SELECT max(trading_date) FROM marketdata.api_trading_day WHERE trading_date <= :b"),
                {"b": bound},
            )
            found = row.scalar()
            if found is not None:
                return found
        fallback: date = np.busday_offset(np.datetime64(bound, "D"), 0, roll="backward").astype(date)
        return fallback

    async def demo_reset_job(self, job_id: UUID, correlation_id: str | None) -> JobOutcome:
        """The `demo.reset` job body."""
        async with self.ctx.plumbing.uow.begin() as work:
            await self.ctx.plumbing.ledger.progress(work.session, job_id, 10, "restoring", "restoring demo books")
            as_of = await self.business_date(work.session, utcnow())
            result, events = await demo.reset_demo(work.session, as_of)
            for event in events:
                work.emit(event.model_copy(update={"correlation_id": correlation_id}))
        summary: dict[str, Any] = result.as_dict()
        return JobOutcome(status="completed", result=summary)
