"""Bus subscriptions of the batch part of marketdata (consumer "marketdata"): thin wiring only.

* `cycle.started` → mark the run running; run the market_data step when it is `steps[0]`.
* every pipeline event with a `step` (and `extra_steps`) block (prices.updated, greeks.computed,
  portfolio.updated `valued`, factors.computed, stress.computed, snapshot.created) → its
  batch_job_run rows, then the run state machine decides completion. These arrive in batches
  (one transaction and one settlement per run per batch: a cycle over many portfolios produces
  thousands of reports). Bookkeeping ignores `cascade`: a single-step run is tracked like any other.
* `portfolio.updated` `onboarded` / `positions` → a single-portfolio run_all (api.md §5.3);
  `removed` / `archived` → that portfolio's pending steps in active runs become `skipped`.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from common.bus import Bus
from common.events import (
    CycleStarted,
    Event,
    FactorsComputed,
    GreeksComputed,
    PortfolioUpdated,
    PricesUpdated,
    SnapshotCreated,
    StepInfo,
    StressComputed,
)
from common.ids import SYSTEM_USER_ID
from marketdata import batch_repository as repo
from marketdata.batch_bookkeeping import (
    Settled,
    StepEvent,
    after_commit,
    apply_step_reports,
    skip_portfolio,
)
from marketdata.batch_service import start_run
from marketdata.context import MarketDataContext
from marketdata.cycle_market_data import CONSUMER, on_cycle_started

log = logging.getLogger(__name__)


async def start_portfolio_run(ctx: MarketDataContext, evt: PortfolioUpdated) -> None:
    """`onboarded` / `positions` of an active portfolio → market data for its symbols + a run_all for it."""
    async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
        if work.duplicate:
            return
        found = await repo.portfolios_by_id(work.session, ids=[evt.portfolio_id])
        info = found.get(evt.portfolio_id)
        if info is None or info["status"] != "active":
            log.info(
                "portfolio.updated %s for portfolio %s ignored (status %s)",
                evt.change,
                evt.portfolio_id,
                info["status"] if info else "unknown",
            )
            return
        symbols = sorted({s.strip().upper() for s in evt.symbols if s.strip()})
        if not symbols:
            symbols = await repo.portfolio_symbols(work.session, portfolio_id=evt.portfolio_id)
        trigger = "onboarding" if evt.change == "onboarded" else (evt.trigger or "api")
        started = await start_run(
            ctx,
            job_name="run_all",
            trigger=trigger,
            requested_by=info["user_id"] or SYSTEM_USER_ID,
            as_of_date=None,
            portfolio_ids=[evt.portfolio_id],
            cascade=True,
            # A positions change always recomputes, even when a run for the same day completed.
            force=True,
            params={"symbols": symbols, "cause_event_id": str(evt.event_id), "change": evt.change},
            work=work,
        )
        log.info("portfolio %s %s → run %s (%s)", evt.portfolio_id, evt.change, started.run["id"], trigger)


async def on_portfolio_updated(ctx: MarketDataContext, evt: PortfolioUpdated) -> None:
    """Dispatch a non-`valued` portfolio.updated by change (`valued` is bookkeeping, batched)."""
    if evt.change in ("onboarded", "positions"):
        await start_portfolio_run(ctx, evt)
    elif evt.change in ("removed", "archived"):
        done: list[Settled] = []
        async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            done = await skip_portfolio(ctx, work, portfolio_id=evt.portfolio_id, reason=evt.change)
        for settled in done:
            after_commit(settled)


def step_reports(evt: Event) -> list[tuple[StepInfo, UUID | None]]:
    """Every step an event reports: its `step` and any `extra_steps`, for its portfolio (or market-wide)."""
    # The event's field values: an attribute its class lacks (extra_steps of greeks.computed, ...)
    # read with getattr goes through pydantic's __getattr__ and an exception, per event.
    fields = evt.__dict__
    portfolio_id: UUID | None = None if isinstance(evt, PricesUpdated) else fields.get("portfolio_id")
    steps: list[StepInfo] = []
    step = fields.get("step")
    if step is not None:
        steps.append(step)
    steps.extend(fields.get("extra_steps") or [])
    return [(s, portfolio_id) for s in steps]


# Every batch locks the same run rows, so batches of one process queue here (in memory) rather than
# each holding a database connection while waiting for the row lock.
_bookkeeping_lock = asyncio.Lock()


async def on_step_events(ctx: MarketDataContext, events: list[Event]) -> None:
    """Bookkeeping for a batch of pipeline events: one transaction, one settlement per run."""
    reported = {id(e): found for e in events if e.run_id is not None and (found := step_reports(e))}
    relevant = [e for e in events if id(e) in reported]
    if not relevant:
        return
    settled: list[Settled] = []
    async with _bookkeeping_lock, ctx.plumbing.uow.for_events(CONSUMER, relevant) as work:
        reports: list[StepEvent] = [
            (evt.run_id, step, portfolio_id, evt.producer, evt.event_id)
            for evt in work.fresh
            if evt.run_id is not None
            for step, portfolio_id in reported[id(evt)]
        ]
        settled = await apply_step_reports(ctx, work, reports)
    for done in settled:
        after_commit(done)


async def on_portfolio_updates(ctx: MarketDataContext, events: list[PortfolioUpdated]) -> None:
    """`valued` events are step reports (batched); the other changes start or skip runs one by one."""
    await on_step_events(ctx, [e for e in events if e.change == "valued"])
    for evt in events:
        if evt.change != "valued":
            await on_portfolio_updated(ctx, evt)


def register(bus: Bus, ctx: MarketDataContext) -> None:
    """Subscribe the batch handlers (consumer "marketdata")."""

    async def cycle(evt: CycleStarted) -> None:
        await on_cycle_started(ctx, evt)

    async def steps(events: list[Event]) -> None:
        await on_step_events(ctx, events)

    async def portfolios(events: list[PortfolioUpdated]) -> None:
        await on_portfolio_updates(ctx, events)

    bus.subscribe(CONSUMER, CycleStarted, cycle)
    for event_type in (PricesUpdated, GreeksComputed, FactorsComputed, StressComputed, SnapshotCreated):
        bus.subscribe_batch(CONSUMER, event_type, steps, max_batch=256, max_wait=0.05, concurrency=1)
    bus.subscribe_batch(CONSUMER, PortfolioUpdated, portfolios, max_batch=256, max_wait=0.05, concurrency=1)
