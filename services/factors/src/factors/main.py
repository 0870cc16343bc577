"""The factors service: the factor registry at this stage (engines arrive with the risk issue)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from factors.api import create_router
from factors.models import metadata
from factors.settings import Settings


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """Build the factors service."""
    plumbing = Plumbing.build("factors", db, bus, metadata)
    app = create_service_app(
        "factors",
        title="SigmaSight factors",
        description="Factor registry, factor exposures and correlations.",
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )

    async def load_job(ident: UUID) -> dict[str, Any] | None:
        async with db.session() as session:
            row = await plumbing.ledger.get(session, ident)
        return plumbing.ledger.to_api(row) if row else None

    app.include_router(jobs_router("factors", load_job))
    app.include_router(create_router(db))
    return Service("factors", app, plumbing)
