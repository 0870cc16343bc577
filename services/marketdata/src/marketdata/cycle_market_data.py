"""The `market_data` step of a run, started by `cycle.started` when `steps[0] == "market_data"`.

The provider calls run outside any transaction (they may take minutes): a first short unit of
work marks the run and the step running; a second one, which claims the event in the inbox,
records the outcome and emits `prices.updated` through the outbox. A redelivery before that
commit simply runs the (idempotent) collection again; after it, the inbox skips it.
A failure still emits `prices.updated` with `step.status = "failed"`: downstream steps run on the
stored prices and mark their results partial (api.md §5.3, users.md OPS-03).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from common.events import CycleStarted, PricesUpdated, StepError, StepInfo
from common.formatting import utcnow
from marketdata import batch_repository as repo
from marketdata.batch_bookkeeping import Settled, StepReport, after_commit, record_step, settle_run
from marketdata.batch_compute import TERMINAL_RUN_STATUSES
from marketdata.context import MarketDataContext
from marketdata.market_data import collect_market_data

log = logging.getLogger(__name__)

CONSUMER = "marketdata"
DEFAULT_LOOKBACK_DAYS = 5  # api.md #10: trading days re-fetched by default


def prices_event_id(cycle_event_id: uuid.UUID) -> uuid.UUID:
    """Deterministic id of the prices.updated a cycle.started causes (re-executions publish one event)."""
    return uuid.uuid5(cycle_event_id, "prices.updated")


async def _already_processed(ctx: MarketDataContext, evt: CycleStarted) -> bool:
    table = ctx.plumbing.tables.processed_event
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                sa.select(table.c.event_id).where(table.c.consumer == CONSUMER, table.c.event_id == evt.event_id)
            )
        ).first()
    return row is not None


def _failed_symbols(value: Any) -> tuple[list[str], dict[str, str]]:
    if isinstance(value, Mapping):
        return sorted(str(k) for k in value), {str(k): str(v) for k, v in value.items()}
    return sorted(str(s) for s in value or ()), {}


async def on_cycle_started(ctx: MarketDataContext, evt: CycleStarted) -> None:
    """Mark the run running; run the market_data step when it is the first planned step."""
    if evt.run_id is None or await _already_processed(ctx, evt):
        return
    if not evt.steps or evt.steps[0] != "market_data":
        settled: Settled | None = None
        async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            run = await repo.get_run(work.session, run_id=evt.run_id, lock=True)
            if run is not None and run["status"] not in TERMINAL_RUN_STATUSES:
                settled = await settle_run(ctx, work.session, run, utcnow())
        if settled is not None:
            after_commit(settled)
        return
    await run_market_data_step(ctx, evt)


async def run_market_data_step(ctx: MarketDataContext, evt: CycleStarted) -> None:
    """Collect prices for the run's as-of date and publish prices.updated with the run's scope."""
    assert evt.run_id is not None
    started = utcnow()
    async with ctx.plumbing.uow.begin() as work:
        run = await repo.get_run(work.session, run_id=evt.run_id, lock=True)
        if run is None or run["status"] in TERMINAL_RUN_STATUSES:
            log.info("cycle.started for run %s ignored (unknown or finished)", evt.run_id)
            return
        await record_step(
            work.session,
            run,
            StepReport(job="market_data", portfolio_id=None, status="running", started_at=started, finished_at=None),
            event_id=None,
        )
        await settle_run(ctx, work.session, run, started)

    params = evt.params or {}
    symbols = params.get("symbols")
    lookback = int(params.get("lookback_days") or DEFAULT_LOOKBACK_DAYS)
    ok: list[str] = []
    failed: list[str] = []
    reasons: dict[str, str] = {}
    records = 0
    error: StepError | None = None
    try:
        if symbols is not None and len(symbols) == 0:
            log.info("run %s: no symbols to collect", evt.run_id)
        else:
            result = await collect_market_data(
                ctx,
                as_of=evt.as_of,
                symbols=list(symbols) if symbols is not None else None,
                lookback_days=lookback,
            )
            ok = sorted(result.symbols_ok)
            failed, reasons = _failed_symbols(result.symbols_failed)
            records = int(result.records)
    except Exception as exc:  # any failure is reported in the step, never swallowed silently
        log.exception("market_data step of run %s failed", evt.run_id)
        error = StepError(code="MARKET_DATA_FAILED", message=(str(exc) or type(exc).__name__)[:1000])
    finished = utcnow()

    if error is None and failed and not ok:
        error = StepError(code="ALL_SYMBOLS_FAILED", message=f"no symbol could be collected ({len(failed)} failed)")
    if error is not None:
        status = "failed"
    elif failed:
        status = "partial"
    else:
        status = "completed"
    details: dict[str, Any] = {"symbols_ok": len(ok), "symbols_failed": failed, "lookback_days": lookback}
    if reasons:
        details["reasons"] = reasons
    if status == "partial":
        details["partial"] = True
    step = StepInfo(
        name="market_data",
        status=status,
        started_at=started,
        finished_at=finished,
        records_processed=records,
        error=error,
    )
    out_id = prices_event_id(evt.event_id)
    settled: Settled | None = None
    async with ctx.plumbing.uow.for_event(CONSUMER, evt) as work:
        if work.duplicate:
            return
        run = await repo.get_run(work.session, run_id=evt.run_id, lock=True)
        if run is None:
            return
        partial_message = f"{len(failed)} symbol(s) failed: {', '.join(failed[:20])}" if failed else None
        await record_step(
            work.session,
            run,
            StepReport(
                job="market_data",
                portfolio_id=None,
                status="failed" if status == "failed" else "completed",
                started_at=started,
                finished_at=finished,
                records_processed=records,
                error_code=error.code if error else ("SYMBOLS_FAILED" if failed else None),
                error_message=error.message if error else partial_message,
                details=details,
                service="marketdata",
            ),
            event_id=out_id,
        )
        if run["status"] in TERMINAL_RUN_STATUSES:
            log.warning("run %s finished before its market data step; prices.updated not published", run["id"])
            return
        work.emit(
            PricesUpdated(
                event_id=out_id,
                run_id=evt.run_id,
                as_of=evt.as_of,
                correlation_id=evt.correlation_id,
                cascade=evt.cascade,
                symbols=ok,
                symbols_failed=failed,
                step=step,
                portfolio_ids=evt.portfolio_ids,
                trigger=evt.trigger,
            )
        )
        settled = await settle_run(ctx, work.session, run, finished)
    if settled is not None:
        after_commit(settled)
    log.info("run %s market_data %s: %d ok, %d failed, %d records", evt.run_id, status, len(ok), len(failed), records)
