"""Bus subscribers of the factors service (consumer "factors"): thin wiring to FactorPipeline.

* `prices.updated` with cascade → the date's factor model (factor series, covariance, regressions of
  every held underlying), api.md §5.2, built while greeks and valuation run so that the first
  `valued` batch finds it stored instead of building it on the step's critical path. A model that
  cannot be built is only logged here: each portfolio's factors step reports it.
* `portfolio.updated` (batched): `valued` with cascade → factor exposures + position correlations
  of the fresh portfolios, grouped by (as_of, run_id), one `factors.computed` each; `removed` →
  purge the portfolio's factor and correlation rows (idempotent).
* `cycle.started` with steps[0] = `factors` or `correlations` (single-step admin triggers,
  api.md #13 / #17) → that step (plus `correlations` when the trigger lists both) for the listed
  or all active portfolios, one `factors.computed` each with the trigger's cascade.

Duplicate deliveries change nothing: every event is claimed in the unit of work that applies it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from uuid import UUID

from common.bus import Bus
from common.db import is_transient_db_error
from common.events import CycleStarted, PortfolioUpdated, PricesUpdated
from common.service import Plumbing
from factors import evaluate
from factors import repository as repo
from factors.service import FACTOR_STEPS, FactorPipeline, MarketModelUnavailable

log = logging.getLogger(__name__)

CONSUMER = "factors"
# Events gathered per handler call: one transaction and one set of grouped reads serve them all.
MAX_BATCH = 64
MAX_WAIT_SECONDS = 0.02
DEFAULT_DURATION_DAYS = 90


def _wanted(evt: PortfolioUpdated) -> bool:
    return (evt.change == "valued" and evt.cascade) or evt.change == "removed"


def register(bus: Bus, plumbing: Plumbing, pipeline: FactorPipeline) -> None:
    """Subscribe the factors and correlations steps and the purge of removed portfolios."""

    async def on_portfolio_updated(events: list[PortfolioUpdated]) -> None:
        wanted = [e for e in events if _wanted(e)]
        if not wanted:
            return
        async with plumbing.uow.for_events(CONSUMER, list(wanted)) as work:
            if work.duplicate:
                return
            fresh = [e for e in work.fresh if isinstance(e, PortfolioUpdated)]
            removed = {e.portfolio_id for e in fresh if e.change == "removed"}
            for pid in sorted(removed):
                count = await repo.delete_portfolio(work.session, portfolio_id=pid)
                log.info("removed %d factors rows of portfolio %s", count, pid)
            groups: dict[tuple[date, UUID | None], list[PortfolioUpdated]] = defaultdict(list)
            for evt in fresh:
                if evt.change == "valued" and evt.portfolio_id not in removed:
                    groups[(evt.as_of, evt.run_id)].append(evt)
            for (as_of, run_id), group in groups.items():
                latest = {e.portfolio_id: e for e in group}  # one computation per portfolio
                with_correlations = await repo.run_includes_correlations(work.session, run_id=run_id)
                outcomes = await pipeline.compute_portfolios(
                    work.session,
                    portfolio_ids=list(latest),
                    as_of=as_of,
                    run_id=run_id,
                    steps=FACTOR_STEPS if with_correlations else ("factors",),
                )
                for pid, evt in latest.items():
                    work.emit(
                        pipeline.event(
                            outcomes[pid],
                            as_of=as_of,
                            run_id=run_id,
                            cascade=evt.cascade,
                            correlation_id=evt.correlation_id,
                        )
                    )

    async def on_prices_updated(evt: PricesUpdated) -> None:
        if not evt.cascade:
            return
        async with plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            try:
                # In a SAVEPOINT: a failure leaves the claim to commit, the batches retry the build.
                async with work.session.begin_nested():
                    await pipeline.ensure_market_model(work.session, as_of=evt.as_of, run_id=evt.run_id)
            except MarketModelUnavailable as exc:
                log.info("no factor model for %s yet: %s", evt.as_of, exc)
            except Exception as exc:
                if is_transient_db_error(exc):
                    raise
                log.exception("building the factor model of %s on prices.updated failed", evt.as_of)

    async def on_cycle_started(evt: CycleStarted) -> None:
        # A full run starts on prices.updated → … → portfolio.updated; only single-step triggers start here.
        if not evt.steps or evt.steps[0] not in FACTOR_STEPS:
            return
        steps = [s for s in evt.steps if s in FACTOR_STEPS] if evt.steps[0] == "factors" else ["correlations"]
        duration = int((evt.params or {}).get("duration_days") or DEFAULT_DURATION_DAYS)
        async with plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            ids = evt.portfolio_ids
            if ids is None:
                ids = await repo.active_portfolio_ids(work.session)
            outcomes = await pipeline.compute_portfolios(
                work.session,
                portfolio_ids=list(ids),
                as_of=evt.as_of,
                run_id=evt.run_id,
                steps=steps,
                duration_days=duration,
            )
            for outcome in outcomes.values():
                work.emit(
                    pipeline.event(
                        outcome,
                        as_of=evt.as_of,
                        run_id=evt.run_id,
                        cascade=evt.cascade,
                        correlation_id=evt.correlation_id,
                    )
                )

    bus.subscribe_batch(
        CONSUMER, PortfolioUpdated, on_portfolio_updated, max_batch=MAX_BATCH, max_wait=MAX_WAIT_SECONDS
    )
    bus.subscribe(CONSUMER, PricesUpdated, on_prices_updated)
    bus.subscribe(CONSUMER, CycleStarted, on_cycle_started)
    evaluate.register(bus, plumbing, pipeline)  # rpc.factors.evaluate (ProForma, api.md §5.4)
