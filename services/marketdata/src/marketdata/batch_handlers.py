"""Bus subscriptions of the batch part of marketdata (consumer "marketdata"): thin wiring only.

* `cycle.started` → mark the run running; run the market_data step when it is `steps[0]`.
* every pipeline event with a `step` block (prices.updated, greeks.computed,
  portfolio.updated `valued`, factors.computed, stress.computed, snapshot.created) → one
  batch_job_run row, then the run state machine decides completion. Bookkeeping ignores
  `cascade`: a single-step run is tracked like any other.
* `portfolio.updated` `onboarded` / `positions` → a single-portfolio run_all (api.md §5.3);
  `removed` / `archived` → that portfolio's pending steps in active runs become `skipped`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
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
from marketdata.batch_bookkeeping import Settled, after_commit, apply_step_report, report_from_step, skip_portfolio
from marketdata.batch_service import start_run
from marketdata.context import MarketDataContext
from marketdata.cycle_market_data import CONSUMER, on_cycle_started

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


async def on_step_event(ctx: MarketDataContext, evt: Event, step: StepInfo | None, portfolio_id: UUID | None) -> None:
    """Record a pipeline event's step block against its run and settle the run."""
    if evt.run_id is None or step is None:
        return
    settled: Settled | None = None
    async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
        if work.duplicate:
            return
        settled = await apply_step_report(
            ctx,
            work,
            run_id=evt.run_id,
            report=report_from_step(step, portfolio_id, evt.producer),
            event_id=evt.event_id,
        )
    if settled is not None:
        after_commit(settled)


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
    """Dispatch portfolio.updated by change."""
    if evt.change == "valued":
        await on_step_event(ctx, evt, evt.step, evt.portfolio_id)
    elif evt.change in ("onboarded", "positions"):
        await start_portfolio_run(ctx, evt)
    elif evt.change in ("removed", "archived"):
        done: list[Settled] = []
        async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            done = await skip_portfolio(ctx, work, portfolio_id=evt.portfolio_id, reason=evt.change)
        for settled in done:
            after_commit(settled)


def register(bus: Bus, ctx: MarketDataContext) -> None:
    """Subscribe the batch handlers (consumer "marketdata")."""

    def bind(fn: Callable[[MarketDataContext, E], Awaitable[None]]) -> Callable[[E], Awaitable[None]]:
        async def handler(evt: E) -> None:
            await fn(ctx, evt)

        handler.__name__ = fn.__name__
        return handler

    async def prices(ctx: MarketDataContext, evt: PricesUpdated) -> None:
        await on_step_event(ctx, evt, evt.step, None)

    async def greeks(ctx: MarketDataContext, evt: GreeksComputed) -> None:
        await on_step_event(ctx, evt, evt.step, evt.portfolio_id)

    async def factors(ctx: MarketDataContext, evt: FactorsComputed) -> None:
        await on_step_event(ctx, evt, evt.step, evt.portfolio_id)

    async def stress(ctx: MarketDataContext, evt: StressComputed) -> None:
        await on_step_event(ctx, evt, evt.step, evt.portfolio_id)

    async def snapshot(ctx: MarketDataContext, evt: SnapshotCreated) -> None:
        await on_step_event(ctx, evt, evt.step, evt.portfolio_id)

    bus.subscribe(CONSUMER, CycleStarted, bind(on_cycle_started))
    bus.subscribe(CONSUMER, PricesUpdated, bind(prices))
    bus.subscribe(CONSUMER, GreeksComputed, bind(greeks))
    bus.subscribe(CONSUMER, PortfolioUpdated, bind(on_portfolio_updated))
    bus.subscribe(CONSUMER, FactorsComputed, bind(factors))
    bus.subscribe(CONSUMER, StressComputed, bind(stress))
    bus.subscribe(CONSUMER, SnapshotCreated, bind(snapshot))
