"""Composition of the marketdata service: provider, context, routes, bus handlers, background loops."""

from __future__ import annotations

import functools
import logging
from typing import Any

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from marketdata import repository
from marketdata.api import create_router
from marketdata.api_batch import create_batch_router
from marketdata.batch_handlers import register as register_batch
from marketdata.context import MarketDataContext
from marketdata.handlers import register as register_handlers
from marketdata.models import metadata
from marketdata.providers import MarketDataProvider, build_provider
from marketdata.scheduler import scheduler_loop
from marketdata.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Security master, daily prices and rates, the NYSE trading calendar, market-data providers "
    "(offline fixture, yfinance, CSV import) and the batch runs of the daily cycle."
)


def create_service(
    settings: Settings,
    db: Database,
    bus: Bus,
    *,
    provider: MarketDataProvider | None = None,
    **_: Any,
) -> Service:
    """Build the marketdata service (tests may inject a provider)."""
    plumbing = Plumbing.build("marketdata", db, bus, metadata)
    ctx = MarketDataContext(
        settings=settings, db=db, bus=bus, plumbing=plumbing, provider=provider or build_provider(settings)
    )
    app = create_service_app(
        "marketdata",
        title="SigmaSight marketdata",
        description=DESCRIPTION,
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )
    app.state.ctx = ctx

    app.include_router(jobs_router("marketdata", functools.partial(plumbing.ledger.api_job, db)))
    app.include_router(create_router(ctx))
    app.include_router(create_batch_router(ctx))
    register_handlers(bus, ctx)
    register_batch(bus, ctx)

    async def configure_provider() -> None:
        """Apply the stored rate limit / timeout / retries of the active provider; note v1 limits."""
        if settings.fixture_mode and any(settings.live_keys.values()):
            log.warning(
                "market-data keys are set but v1 has no Polygon/FMP/FRED client; running on the offline fixture "
                "(set MARKETDATA_PROVIDER=yfinance for live prices)"
            )
        limits = await repository.provider_limits(db, ctx.provider.name)
        if limits:
            ctx.provider.throttle.configure(
                rate_per_minute=limits["rate_limit_per_minute"],
                max_retries=limits["max_retries"],
                timeout_seconds=limits["timeout_seconds"],
            )
        log.info("marketdata provider: %s", ctx.provider.name)

    async def close_provider() -> None:
        await ctx.provider.aclose()

    async def run_scheduler() -> None:
        await scheduler_loop(ctx)

    return Service(
        "marketdata",
        app,
        plumbing,
        on_start=[configure_provider],
        on_stop=[close_provider],
        background=[run_scheduler],
    )
