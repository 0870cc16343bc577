"""Building and storing daily (`batch`) reports of many portfolios of one date: one consistent read for
the batch, the files built in one worker thread, one write transaction. md, json and csv only (the
PDF is made on demand). A day's report keeps its id when it is rebuilt; its files are replaced."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Any
from uuid import UUID

from common.db import Database
from common.formatting import utcnow
from stress.exports import files
from stress.exports.files import FileContent
from stress.reports import inputs as reads
from stress.reports import store
from stress.reports.document import ALL_SECTIONS
from stress.reports.inputs import ReportInputs
from stress.reports.render import build_files

log = logging.getLogger(__name__)

BATCH_FORMATS = ("md", "json", "csv")

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


def report_row(inputs: ReportInputs, run_id: UUID | None, **values: Any) -> dict[str, Any]:
    """A `batch` report row of `inputs`' portfolio and date (status and times in `values`)."""
    return {
        "user_id": inputs.portfolio.user_id,
        "portfolio_id": inputs.portfolio.id,
        "trigger": "batch",
        "formats": list(BATCH_FORMATS),
        "sections": list(ALL_SECTIONS),
        "as_of_date": inputs.as_of,
        "data_source": inputs.data_source,
        "run_id": run_id,
        "error_code": None,
        "error_message": None,
        **values,
    }


def _outcome(made: list[FileContent] | str, started: datetime, completed: datetime) -> dict[str, Any]:
    if isinstance(made, str):
        return {
            "status": "failed",
            "progress_pct": 100,
            "progress_step": "failed",
            "error_code": "REPORT_FAILED",
            "error_message": made[:1000],
            "started_at": started,
            "completed_at": None,
            "expires_at": None,
        }
    return {
        "status": "completed",
        "progress_pct": 100,
        "progress_step": "completed",
        "started_at": started,
        "completed_at": completed,
        "expires_at": completed + files.RETENTION,
    }


async def make(
    db: Database, portfolio_ids: list[UUID], as_of: date, run_ids: dict[UUID, UUID | None]
) -> dict[UUID, UUID]:
    """Build and store the daily reports of `portfolio_ids` on `as_of` (those with a snapshot of that date);
    returns portfolio → report id."""
    async with db.transaction() as session:
        await reads.start_consistent_read(session)
        loaded = await reads.load(session, portfolio_ids, as_of)
    loaded = {pid: one for pid, one in loaded.items() if one.snapshot is not None}
    if not loaded:
        return {}
    started = utcnow()
    built = await asyncio.to_thread(build_batch, loaded, started)
    completed = utcnow()
    rows = [report_row(loaded[p], run_ids.get(p), **_outcome(built[p], started, completed)) for p in loaded]
    async with db.transaction() as session:
        ids = await store.upsert_batch(session, rows)
        await store.drop_files(session, list(ids.values()))
        for pid, made in built.items():
            if isinstance(made, str):
                continue
            owner = loaded[pid].portfolio.user_id
            stored = await files.put_many(session, owner=owner, files=made, expires_at=completed + files.RETENTION)
            await store.attach_files(session, ids[pid], list(zip(BATCH_FORMATS, stored, strict=True)))
    log.info("daily reports of %d portfolio(s) on %s stored", len(ids), as_of)
    return ids
