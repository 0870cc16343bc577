"""CSV upload orchestration (api.md #24, csv-format.md): accept, check, verify, import.

`accept()` stores the upload and its job in one transaction (answered 202 after commit);
`process()` is the `upload.process` job: parsing → verifying_symbols → committing. Any row error
rejects the file and writes nothing but the report; a clean file is imported in one transaction
(`ingest.upload.commit`). A restart resumes a queued/processing upload from its stored content.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from common import metrics
from common.auth import Principal
from common.db import is_transient_db_error
from common.errors import ApiError
from common.jobs import JobFailed, JobOutcome
from ingest import csv_format
from ingest.context import IngestContext
from ingest.notifications.service import mail_enabled, record_upload_outcome
from ingest.upload import check_inputs, report_store, store
from ingest.upload.accept import UploadRequest, store_upload
from ingest.upload.commit import import_clean_file
from ingest.upload.errors import MarketDataUnavailable
from ingest.upload.urls import JOB_TYPE, results_url

log = logging.getLogger(__name__)

TERMINAL = ("completed", "rejected", "failed")
MAX_PORTFOLIOS = 10

ROWS = metrics.counter("ingest", "upload_rows", "CSV upload rows checked, by result", ("result",))
UPLOADS = metrics.counter("ingest", "uploads", "CSV uploads finished, by status", ("status",))


class UploadService:
    """Accepts and processes uploads for one ingest service instance."""

    def __init__(self, ctx: IngestContext, onboarding: Any) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.plumbing = ctx.plumbing
        self.onboarding = onboarding
        self.max_portfolios = int(getattr(ctx.settings, "max_portfolios_per_user", MAX_PORTFOLIOS))

    async def accept(self, principal: Principal, req: UploadRequest) -> tuple[dict[str, Any], UUID]:
        """Store the queued upload and its job (one transaction), then start processing."""
        job, upload_id = await store_upload(self.ctx, principal, req, self.max_portfolios)
        self.plumbing.runner.submit(upload_id, JOB_TYPE, self.process)
        return job, upload_id

    # ------------------------------------------------------------------ the upload.process job

    def resumer(self, job: dict[str, Any]) -> Any:
        """JobRunner resumer: reprocess an interrupted upload from its stored content."""
        return self.process

    async def process(self, upload_id: UUID) -> JobOutcome:
        """Run the upload job; record `failed` (with retryable) on the upload for any system error."""
        try:
            return await self._process(upload_id)
        except MarketDataUnavailable as exc:
            message = "market data could not be reached while verifying symbols; submit the file again"
            log.warning("upload %s: %s", upload_id, exc)
            await self._fail(upload_id, "MARKET_DATA_UNAVAILABLE", message, True)
            raise JobFailed(message, code="MARKET_DATA_UNAVAILABLE", retryable=True) from exc
        except ApiError as exc:
            await self._fail(upload_id, exc.code, exc.message, exc.retryable)
            raise
        except Exception as exc:
            transient = is_transient_db_error(exc)
            if not transient:
                log.exception("upload %s failed", upload_id)
            code = "SERVICE_UNAVAILABLE" if transient else "INTERNAL_ERROR"
            message = "the upload could not be processed; submit the file again" if transient else str(exc)[:500]
            await self._fail(upload_id, code, message, transient)
            raise JobFailed(message, code=code, retryable=transient) from exc

    async def _fail(self, upload_id: UUID, code: str, message: str, retryable: bool) -> None:
        try:
            async with self.db.transaction() as session:
                await store.fail_upload(session, upload_id, code, message, retryable)
                await record_upload_outcome(session, upload_id, mail=mail_enabled(self.ctx.settings))
            UPLOADS.labels("failed").inc()
        except Exception:
            log.exception("could not record the failure of upload %s", upload_id)

    async def _progress(self, upload_id: UUID, pct: int, phase: str, message: str, **values: Any) -> None:
        async with self.db.transaction() as session:
            await store.update_upload(session, upload_id, phase=phase, **values)
            await self.plumbing.ledger.progress(session, upload_id, pct, phase, message)

    async def _process(self, upload_id: UUID) -> JobOutcome:
        async with self.db.transaction() as session:
            up = await store.load_for_processing(session, upload_id)
            if up is None:
                raise JobFailed("upload not found", code="UPLOAD_NOT_FOUND")
            if up["status"] in TERMINAL:  # resumed after it had finished
                return _finished_outcome(up)
            await store.update_upload(
                session,
                upload_id,
                status="processing",
                phase="parsing",
                started_at=sa.text("now()"),
                rows_processed=0,
            )
            await self.plumbing.ledger.progress(session, upload_id, 5, "parsing", "checking rows")
            job = await self.plumbing.ledger.get(session, upload_id)
            existing = await check_inputs.existing_tags(session, up["user_id"])
            open_keys = (
                await check_inputs.open_position_keys(session, up["portfolio_id"])
                if up["mode"] == "append"
                else frozenset()
            )
        correlation_id = ((job or {}).get("request") or {}).get("correlation_id")
        ctx = csv_format.CheckContext(
            upload_date=up["upload_date"],
            mode=up["mode"],
            existing_tags=csv_format.CheckContext.tags_by_key(existing),
            open_positions=open_keys,
            open_position_count=len(open_keys),
        )
        content: bytes = bytes(up["content"] or b"")
        # The check is CPU work on up to 10 MiB: off the event loop.
        result = await asyncio.to_thread(csv_format.check_file, content, ctx)

        if not result.stopped:
            await self._progress(
                upload_id,
                40,
                "verifying_symbols",
                "verifying symbols against the security master",
                rows_total=result.rows_total,
                rows_processed=result.rows_total,
            )
            to_look_up = csv_format.symbols_to_look_up(result)
            new_symbols = await check_inputs.unknown_to_master(self.db, to_look_up)
            await check_inputs.ask_marketdata_to_verify(self.ctx.bus, new_symbols)
            lookup = await check_inputs.security_lookup(self.db, to_look_up)
            await asyncio.to_thread(csv_format.verify_symbols, result, lookup, ctx)

        ROWS.labels("valid").inc(result.rows_valid)
        ROWS.labels("invalid").inc(result.rows_invalid)
        if not result.ok:
            async with self.db.transaction() as session:
                await store.finish_upload(
                    session, upload_id, result, status="rejected", positions_created=0, positions_closed=0
                )
                await report_store.stage_rows_and_issues(session, upload_id, result)
                await record_upload_outcome(session, upload_id, mail=mail_enabled(self.ctx.settings))
            UPLOADS.labels("rejected").inc()
            return JobOutcome(
                status="completed",
                result=_summary(upload_id, "rejected", up["portfolio_id"], result, 0, 0),
                result_url=results_url(upload_id),
            )

        await self._progress(upload_id, 70, "committing", "writing positions")
        imported = await import_clean_file(self.plumbing, up, result, correlation_id, self.max_portfolios)
        UPLOADS.labels("completed").inc()
        summary = _summary(
            upload_id,
            "completed",
            imported.portfolio_id,
            result,
            imported.positions_created,
            imported.positions_closed,
        )
        if imported.is_new and up["auto_complete"]:
            summary["onboarding"] = await self._auto_complete(upload_id, imported.portfolio_id, up, correlation_id)
        return JobOutcome(status="completed", result=summary, result_url=results_url(upload_id))

    async def _auto_complete(
        self, upload_id: UUID, portfolio_id: UUID, up: dict[str, Any], correlation_id: str | None
    ) -> dict[str, Any]:
        """auto_complete: finish onboarding at once when validation has no blocking issue."""
        try:
            started = await self.onboarding.auto_complete(portfolio_id, up["user_id"], correlation_id)
        except Exception:
            log.exception("auto-complete of portfolio %s failed", portfolio_id)
            started = {"started": False, "reason": "onboarding could not be started; call complete"}
        async with self.db.transaction() as session:
            await store.merge_outcome(session, upload_id, "onboarding", started)
        return started

    async def purge_loop(self, interval: float = 3600.0) -> None:
        """Background: drop raw files and staged rows 7 days after an upload finished."""
        while True:
            try:
                async with self.db.transaction() as session:
                    purged = await store.purge_expired(session)
                if purged:
                    log.info("purged the content of %d finished uploads", purged)
            except Exception as exc:
                log.warning("upload purge failed: %s", exc)
            await asyncio.sleep(interval)


def _summary(
    upload_id: UUID,
    status: str,
    portfolio_id: UUID | None,
    result: csv_format.CheckResult,
    created: int,
    closed: int,
) -> dict[str, Any]:
    """The job result of a processed upload."""
    return {
        "upload_id": str(upload_id),
        "status": status,
        "portfolio_id": None if portfolio_id is None else str(portfolio_id),
        **result.summary(),
        "positions_created": created,
        "positions_closed": closed,
    }


def _finished_outcome(up: dict[str, Any]) -> JobOutcome:
    """The job result of an upload found already finished (the job was resumed after a restart)."""
    if up["status"] == "failed":
        raise JobFailed(
            up["error_message"] or "upload failed",
            code=up["error_code"] or "INTERNAL_ERROR",
            retryable=bool(up["retryable"]),
        )
    return JobOutcome(
        status="completed",
        result={
            "upload_id": str(up["id"]),
            "status": up["status"],
            "portfolio_id": None if up["portfolio_id"] is None else str(up["portfolio_id"]),
            "positions_created": up["positions_created"] or 0,
            "positions_closed": up["positions_closed"] or 0,
        },
        result_url=results_url(up["id"]),
    )
