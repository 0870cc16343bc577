"""Bus subscribers of the greeks service (consumer name "greeks"): thin wiring to GreeksService."""

from __future__ import annotations

import logging
from typing import Any

from common.bus import Bus
from common.events import CycleStarted, PortfolioUpdated, PricesUpdated
from common.service import Plumbing
from greeks import adhoc
from greeks.chunks import scope_chunks
from greeks.schemas import CalculateRequest
from greeks.service import GreeksService

log = logging.getLogger(__name__)

CONSUMER = "greeks"


def register(bus: Bus, plumbing: Plumbing, service: GreeksService) -> None:
    """Subscribe to prices.updated, cycle.started (single-step trigger) and portfolio.updated; serve
    rpc.greeks.evaluate."""

    async def compute_in_chunks(evt: PricesUpdated | CycleStarted) -> None:
        """The step over the event's scope, one unit of work (and one set of greeks.computed) per
        chunk: ingest starts valuing the first chunk while the others are computed (greeks.chunks)."""
        chunks = list(scope_chunks(evt))
        # Several chunks share one read of the contracts and market data (see GreeksService.load_inputs).
        inputs = None
        if len(chunks) > 1 and evt.portfolio_ids is not None:
            inputs = await service.read_inputs(portfolio_ids=evt.portfolio_ids, as_of=evt.as_of)
        for claim, portfolio_ids in chunks:
            async with plumbing.uow.for_event(CONSUMER, claim) as work:
                if work.duplicate:
                    continue
                await service.compute_step(
                    work,
                    portfolio_ids=portfolio_ids,
                    as_of=evt.as_of,
                    run_id=evt.run_id,
                    cascade=evt.cascade,
                    correlation_id=evt.correlation_id,
                    inputs=inputs,
                )

    async def on_prices_updated(evt: PricesUpdated) -> None:
        if not evt.cascade:
            return
        await compute_in_chunks(evt)

    async def on_cycle_started(evt: CycleStarted) -> None:
        # Only the single-step admin trigger starts here; a full run starts on prices.updated.
        if not evt.steps or evt.steps[0] != "greeks":
            return
        await compute_in_chunks(evt)

    async def on_portfolio_updated(evt: PortfolioUpdated) -> None:
        if evt.change != "removed":
            return
        async with plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            removed = await service.remove_portfolio(work, evt.portfolio_id)
            log.info("removed %d greeks rows of portfolio %s", removed, evt.portfolio_id)

    async def evaluate(payload: dict[str, Any]) -> dict[str, Any]:
        """`rpc.greeks.evaluate` (api.md §5.4, ProForma): the #30 ad hoc body in, its `data` out; nothing stored."""
        request = CalculateRequest.model_validate({k: payload[k] for k in ("positions", "as_of_date") if k in payload})
        assert request.positions is not None
        async with plumbing.db.session() as session:
            as_of = request.as_of_date or await adhoc.default_as_of(session)
            return await adhoc.calculate(session, service, request.positions, as_of)

    bus.respond("greeks.evaluate", evaluate)
    bus.subscribe(CONSUMER, PricesUpdated, on_prices_updated)
    bus.subscribe(CONSUMER, CycleStarted, on_cycle_started)
    bus.subscribe(CONSUMER, PortfolioUpdated, on_portfolio_updated)
