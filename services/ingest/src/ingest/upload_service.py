"""CSV upload orchestration (api.md #24, csv-format.md): accept, check, verify, import.

`accept()` stores the upload and its job in one transaction (answered 202 after commit);
`process()` is the `upload.process` job: parsing → verifying_symbols → committing. Any row error
rejects the file and writes nothing but the report; a clean file is imported in one transaction
(portfolio, positions, tags, links, closed positions for `replace`, onboarding steps, outbox
event). A restart resumes a queued/processing upload from its stored content.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common import metrics
from common.auth import Principal
from common.db import is_transient_db_error
from common.errors import ApiError, Conflict, NotFound, ValidationFailed
from common.events import PortfolioUpdated
from common.jobs import JobFailed, JobOutcome
from ingest import csv_format as fmt
from ingest import onboarding_repository as onb_repo
from ingest import upload_repository as repo
from ingest.context import IngestContext
from ingest.errors import TagLimitReached
from ingest.onboarding_compute import Holding, collection_steps
from ingest.repository import ensure_tags
from ingest.tag_rules import ParsedTag, lock_user

log = logging.getLogger(__name__)

EASTERN = ZoneInfo("America/New_York")
JOB_TYPE = "upload.process"
TERMINAL = ("completed", "rejected", "failed")
MAX_PORTFOLIOS = 10

ROWS = metrics.counter("ingest", "upload_rows", "CSV upload rows checked, by result", ("result",))
UPLOADS = metrics.counter("ingest", "uploads", "CSV uploads finished, by status", ("status",))


def eastern_today() -> date:
    """The US/Eastern calendar date now: the upload date of a file received now (csv-format.md §3.4)."""
    return datetime.now(EASTERN).date()


def status_url(upload_id: UUID) -> str:
    return f"/api/v1/portfolio/upload/{upload_id}/status"


def results_url(upload_id: UUID) -> str:
    return f"/api/v1/portfolio/upload/{upload_id}/results"


@dataclass(frozen=True)
class UploadRequest:
    """The validated multipart form of #24."""

    file_name: str
    content: bytes
    portfolio_id: UUID | None
    portfolio_name: str | None
    mode: str | None
    cash_balance: Decimal | None
    auto_complete: bool
    correlation_id: str | None = None


class UploadService:
    """Accepts and processes uploads for one ingest service instance."""

    def __init__(self, ctx: IngestContext, onboarding: Any) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.plumbing = ctx.plumbing
        self.onboarding = onboarding
        self.max_portfolios = int(getattr(ctx.settings, "max_portfolios_per_user", MAX_PORTFOLIOS))

    # ------------------------------------------------------------------ accept (request path)

    async def accept(self, principal: Principal, req: UploadRequest) -> tuple[dict[str, Any], UUID]:
        """Store the queued upload and its job (one transaction), then start processing."""
        upload_id = uuid.uuid4()
        upload_date = eastern_today()
        try:
            async with self.db.transaction() as session:
                if req.portfolio_id is not None:
                    target = await repo.lock_portfolio(session, req.portfolio_id)
                    if target is None or (target["user_id"] != principal.user_id and not principal.is_admin):
                        raise NotFound("PORTFOLIO", hint="GET /api/v1/portfolio")
                    if target["status"] == "archived":
                        raise Conflict(
                            "The portfolio is archived; positions cannot be uploaded into it",
                            details={"portfolio_id": str(req.portfolio_id), "status": "archived"},
                        )
                    running = await repo.active_upload_for_portfolio(session, req.portfolio_id)
                    if running is not None:
                        raise _in_progress(req.portfolio_id, running)
                    owner: UUID = target["user_id"]
                    mode = req.mode or "append"
                    name = None
                else:
                    owner = principal.user_id
                    mode = "new"
                    await lock_user(session, "portfolios", owner)
                    live = await repo.live_portfolio_count(session, owner)
                    pending = await repo.count_pending_new_uploads(session, owner)
                    if live + pending >= self.max_portfolios:
                        raise Conflict(
                            f"A user may own at most {self.max_portfolios} portfolios",
                            code="PORTFOLIO_LIMIT",
                            details={"limit": self.max_portfolios, "portfolios": live, "pending_uploads": pending},
                        )
                    name = await self._portfolio_name(session, owner, req.portfolio_name, upload_date)
                await repo.insert_upload(
                    session,
                    repo.NewUpload(
                        id=upload_id,
                        user_id=owner,
                        portfolio_id=req.portfolio_id,
                        mode=mode,
                        target_portfolio_name=name,
                        file_name=req.file_name,
                        content=req.content,
                        upload_date=upload_date,
                        cash_balance=req.cash_balance,
                        auto_complete=req.auto_complete,
                    ),
                )
                scope: dict[str, Any] = {"upload_id": str(upload_id)}
                if req.portfolio_id is not None:
                    scope["portfolio_id"] = str(req.portfolio_id)
                job, _ = await self.plumbing.ledger.create(
                    session,
                    job_type=JOB_TYPE,
                    requested_by=principal.user_id,
                    scope=scope,
                    request={
                        "file_name": req.file_name,
                        "mode": mode,
                        "portfolio_name": name,
                        "cash_balance": None if req.cash_balance is None else str(req.cash_balance),
                        "auto_complete": req.auto_complete,
                        "correlation_id": req.correlation_id,
                    },
                    ident=upload_id,
                    result_url=results_url(upload_id),
                    dedupe=False,
                )
        except IntegrityError as exc:
            # Lost the race for the one-running-upload-per-portfolio index.
            if "upload_portfolio_active_uq" in str(exc) and req.portfolio_id is not None:
                raise _in_progress(req.portfolio_id, None) from exc
            raise
        self.plumbing.runner.submit(upload_id, JOB_TYPE, self.process)
        return job, upload_id

    async def _portfolio_name(self, session: Any, owner: UUID, wanted: str | None, upload_date: date) -> str:
        if wanted is not None:
            if await repo.portfolio_name_taken(session, owner, wanted):
                raise ValidationFailed.field(
                    "body.portfolio_name",
                    "you already have a portfolio with this name (names are case-insensitive)",
                    wanted,
                )
            return wanted
        base = f"Uploaded portfolio {upload_date.isoformat()}"
        name, n = base, 1
        while await repo.portfolio_name_taken(session, owner, name):
            n += 1
            name = f"{base} ({n})"
        return name

    # ------------------------------------------------------------------ the upload.process job

    def resumer(self, job: dict[str, Any]) -> Any:
        """JobRunner resumer: reprocess an interrupted upload from its stored content."""
        return self.process

    async def process(self, upload_id: UUID) -> JobOutcome:
        """Run the upload job; record `failed` (with retryable) on the upload for any system error."""
        try:
            return await self._process(upload_id)
        except repo.MarketDataUnavailable as exc:
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
                await repo.fail_upload(session, upload_id, code, message, retryable)
            UPLOADS.labels("failed").inc()
        except Exception:
            log.exception("could not record the failure of upload %s", upload_id)

    async def _progress(self, upload_id: UUID, pct: int, phase: str, message: str, **values: Any) -> None:
        async with self.db.transaction() as session:
            await repo.update_upload(session, upload_id, phase=phase, **values)
            await self.plumbing.ledger.progress(session, upload_id, pct, phase, message)

    async def _process(self, upload_id: UUID) -> JobOutcome:
        async with self.db.transaction() as session:
            up = await repo.load_for_processing(session, upload_id)
            if up is None:
                raise JobFailed("upload not found", code="UPLOAD_NOT_FOUND")
            if up["status"] in TERMINAL:  # resumed after it had finished
                return self._outcome(up)
            await repo.update_upload(
                session,
                upload_id,
                status="processing",
                phase="parsing",
                started_at=sa.text("now()"),
                rows_processed=0,
            )
            await self.plumbing.ledger.progress(session, upload_id, 5, "parsing", "checking rows")
            job = await self.plumbing.ledger.get(session, upload_id)
            existing = await repo.existing_tags(session, up["user_id"])
            open_keys = (
                await repo.open_position_keys(session, up["portfolio_id"]) if up["mode"] == "append" else frozenset()
            )
        correlation_id = ((job or {}).get("request") or {}).get("correlation_id")
        ctx = fmt.CheckContext(
            upload_date=up["upload_date"],
            mode=up["mode"],
            existing_tags=fmt.CheckContext.tags_by_key(existing),
            open_positions=open_keys,
            open_position_count=len(open_keys),
        )
        content: bytes = bytes(up["content"] or b"")
        result = await asyncio.to_thread(fmt.check_file, content, ctx)

        if not result.stopped:
            await self._progress(
                upload_id,
                40,
                "verifying_symbols",
                "verifying symbols against the security master",
                rows_total=result.rows_total,
                rows_processed=result.rows_total,
            )
            lookup = await repo.security_lookup(self.db, fmt.symbols_to_look_up(result))
            await asyncio.to_thread(fmt.verify_symbols, result, lookup, ctx)

        ROWS.labels("valid").inc(result.rows_valid)
        ROWS.labels("invalid").inc(result.rows_invalid)
        if not result.ok:
            async with self.db.transaction() as session:
                await repo.finish_upload(
                    session, upload_id, result, status="rejected", positions_created=0, positions_closed=0
                )
                await repo.stage_rows_and_issues(session, upload_id, result)
            UPLOADS.labels("rejected").inc()
            return JobOutcome(
                status="completed",
                result=self._summary(upload_id, "rejected", up["portfolio_id"], result, 0, 0),
                result_url=results_url(upload_id),
            )

        await self._progress(upload_id, 70, "committing", "writing positions")
        portfolio_id, created, closed, is_new = await self._commit(up, result, correlation_id)
        UPLOADS.labels("completed").inc()
        summary = self._summary(upload_id, "completed", portfolio_id, result, created, closed)
        if is_new and up["auto_complete"]:
            summary["onboarding"] = await self._auto_complete(upload_id, portfolio_id, up, correlation_id)
        return JobOutcome(status="completed", result=summary, result_url=results_url(upload_id))

    async def _commit(
        self, up: dict[str, Any], result: fmt.CheckResult, correlation_id: str | None
    ) -> tuple[UUID, int, int, bool]:
        """Import a clean file in one transaction; returns (portfolio_id, created, closed, is_new)."""
        upload_id: UUID = up["id"]
        owner: UUID = up["user_id"]
        rows = [r for r in result.rows if r.is_valid]
        wanted = list({t.name.lower(): ParsedTag(t.name, t.tag_type) for r in rows for t in r.tags}.values())
        today = eastern_today()
        try:
            async with self.plumbing.uow.begin() as work:
                session = work.session
                is_new = up["mode"] == "new"
                # Lock order everywhere: portfolios, then tags (no deadlock with other writers).
                if is_new:
                    await lock_user(session, "portfolios", owner)
                await lock_user(session, "tags", owner)
                if is_new:
                    if await repo.live_portfolio_count(session, owner) >= self.max_portfolios:
                        raise Conflict(
                            f"A user may own at most {self.max_portfolios} portfolios",
                            code="PORTFOLIO_LIMIT",
                            details={"limit": self.max_portfolios},
                        )
                    portfolio_id, _ = await repo.create_portfolio(
                        session, user_id=owner, name=up["target_portfolio_name"], cash_balance=up["cash_balance"]
                    )
                    status = "onboarding"
                else:
                    portfolio_id = up["portfolio_id"]
                    target = await repo.lock_portfolio(session, portfolio_id)
                    if target is None:
                        raise NotFound("PORTFOLIO")
                    if target["status"] == "archived":
                        raise Conflict("The portfolio was archived during the upload", details={"status": "archived"})
                    status = target["status"]
                    if up["cash_balance"] is not None:
                        await repo.set_cash(session, portfolio_id, up["cash_balance"])
                tags = await ensure_tags(session, owner, wanted) if wanted else {}
                tag_ids = {key: row.id for key, row in tags.items()}
                closed = (
                    await repo.close_open_positions(session, portfolio_id, up["upload_date"])
                    if up["mode"] == "replace"
                    else 0
                )
                ids = await repo.insert_positions(
                    session, portfolio_id=portfolio_id, upload_id=upload_id, rows=rows, tag_ids=tag_ids
                )
                await repo.stage_rows_and_issues(session, upload_id, result)
                if status == "onboarding":
                    holdings = (
                        [_holding(pid, r) for pid, r in zip(ids, rows, strict=True)]
                        if is_new
                        else await onb_repo.session_holdings(session, portfolio_id)
                    )
                    market = await onb_repo.session_market_data(session, holdings, today)
                    await onb_repo.write_steps(session, portfolio_id, collection_steps(holdings, market))
                    if is_new:
                        for step in ("initial_run", "first_snapshot"):
                            await onb_repo.set_step(session, portfolio_id, step, "pending")
                elif status == "active":
                    symbols = sorted({s for r in rows for s in (r.symbol, r.underlying_symbol) if s})
                    work.emit(
                        PortfolioUpdated(
                            as_of=up["upload_date"],
                            portfolio_id=portfolio_id,
                            change="positions",
                            symbols=symbols,
                            trigger="api",
                            correlation_id=correlation_id,
                        )
                    )
                outcome = {
                    "positions_by_type": result.positions_by_type(),
                    "tags": {
                        "created": [row.name for row in tags.values() if row.created],
                        "reused": [row.name for row in tags.values() if not row.created],
                    },
                    "securities": result.securities.to_api() if result.securities else None,
                }
                await repo.finish_upload(
                    session,
                    upload_id,
                    result,
                    status="completed",
                    portfolio_id=portfolio_id,
                    positions_created=len(ids),
                    positions_closed=closed,
                    outcome=outcome,
                )
        except TagLimitReached as exc:
            raise ApiError(exc.message, code="TAG_LIMIT_REACHED", status=409, retryable=False) from exc
        except IntegrityError as exc:
            if "position_open_uq" in str(exc):
                raise ApiError(
                    "the portfolio gained one of these positions while the file was processed; submit it again",
                    code="INVALID_STATE",
                    status=409,
                    retryable=True,
                ) from exc
            if "portfolio_user_name_uq" in str(exc):
                raise ApiError(
                    f"a portfolio named '{up['target_portfolio_name']}' was created meanwhile; choose another name",
                    code="VALIDATION_ERROR",
                    status=422,
                ) from exc
            raise
        return portfolio_id, len(ids), closed, is_new

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
            await repo.merge_outcome(session, upload_id, "onboarding", started)
        return started

    def _summary(
        self,
        upload_id: UUID,
        status: str,
        portfolio_id: UUID | None,
        result: fmt.CheckResult,
        created: int,
        closed: int,
    ) -> dict[str, Any]:
        return {
            "upload_id": str(upload_id),
            "status": status,
            "portfolio_id": None if portfolio_id is None else str(portfolio_id),
            **result.summary(),
            "positions_created": created,
            "positions_closed": closed,
        }

    def _outcome(self, up: dict[str, Any]) -> JobOutcome:
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

    async def purge_loop(self, interval: float = 3600.0) -> None:
        """Background: drop raw files and staged rows 7 days after an upload finished."""
        while True:
            try:
                async with self.db.transaction() as session:
                    purged = await repo.purge_expired(session)
                if purged:
                    log.info("purged the content of %d finished uploads", purged)
            except Exception as exc:
                log.warning("upload purge failed: %s", exc)
            await asyncio.sleep(interval)


def _holding(position_id: UUID, r: fmt.Row) -> Holding:
    """A just-imported row as onboarding sees it (no read-back of 10,000 positions)."""
    assert r.symbol and r.instrument_type and r.position_type and r.quantity is not None
    assert r.multiplier is not None and r.underlying_symbol and r.entry_price is not None and r.entry_date
    return Holding(
        id=str(position_id),
        symbol=r.symbol,
        instrument_type=r.instrument_type,
        position_type=r.position_type,
        quantity=r.quantity,
        multiplier=r.multiplier,
        underlying_symbol=r.underlying_symbol,
        entry_price=r.entry_price,
        entry_date=r.entry_date,
        option_type=r.option_type,
        strike_price=r.strike_price,
        expiration_date=r.expiration_date,
    )


def _in_progress(portfolio_id: UUID, running: UUID | None) -> Conflict:
    details: dict[str, Any] = {"portfolio_id": str(portfolio_id)}
    if running is not None:
        details["upload_id"] = str(running)
        details["status_url"] = status_url(running)
    return Conflict(
        "Another upload for this portfolio is still queued or processing",
        code="UPLOAD_IN_PROGRESS",
        details=details,
        retryable=True,
    )
