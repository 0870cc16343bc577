"""Composition of the gateway service: local routes, the edge, plumbing and background work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from common.app import create_service_app
from common.bus import Bus
from common.db import Database
from common.jobs import JobLedger, JobRunner
from common.outbox import OutboxRelay
from common.service import Plumbing, Service
from common.tables import PlumbingTables, plumbing_tables
from common.uow import UnitOfWorkFactory
from gateway import repository
from gateway.activity import ActivityWriter
from gateway.api import build_router
from gateway.edge import Edge
from gateway.exchange import CorsPolicy
from gateway.health import HealthChecker
from gateway.idempotency import IdempotencyStore
from gateway.openapi import OpenApiDocument
from gateway.passwords import PasswordHasher
from gateway.ratelimit import SlidingWindowLimiter
from gateway.service import AuthService
from gateway.settings import Settings
from gateway.tokens import TokenVerifier
from gateway.upstream import HttpUpstreams, InProcessUpstreams, Upstreams

log = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 6 * 3600
DESCRIPTION = (
    "Authentication, users, rate limiting, idempotency keys, activity log, routing to the services, "
    "the merged OpenAPI document and aggregated health."
)


class GatewayApp(FastAPI):
    """The gateway's FastAPI app, whose HTTP traffic enters the edge directly.

    FastAPI.__call__ probes its OpenTelemetry configuration on every request (several environment
    reads); the edge is the gateway's whole request path, so HTTP skips that probe. Lifespan and
    other scopes go through FastAPI unchanged.
    """

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            await self.edge(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _NoJobsLedger(JobLedger):
    """The gateway runs no async jobs (no job-id prefix); this ledger only backs the shared plumbing."""

    def __init__(self, tables: PlumbingTables) -> None:
        self.service = "gateway"
        self.prefix = ""
        self.table = tables.job


def _plumbing(db: Database, bus: Bus) -> Plumbing:
    # Plumbing.build would look up a job prefix the gateway does not have (api.md §2.9).
    tables = plumbing_tables(sa.MetaData(), "gateway")
    relay = OutboxRelay(db, bus, tables)
    ledger = _NoJobsLedger(tables)
    return Plumbing(
        name="gateway",
        db=db,
        bus=bus,
        tables=tables,
        relay=relay,
        uow=UnitOfWorkFactory(db, tables, relay, producer="gateway"),
        ledger=ledger,
        runner=JobRunner(db, ledger),
    )


def package_version() -> str:
    """Version of the installed gateway package (the API version reported by /health)."""
    try:
        return version("sigmasight-gateway")
    except PackageNotFoundError:
        return "1.0.0"


async def maintain(db: Database) -> None:
    """Activity partitions (this and next month; drop past 90 days), purge expired keys and tokens."""
    async with db.transaction() as session:
        changes = await repository.ensure_activity_partitions(session)
        keys = await repository.purge_idempotency_keys(session)
        tokens = await repository.purge_refresh_tokens(session)
    for change, name in changes:
        log.info("activity_log partition %s: %s", name, change)
    if keys or tokens:
        log.info("purged %d idempotency keys and %d refresh tokens", keys, tokens)


def create_service(
    settings: Settings,
    db: Database,
    bus: Bus,
    upstreams: Mapping[str, ASGIApp] | None = None,
) -> Service:
    """The gateway. `upstreams` (all-in-one) maps service name → ASGI app called in process;
    without it requests are proxied over HTTP to GATEWAY_<SVC>_URL."""
    plumbing = _plumbing(db, bus)
    secret = settings.resolved_jwt_secret()
    app = create_service_app(
        "gateway",
        title="SigmaSight API gateway",
        description=DESCRIPTION,
        jwt_secret=secret,
        ready_check=plumbing.ready,
        version=package_version(),
    )
    dispatch: Upstreams
    if upstreams is not None:
        dispatch = InProcessUpstreams(upstreams)
    else:
        dispatch = HttpUpstreams(
            settings.upstream_urls(),
            timeout=settings.upstream_timeout_seconds,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            probe_timeout=settings.health_budget_seconds,
        )
    hasher = PasswordHasher(settings.bcrypt_rounds)
    user_limiter = SlidingWindowLimiter(settings.rate_limit_per_minute, settings.rate_limit_window_seconds)
    auth = AuthService(
        db,
        jwt_secret=secret,
        access_ttl_seconds=settings.jwt_access_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_ttl_seconds,
        hasher=hasher,
        login_limiter=SlidingWindowLimiter(settings.login_attempts_per_minute, 60),
        user_limiter=user_limiter,
    )
    health = HealthChecker(
        db,
        bus,
        dispatch,
        version=package_version(),
        data_source=settings.data_source(),
        budget=settings.health_budget_seconds,
    )
    document = OpenApiDocument(app.openapi, dispatch, version=package_version())
    # The interactive docs point at the merged document, not at the gateway's own.
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/docs/oauth2-redirect")
    ]
    app.include_router(build_router(auth, health, document.render))

    activity = ActivityWriter(db, batch=settings.activity_batch_size, interval=settings.activity_flush_seconds)
    edge = Edge(
        local=app.build_middleware_stack(),
        upstreams=dispatch,
        verifier=TokenVerifier(secret, max_entries=settings.token_cache_size),
        limiter=user_limiter,
        cors=CorsPolicy(settings.cors_origin_list()),
        activity=activity,
        idempotency=IdempotencyStore(db),
        forwarded_hops=settings.forwarded_hops,
    )
    # The edge is the whole request path: FastAPI's own stack only serves the local routes.
    app.middleware_stack = edge
    app.__class__ = GatewayApp
    app.edge = edge
    app.state.edge = edge
    app.state.auth = auth
    app.state.openapi_document = document

    async def start_maintenance() -> None:
        try:
            await maintain(db)
        except Exception as exc:
            log.warning("gateway maintenance at start-up failed: %s", exc)
        await hasher.dummy_hash()

    async def maintenance_loop() -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            try:
                await maintain(db)
            except Exception as exc:
                log.warning("gateway maintenance failed: %s", exc)

    async def stop() -> None:
        await activity.flush()
        await dispatch.close()
        hasher.close()

    background: list[Callable[[], Coroutine[Any, Any, None]]] = [activity.run, maintenance_loop]
    if dispatch.kind == "http":
        background.append(document.refresh_forever)
    on_start: list[Callable[[], Awaitable[None]]] = [start_maintenance]
    return Service("gateway", app, plumbing, on_start=on_start, on_stop=[stop], background=background)
