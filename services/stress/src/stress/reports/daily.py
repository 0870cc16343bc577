"""The daily report (api.md §5.2): one report per portfolio after each snapshot, `trigger: "batch"`.

Its own consumer (`stress.reports`, queue `stress.reports.snapshot.created`) only queues the day's
report (one upsert per batch of events; the row says `queued`), so the snapshot step and the cycle are
never held up. A background worker builds queued reports once the batch run they belong to, and any
run started after it, has finished (at most QUIET_WAIT_SECONDS after queueing), so report building
never competes with a cycle for CPU or the database; several replicas share the work (SKIP LOCKED).
A re-run of the day re-queues and rebuilds the same report. Back-fill runs and events with
`cascade: false` make no report. Also here: purging reports and exports of removed portfolios, the
demo reset's clean-up of what demo users made, and the hourly expiry of files older than 30 days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import date, timedelta
from uuid import UUID

from common.bus import Bus
from common.events import PortfolioUpdated, SnapshotCreated
from common.formatting import utcnow
from common.service import Plumbing
from stress import repository as snapshot_repository
from stress.exports import files
from stress.reports import daily_build, store
from stress.reports import inputs as reads
from stress.reports.document import ALL_SECTIONS

log = logging.getLogger(__name__)

CONSUMER = "stress.reports"
MAX_BATCH = 64
POLL_SECONDS = 1.0
QUIET_WAIT_SECONDS = 600.0
# A report claimed this long ago by a worker that never finished it (crash) is built again.
STALE_CLAIM = timedelta(minutes=5)
PURGE_EVERY_SECONDS = 3600.0


class DailyReports:
    """Queues daily reports on `snapshot.created`, builds them in the background, cleans up."""

    def __init__(self, plumbing: Plumbing) -> None:
        self.db = plumbing.db
        self._wake: asyncio.Event | None = None

    def register(self, bus: Bus) -> None:
        bus.subscribe_batch(CONSUMER, SnapshotCreated, self.on_snapshots_created, max_batch=MAX_BATCH)
        bus.subscribe(CONSUMER, PortfolioUpdated, self.on_portfolio_updated)

    def _event(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    async def on_snapshots_created(self, events: list[SnapshotCreated]) -> None:
        """Queue the daily report of each (portfolio, snapshot date) of a batch of snapshot.created."""
        wanted: dict[tuple[UUID, date], UUID | None] = {}
        backfill: dict[UUID | None, bool] = {}
        async with self.db.transaction() as session:
            for evt in events:
                if not evt.cascade or (evt.step is not None and evt.step.status == "failed"):
                    continue
                if evt.run_id not in backfill:
                    backfill[evt.run_id] = await snapshot_repository.run_is_backfill(session, evt.run_id)
                if not backfill[evt.run_id]:
                    wanted[(evt.portfolio_id, evt.snapshot_date)] = evt.run_id
            owners = await reads.portfolios(session, list({pid for pid, _ in wanted}))
            rows = [
                {
                    "user_id": owners[pid].user_id,
                    "portfolio_id": pid,
                    "trigger": "batch",
                    "formats": list(daily_build.BATCH_FORMATS),
                    "sections": list(ALL_SECTIONS),
                    "as_of_date": day,
                    "status": "queued",
                    "run_id": run_id,
                    "progress_pct": 0,
                    "progress_step": "queued",
                    "error_code": None,
                    "error_message": None,
                    "started_at": None,
                    "completed_at": None,
                }
                for (pid, day), run_id in wanted.items()
                if pid in owners
            ]
            await store.upsert_batch(session, rows)
        if rows:
            self._event().set()

    async def build_pending(self) -> int:
        """Build one batch of queued daily reports whose run is over; returns how many were claimed."""
        now = utcnow()
        async with self.db.transaction() as session:
            pending = await store.pending_batch(session, now - STALE_CLAIM, MAX_BATCH)
            quiet: dict[UUID | None, bool] = {None: True}
            for row in pending:
                if row["run_id"] not in quiet:
                    quiet[row["run_id"]] = not await store.run_in_progress(session, row["run_id"])
            overdue = now - timedelta(seconds=QUIET_WAIT_SECONDS)
            eligible = [r["id"] for r in pending if quiet[r["run_id"]] or r["created_at"] < overdue]
            claimed = await store.claim(session, eligible, now, now - STALE_CLAIM)
        by_date: dict[date, dict[UUID, UUID | None]] = defaultdict(dict)
        for row in claimed:
            by_date[row["as_of_date"]][row["portfolio_id"]] = row["run_id"]
        for day, runs in sorted(by_date.items()):
            made = await daily_build.make(self.db, sorted(runs), day, runs)
            unmade = [r["id"] for r in claimed if r["as_of_date"] == day and r["portfolio_id"] not in made]
            if unmade:
                async with self.db.transaction() as session:
                    await store.fail(
                        session, unmade, "NOT_CALCULATED", f"no snapshot of {day.isoformat()} to report on"
                    )
        return len(claimed)

    async def build_forever(self) -> None:
        """Background worker of the service: build queued daily reports as they become eligible."""
        wake = self._event()
        while True:
            try:
                built = await self.build_pending()
            except Exception:
                log.exception("daily report worker failed; retrying")
                built = 0
            if not built:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_SECONDS)

    async def on_portfolio_updated(self, evt: PortfolioUpdated) -> None:
        """`removed` → purge the portfolio's reports and exports; a demo reset's `positions` event → delete
        what the demo user made (on-demand reports, exports; api.md #74)."""
        if evt.change == "removed":
            async with self.db.transaction() as session:
                await store.delete_portfolio(session, evt.portfolio_id)
        elif evt.change == "positions" and evt.trigger == "demo_reset":
            async with self.db.transaction() as session:
                owner = await store.portfolio_owner(session, evt.portfolio_id)
                if owner is not None:
                    await store.delete_user_made(session, owner)

    async def purge_forever(self) -> None:
        """Expire files older than 30 days, hourly (background task of the service)."""
        while True:
            try:
                async with self.db.transaction() as session:
                    purged = await files.purge_expired(session, utcnow())
                if purged:
                    log.info("purged %d expired report/export file(s)", purged)
            except Exception as exc:
                log.warning("report file purge failed: %s", exc)
            await asyncio.sleep(PURGE_EVERY_SECONDS)
