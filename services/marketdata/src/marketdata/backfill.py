"""History back-fill: replay the per-portfolio steps for past trading days (demo.md §8 item 4).

For each of the `days` trading days before `end`, oldest first, one run is started and awaited:
trigger "manual", job `greeks` with cascade, planned steps greeks → aggregations → snapshots,
params {"backfill": true} (stress marks those snapshots `source = "backfill"`). Market data is
collected once up front with a lookback that covers the whole range. Runs are idempotent per
as-of date: a day whose identical run already completed is not recomputed unless `force`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date
from uuid import UUID

from common.formatting import utcnow
from common.ids import SYSTEM_USER_ID
from marketdata import batch_repository as repo
from marketdata.batch_compute import RUN_TIME_LIMIT_SECONDS, TERMINAL_RUN_STATUSES
from marketdata.batch_service import start_run
from marketdata.calendar import previous_trading_day
from marketdata.context import MarketDataContext
from marketdata.market_data import collect_market_data, default_as_of

log = logging.getLogger(__name__)

# The back-fill replays the pipeline from `greeks` on (cascade): greeks → aggregations → snapshots.
BACKFILL_FIRST_STEP = "greeks"
# Extra trading days of history before the first back-filled day (63-day realised volatility for
# Greeks; 252 returns for factor regressions once that step joins the back-fill).
HISTORY_MARGIN_DAYS = 253
MAX_LOOKBACK_DAYS = 1260
POLL_SECONDS = 0.25


def backfill_dates(end: date, days: int) -> list[date]:
    """The `days` trading days strictly before `end`, oldest first."""
    if days <= 0:
        return []
    out: list[date] = []
    day = end
    while len(out) < days:
        day = previous_trading_day(day)
        out.append(day)
    return sorted(out)


async def wait_for_run(ctx: MarketDataContext, run_id: UUID, timeout: float) -> str:
    """Poll a run until it is terminal or `timeout` seconds passed; returns its status then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout)
    while True:
        async with ctx.db.session() as session:
            run = await repo.get_run(session, run_id=run_id)
        if run is None:
            raise KeyError(f"unknown run {run_id}")
        status: str = run["status"]
        if status in TERMINAL_RUN_STATUSES or loop.time() >= deadline:
            return status
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))


async def backfill(
    ctx: MarketDataContext,
    *,
    days: int,
    end: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    portfolio_ids: Sequence[UUID] | None = None,
    force: bool = False,
    run_timeout: float = RUN_TIME_LIMIT_SECONDS,
) -> list[UUID]:
    """Back-fill `days` trading days before `end` (default: the latest as-of date); returns run ids."""
    end = end or default_as_of(ctx, utcnow())
    dates = backfill_dates(end, days)
    if not dates:
        return []
    lookback = min(MAX_LOOKBACK_DAYS, len(dates) + 1 + HISTORY_MARGIN_DAYS)
    result = await collect_market_data(ctx, as_of=end, symbols=None, lookback_days=lookback)
    if result.symbols_failed:
        log.warning("back-fill: %d symbol(s) without history: %s", len(result.symbols_failed), result.symbols_failed)
    run_ids: list[UUID] = []
    for i, day in enumerate(dates, start=1):
        started = await start_run(
            ctx,
            job_name=BACKFILL_FIRST_STEP,
            trigger="manual",
            requested_by=SYSTEM_USER_ID,
            as_of_date=day,
            portfolio_ids=portfolio_ids,
            cascade=True,
            force=force,
            params={"backfill": True},
        )
        run_id: UUID = started.run["id"]
        run_ids.append(run_id)
        status = await wait_for_run(ctx, run_id, run_timeout)
        if status not in TERMINAL_RUN_STATUSES:
            log.warning("back-fill run %s for %s still %s after %.0f s", run_id, day, status, run_timeout)
        elif status != "completed":
            log.warning("back-fill run %s for %s finished %s", run_id, day, status)
        if progress is not None:
            progress(i, len(dates))
    return run_ids
