"""Retrying data collection (api.md #64): the `onboarding.retry` job recomputes the chosen failed
steps from what marketdata holds now (optionally for some symbols only).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.db import Database
from common.errors import ApiError
from common.jobs import JobOutcome
from common.service import Plumbing
from ingest.models_upload import COLLECTION_STEPS
from ingest.onboarding import market_reads, position_reads, progress_store
from ingest.onboarding.jobs import RETRY_JOB, create_job, load_job, preview_url
from ingest.onboarding.steps import collection_steps, restrict_to_symbols
from ingest.upload import clock
from ingest.upload.errors import MarketDataUnavailable


async def create_retry_job(
    plumbing: Plumbing, portfolio_id: UUID, requested_by: UUID, chosen: list[str], symbols: list[str] | None
) -> tuple[dict[str, Any], bool]:
    """The retry job, with the chosen steps marked running (unless an identical job is still queued)."""
    async with plumbing.uow.begin() as work:
        job, deduplicated = await create_job(
            plumbing,
            work.session,
            job_type=RETRY_JOB,
            requested_by=requested_by,
            portfolio_id=portfolio_id,
            request={"steps": chosen, "symbols": symbols},
            result_url=preview_url(portfolio_id),
        )
        if not deduplicated:
            await progress_store.mark_steps_running(work.session, portfolio_id, chosen)
    return job, deduplicated


async def recheck_steps(db: Database, plumbing: Plumbing, job_id: UUID) -> JobOutcome:
    """The onboarding.retry job: recompute the chosen steps from what marketdata holds now."""
    job, portfolio_id = await load_job(db, plumbing, job_id)
    request = job.get("request") or {}
    chosen: list[str] = request.get("steps") or list(COLLECTION_STEPS)
    symbols = {s.strip().upper() for s in request.get("symbols") or [] if s.strip()}
    previous = {r["step"]: r for r in await progress_store.steps(db, portfolio_id)}
    try:
        pool = await db.pool()
        async with pool.acquire() as conn:
            holdings = [position_reads.to_holding(r) for r in await position_reads.holdings(conn, portfolio_id)]
            market = await market_reads.market_data(conn, holdings, clock.eastern_today())
    except MarketDataUnavailable as exc:
        async with db.transaction() as session:
            for step in chosen:
                await progress_store.set_step(
                    session, portfolio_id, step, "failed", last_error="market data unavailable"
                )
        raise ApiError("market data is unavailable", code="SERVICE_UNAVAILABLE", status=503, retryable=True) from exc
    states = collection_steps(holdings, market, only=chosen)
    if symbols:
        states = [restrict_to_symbols(s, previous.get(s.step), symbols) for s in states]
    async with db.transaction() as session:
        await progress_store.write_steps(session, portfolio_id, states)
    result = {
        "portfolio_id": str(portfolio_id),
        "steps": [{"step": s.step, "status": s.status, "last_error": s.last_error} for s in states],
    }
    return JobOutcome("completed", result, preview_url(portfolio_id))
