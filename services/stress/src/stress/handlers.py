"""Bus subscriptions of the stress service (thin: event → service)."""

from __future__ import annotations

from common.bus import Bus
from common.events import CycleStarted, PortfolioUpdated
from stress.service import CONSUMER, SnapshotService


def register(bus: Bus, snapshots: SnapshotService) -> None:
    """Subscribe the snapshot step: `portfolio.updated` (valued / removed) and single-step `cycle.started`."""

    async def on_portfolio_updated(evt: PortfolioUpdated) -> None:
        await snapshots.on_portfolio_updated(evt)

    async def on_cycle_started(evt: CycleStarted) -> None:
        await snapshots.on_cycle_started(evt)

    bus.subscribe(CONSUMER, PortfolioUpdated, on_portfolio_updated)
    bus.subscribe(CONSUMER, CycleStarted, on_cycle_started)
