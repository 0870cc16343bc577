"""Bus subscriptions of ingest (thin: event → service)."""

from __future__ import annotations

from common.events import CycleStarted, GreeksComputed
from ingest.context import SERVICE, IngestContext
from ingest.service import IngestService


def register(ctx: IngestContext, service: IngestService) -> None:
    """`greeks.computed` → aggregations; `cycle.started` with steps[0] == "aggregations" → aggregations."""

    async def on_greeks_computed(events: list[GreeksComputed]) -> None:
        await service.on_greeks_computed(events)

    async def on_cycle_started(evt: CycleStarted) -> None:
        await service.on_cycle_started(evt)

    # Batched: one transaction (claims, outbox) serves up to 64 portfolios; each is valued in its own SAVEPOINT.
    ctx.bus.subscribe_batch(SERVICE, GreeksComputed, on_greeks_computed, max_batch=64, max_wait=0.02)
    ctx.bus.subscribe(SERVICE, CycleStarted, on_cycle_started)
