"""The ingest service: portfolios, positions, tags, valuation (`aggregations`), uploads and onboarding."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta
from typing import Any

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.events import SnapshotCreated
from common.formatting import utcnow
from common.service import Plumbing, Service
from ingest import handlers, tags_service
from ingest.api import Provenance, create_portfolio_router
from ingest.api_admin import create_admin_router
from ingest.api_positions import create_positions_router
from ingest.api_tags import create_tags_router
from ingest.api_upload import create_upload_router
from ingest.catalog import ViewCatalog
from ingest.context import SERVICE, IngestContext
from ingest.modeling.api import create_modeling_router
from ingest.modeling.service import ModelingService
from ingest.models import metadata
from ingest.notifications.api import create_notifications_router
from ingest.service import IngestService
from ingest.settings import Settings
from ingest.summary_cache import SummaryCache

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0


def _clearing(cache: SummaryCache) -> Any:
    """A snapshot changes the summary's MTD/YTD, risk and freshness fields: drop cached summaries."""

    async def on_snapshot_created(evt: SnapshotCreated) -> None:
        cache.clear()

    return on_snapshot_created


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """Build the ingest service."""
    plumbing = Plumbing.build(SERVICE, db, bus, metadata)
    ctx = IngestContext(settings=settings, db=db, bus=bus, plumbing=plumbing)
    views = ViewCatalog(db)
    provenance = Provenance(db, views)
    service = IngestService(ctx, views)
    app = create_service_app(
        SERVICE,
        title="SigmaSight ingest",
        description=(
            "Portfolios, positions, tags and strategies, live valuation (the `aggregations` step), CSV upload and "
            "onboarding, demo reset. Money is USD as decimal strings; ratios are fractions."
        ),
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )

    app.include_router(jobs_router(SERVICE, functools.partial(plumbing.ledger.api_job, db)))
    summary_cache = SummaryCache()
    plumbing.uow.after_commit.append(summary_cache.clear)
    bus.subscribe(f"{SERVICE}.cache", SnapshotCreated, _clearing(summary_cache))
    app.include_router(create_portfolio_router(db, views, summary_cache, app.state.fast_paths))
    app.include_router(create_positions_router(db, views, provenance))
    app.include_router(create_tags_router(ctx))
    app.include_router(create_admin_router(ctx, service))
    app.include_router(create_upload_router(ctx))
    modeling = ModelingService(ctx)
    app.include_router(create_modeling_router(modeling))
    app.include_router(create_notifications_router(ctx))
    handlers.register(ctx, service)

    async def purge_tags_forever() -> None:
        """Hard-delete tags soft-deleted more than `tag_retention_days` ago, hourly."""
        while True:
            try:
                async with db.transaction() as session:
                    cutoff = utcnow() - timedelta(days=settings.tag_retention_days)
                    purged = await tags_service.purge_deleted_tags(session, cutoff)
                if purged:
                    log.info("purged %d soft-deleted tag(s)", purged)
            except Exception as exc:
                log.warning("tag purge failed: %s", exc)
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    return Service(
        SERVICE,
        app,
        plumbing,
        on_start=list(ctx.on_start),
        background=[purge_tags_forever, modeling.expire_forever, *ctx.background],
    )
