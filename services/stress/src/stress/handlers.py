"""Bus subscriptions of the stress service (thin: event → orchestration).

* `factors.computed` (cascade, batched) → market-risk scenarios, stress tests and risk metrics →
  `stress.computed` (stress.pipeline).
* `stress.computed` (cascade, batched) → the daily snapshot → `snapshot.created` (stress.service).
* `cycle.started` single-step triggers: `risk_scenarios`, `stress_tests` (pipeline) and `snapshots`.
* `portfolio.updated` `removed` → purge the portfolio's stress rows.
"""

from __future__ import annotations

from common.bus import Bus
from common.events import CycleStarted, FactorsComputed, PortfolioUpdated, StressComputed
from stress import evaluate
from stress.pipeline import CONSUMER, StressPipeline
from stress.service import SnapshotService

# Events gathered per handler call: one transaction and one set of grouped reads serve them all.
MAX_BATCH = 64
MAX_WAIT_SECONDS = 0.02


def register(bus: Bus, snapshots: SnapshotService, pipeline: StressPipeline) -> None:
    """Subscribe the stress and snapshot steps."""

    async def on_factors_computed(events: list[FactorsComputed]) -> None:
        await pipeline.on_factors_computed(events)

    async def on_stress_computed(events: list[StressComputed]) -> None:
        await snapshots.on_stress_computed(events)

    async def on_portfolio_updated(evt: PortfolioUpdated) -> None:
        await snapshots.on_portfolio_updated(evt)

    async def on_cycle_started(evt: CycleStarted) -> None:
        # Each owner returns before claiming the event unless steps[0] is its step.
        await pipeline.on_cycle_started(evt)
        await snapshots.on_cycle_started(evt)

    bus.subscribe_batch(CONSUMER, FactorsComputed, on_factors_computed, max_batch=MAX_BATCH, max_wait=MAX_WAIT_SECONDS)
    bus.subscribe_batch(CONSUMER, StressComputed, on_stress_computed, max_batch=MAX_BATCH, max_wait=MAX_WAIT_SECONDS)
    bus.subscribe(CONSUMER, PortfolioUpdated, on_portfolio_updated)
    bus.subscribe(CONSUMER, CycleStarted, on_cycle_started)
    evaluate.register(bus, pipeline)  # rpc.stress.evaluate (ProForma, api.md §5.4)
