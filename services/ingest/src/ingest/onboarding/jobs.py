"""The two onboarding jobs (`onboarding.complete`, `onboarding.retry`): their types, result URLs,
and the ledger rows both create and read back. Jobs are scoped to the portfolio.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.jobs import JobFailed
from common.service import Plumbing

COMPLETE_JOB = "onboarding.complete"
RETRY_JOB = "onboarding.retry"


def portfolio_url(portfolio_id: UUID) -> str:
    return f"/api/v1/portfolio?portfolio_id={portfolio_id}"


def preview_url(portfolio_id: UUID) -> str:
    return f"/api/v1/portfolio/onboarding/{portfolio_id}/preview"


async def create_job(
    plumbing: Plumbing,
    session: AsyncSession,
    *,
    job_type: str,
    requested_by: UUID,
    portfolio_id: UUID,
    request: dict[str, Any],
    result_url: str,
    steps: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], bool]:
    """A queued job for the portfolio, or the identical one already queued/running (deduplicated)."""
    return await plumbing.ledger.create(
        session,
        job_type=job_type,
        requested_by=requested_by,
        scope={"portfolio_id": str(portfolio_id)},
        request=request,
        ident=uuid.uuid4(),
        result_url=result_url,
        steps=steps,
    )


async def load_job(db: Database, plumbing: Plumbing, job_id: UUID) -> tuple[dict[str, Any], UUID]:
    """(job row, portfolio id) of a running onboarding job; JOB_NOT_FOUND when it is gone."""
    async with db.session() as session:
        job = await plumbing.ledger.get(session, job_id)
    if job is None:
        raise JobFailed("job not found", code="JOB_NOT_FOUND")
    return job, UUID(job["scope"]["portfolio_id"])
