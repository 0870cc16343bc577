"""Accepting an upload (api.md #24, request path): decide its target, store it and its job.

The upload row and its job are written in one transaction and the job is started only after
commit, so a 202 always names an upload that exists and a job that will run (or be resumed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Principal
from common.errors import Conflict, NotFound, ValidationFailed
from ingest.context import IngestContext
from ingest.tag_rules import lock_user
from ingest.upload import book_writes, clock, store
from ingest.upload.errors import portfolio_limit, upload_in_progress
from ingest.upload.urls import JOB_TYPE, results_url


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


@dataclass(frozen=True)
class _Target:
    owner: UUID
    mode: str
    portfolio_name: str | None  # new portfolios only


async def store_upload(
    ctx: IngestContext, principal: Principal, req: UploadRequest, max_portfolios: int
) -> tuple[dict[str, Any], UUID]:
    """Store the queued upload and its job in one transaction; returns the job row and the upload id."""
    upload_id = uuid.uuid4()
    upload_date = clock.eastern_today()
    try:
        async with ctx.db.transaction() as session:
            if req.portfolio_id is not None:
                target = await _existing_portfolio(session, principal, req.portfolio_id, req.mode)
            else:
                target = await _new_portfolio(session, principal, req.portfolio_name, upload_date, max_portfolios)
            await store.insert_upload(
                session,
                store.NewUpload(
                    id=upload_id,
                    user_id=target.owner,
                    portfolio_id=req.portfolio_id,
                    mode=target.mode,
                    target_portfolio_name=target.portfolio_name,
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
            job, _ = await ctx.plumbing.ledger.create(
                session,
                job_type=JOB_TYPE,
                requested_by=principal.user_id,
                scope=scope,
                request={
                    "file_name": req.file_name,
                    "mode": target.mode,
                    "portfolio_name": target.portfolio_name,
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
            raise upload_in_progress(req.portfolio_id, None) from exc
        raise
    return job, upload_id


async def _existing_portfolio(
    session: AsyncSession, principal: Principal, portfolio_id: UUID, mode: str | None
) -> _Target:
    """Append to / replace in the caller's portfolio (admins: anyone's) unless archived or busy."""
    target = await book_writes.lock_portfolio(session, portfolio_id)
    if target is None or (target["user_id"] != principal.user_id and not principal.is_admin):
        raise NotFound("PORTFOLIO", hint="GET /api/v1/portfolio")
    if target["status"] == "archived":
        raise Conflict(
            "The portfolio is archived; positions cannot be uploaded into it",
            details={"portfolio_id": str(portfolio_id), "status": "archived"},
        )
    running = await store.active_upload_for_portfolio(session, portfolio_id)
    if running is not None:
        raise upload_in_progress(portfolio_id, running)
    return _Target(owner=target["user_id"], mode=mode or "append", portfolio_name=None)


async def _new_portfolio(
    session: AsyncSession, principal: Principal, wanted: str | None, upload_date: date, max_portfolios: int
) -> _Target:
    """A new portfolio for the caller: within the portfolio limit (pending new uploads count) and named."""
    owner = principal.user_id
    # Serialises with other uploads and portfolio creation of this user, so the count stays true.
    await lock_user(session, "portfolios", owner)
    live = await store.live_portfolio_count(session, owner)
    pending = await store.count_pending_new_uploads(session, owner)
    if live + pending >= max_portfolios:
        raise portfolio_limit(max_portfolios, portfolios=live, pending_uploads=pending)
    name = await _portfolio_name(session, owner, wanted, upload_date)
    return _Target(owner=owner, mode="new", portfolio_name=name)


async def _portfolio_name(session: AsyncSession, owner: UUID, wanted: str | None, upload_date: date) -> str:
    """The requested name if free (422 otherwise), else 'Uploaded portfolio <date>' with a free (n)."""
    if wanted is not None:
        if await store.portfolio_name_taken(session, owner, wanted):
            raise ValidationFailed.field(
                "body.portfolio_name",
                "you already have a portfolio with this name (names are case-insensitive)",
                wanted,
            )
        return wanted
    base = f"Uploaded portfolio {upload_date.isoformat()}"
    name, n = base, 1
    while await store.portfolio_name_taken(session, owner, name):
        n += 1
        name = f"{base} ({n})"
    return name
