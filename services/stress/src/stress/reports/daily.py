"""The daily report (api.md §5.2): one report per portfolio after each snapshot, `trigger: "batch"`.

Its own consumer (`stress.reports`, queue `stress.reports.snapshot.created`) so the snapshot step is
never held up by it, batched so a 1,000-portfolio cycle pays one read per concern per batch, and cheap:
md, json and csv only (PDFs are made on demand). A re-run of the day replaces the day's report
(upsert on portfolio and date). Back-fill runs and events with `cascade: false` make no report.
Also here: purging reports and exports of removed portfolios, the demo reset's clean-up of what demo
users made, and the hourly expiry of files older than 30 days.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from common.bus import Bus
from common.events import PortfolioUpdated, SnapshotCreated
from common.formatting import utcnow
from common.service import Plumbing
from stress import repository as snapshot_repository
from stress.exports import files
from stress.exports.files import FileContent
from stress.reports import inputs as reads
from stress.reports import store
from stress.reports.document import ALL_SECTIONS
from stress.reports.inputs import ReportInputs
from stress.reports.render import build_files

log = logging.getLogger(__name__)

CONSUMER = "stress.reports"
BATCH_FORMATS = ("md", "json", "csv")
MAX_BATCH = 64
PURGE_EVERY_SECONDS = 3600.0

Built = dict[UUID, list[FileContent] | str]


def build_batch(inputs: dict[UUID, ReportInputs], generated_at: datetime) -> Built:
    """Files of every portfolio (CPU; runs in a worker thread); a failure is the error text of that one."""
    out: Built = {}
    for pid, one in inputs.items():
        try:
            out[pid] = build_files(one, BATCH_FORMATS, ALL_SECTIONS, generated_at)[1]
        except Exception as exc:
            log.exception("daily report of %s on %s failed", pid, one.as_of)
            out[pid] = f"{type(exc).__name__}: {exc}"
    return out


class DailyReports:
    """Subscriber of `snapshot.created` and `portfolio.updated` for reports."""

    def __init__(self, plumbing: Plumbing) -> None:
        self.db = plumbing.db

    def register(self, bus: Bus) -> None:
        """One report batch at a time: the report consumer never takes more than one core from the cycle."""
        bus.subscribe_batch(CONSUMER, SnapshotCreated, self.on_snapshots_created, max_batch=MAX_BATCH, concurrency=1)
        bus.subscribe(CONSUMER, PortfolioUpdated, self.on_portfolio_updated)

    async def on_snapshots_created(self, events: list[SnapshotCreated]) -> None:
        """A batch of snapshot.created → the daily report of each (portfolio, snapshot date)."""
        by_date: dict[date, set[UUID]] = defaultdict(set)
        runs: dict[UUID | None, bool] = {}
        async with self.db.session() as session:
            for evt in events:
                if not evt.cascade or (evt.step is not None and evt.step.status == "failed"):
                    continue
                if evt.run_id not in runs:
                    runs[evt.run_id] = await snapshot_repository.run_is_backfill(session, evt.run_id)
                if not runs[evt.run_id]:
                    by_date[evt.snapshot_date].add(evt.portfolio_id)
        for day, ids in sorted(by_date.items()):
            await self.make(sorted(ids), day, run_id=next((e.run_id for e in events if e.snapshot_date == day), None))

    async def make(self, portfolio_ids: list[UUID], as_of: date, *, run_id: UUID | None = None) -> dict[UUID, UUID]:
        """Build and store the daily reports of `portfolio_ids` on `as_of`; returns portfolio → report id."""
        async with self.db.transaction() as session:
            await reads.start_consistent_read(session)
            loaded = await reads.load(session, portfolio_ids, as_of)
        loaded = {pid: one for pid, one in loaded.items() if one.snapshot is not None}
        if not loaded:
            return {}
        started = utcnow()
        built = await asyncio.to_thread(build_batch, loaded, started)
        completed = utcnow()
        expires = completed + files.RETENTION
        rows = [self._row(loaded[pid], built[pid], started, completed, expires, run_id) for pid in loaded]
        async with self.db.transaction() as session:
            ids = await store.upsert_batch(session, rows)
            await store.drop_files(session, list(ids.values()))
            for pid, made in built.items():
                if isinstance(made, str):
                    continue
                stored = await files.put_many(
                    session, owner=loaded[pid].portfolio.user_id, files=made, expires_at=expires
                )
                await store.attach_files(session, ids[pid], list(zip(BATCH_FORMATS, stored, strict=True)))
        log.info("daily reports of %d portfolio(s) on %s stored", len(ids), as_of)
        return ids

    @staticmethod
    def _row(
        inputs: ReportInputs,
        made: list[FileContent] | str,
        started: datetime,
        completed: datetime,
        expires: datetime,
        run_id: UUID | None,
    ) -> dict[str, Any]:
        failed = isinstance(made, str)
        return {
            "user_id": inputs.portfolio.user_id,
            "portfolio_id": inputs.portfolio.id,
            "trigger": "batch",
            "formats": list(BATCH_FORMATS),
            "sections": list(ALL_SECTIONS),
            "as_of_date": inputs.as_of,
            "status": "failed" if failed else "completed",
            "data_source": inputs.data_source,
            "progress_pct": 100,
            "progress_step": "failed" if failed else "completed",
            "error_code": "REPORT_FAILED" if failed else None,
            "error_message": made if isinstance(made, str) else None,
            "run_id": run_id,
            "started_at": started,
            "completed_at": None if failed else completed,
            "expires_at": None if failed else expires,
        }

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
