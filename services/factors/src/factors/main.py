"""The factors service: factor registry, factor model and exposures, position correlations."""

from __future__ import annotations

import functools
from typing import Any

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from factors import handlers
from factors.api import create_router
from factors.api_correlations import create_correlations_router
from factors.api_factors import create_factor_router
from factors.context import FactorsContext
from factors.models import metadata
from factors.service import FactorPipeline
from factors.settings import Settings


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """Build the factors service: routes, bus subscriptions (consumer "factors"), job loader."""
    plumbing = Plumbing.build("factors", db, bus, metadata)
    app = create_service_app(
        "factors",
        title="SigmaSight factors",
        description=(
            "Factor registry, the daily factor model (matrices, per-underlying regressions), position and "
            "portfolio factor exposures (portfolio.updated valued → factors.computed) and position correlations."
        ),
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )
    ctx = FactorsContext(settings=settings, db=db, bus=bus, plumbing=plumbing)
    pipeline = FactorPipeline(ctx)
    app.state.pipeline = pipeline

    app.include_router(jobs_router("factors", functools.partial(plumbing.ledger.api_job, db)))
    app.include_router(create_router(db))
    app.include_router(create_factor_router(ctx, pipeline))
    app.include_router(create_correlations_router(ctx))
    handlers.register(bus, plumbing, pipeline)
    return Service("factors", app, plumbing)
