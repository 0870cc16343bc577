"""The greeks service: option Greeks (BSM) for the daily `greeks` step and on-demand calculations."""

from __future__ import annotations

import functools
from typing import Any

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from greeks import handlers
from greeks.api import create_router
from greeks.models import metadata
from greeks.service import GreeksService
from greeks.settings import Settings


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """Build the greeks service: routes, bus subscriptions (consumer "greeks"), job loader."""
    plumbing = Plumbing.build("greeks", db, bus, metadata)
    app = create_service_app(
        "greeks",
        title="SigmaSight greeks",
        description=(
            "Option Greeks with Black-Scholes-Merton and continuous dividend yield: the daily `greeks` step "
            "(prices.updated → greeks.computed), the portfolio Greeks summary and on-demand calculations."
        ),
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )
    service = GreeksService(plumbing, settings)

    app.include_router(jobs_router("greeks", functools.partial(plumbing.ledger.api_job, db)))
    app.include_router(create_router(plumbing, service))
    handlers.register(bus, plumbing, service)
    return Service("greeks", app, plumbing)
