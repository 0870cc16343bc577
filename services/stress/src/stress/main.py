"""Composition of the stress service: app, routes, subscriptions, lifecycle."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from stress import api, handlers
from stress.models import metadata
from stress.repository import TimeSeriesReader
from stress.service import SnapshotService
from stress.settings import Settings
from stress.timeseries import PortfolioTimeSeries

DESCRIPTION = (
    "Daily portfolio snapshots and the exposure / performance time series built from them "
    "(scenarios, risk metrics and reports follow). Money is USD as 2-dp strings; returns and ratios are fractions."
)


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """The stress service on `db` and `bus`."""
    plumbing = Plumbing.build("stress", db, bus, metadata)
    app = create_service_app(
        "stress",
        title="SigmaSight stress",
        description=DESCRIPTION,
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )

    async def load_job(ident: UUID) -> dict[str, Any] | None:
        async with db.session() as session:
            row = await plumbing.ledger.get(session, ident)
        return plumbing.ledger.to_api(row) if row is not None else None

    app.include_router(jobs_router("stress", load_job))
    app.include_router(api.router(PortfolioTimeSeries(TimeSeriesReader(db), settings.default_benchmark)))
    snapshots = SnapshotService(plumbing)
    handlers.register(bus, snapshots)
    app.state.snapshots = snapshots
    return Service("stress", app, plumbing)
