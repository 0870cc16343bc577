"""Bus subscriptions of ingest (thin: event → service)."""

from __future__ import annotations

from common.events import CycleStarted, GreeksComputed
from ingest.context import SERVICE, IngestContext
from ingest.service import IngestService


def register(ctx: IngestContext, service: IngestService) -> None:
    """`greeks.computed` → aggregations; `cycle.started` with steps[0] == "aggregations" → aggregations."""

    async def on_greeks_computed(evt: GreeksComputed) -> None:
        await service.on_greeks_computed(evt)

    async def on_cycle_started(evt: CycleStarted) -> None:
        await service.on_cycle_started(evt)

    ctx.bus.subscribe(SERVICE, GreeksComputed, on_greeks_computed)
    ctx.bus.subscribe(SERVICE, CycleStarted, on_cycle_started)
