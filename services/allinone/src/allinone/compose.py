"""All-in-one composition: every service in one process on one in-process bus and one database.

The gateway dispatches `/api/v1/*` to the owning service's ASGI app directly (no HTTP hop); the
services' background work (outbox relays, job runners, scheduler) starts with `start()`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from dataclasses import dataclass, field
from typing import Any

from common.bus import Bus, InProcessBus
from common.db import Database
from common.migrations import upgrade_all
from common.serve import service_settings
from common.service import Service

log = logging.getLogger(__name__)

ENGINES = ("ingest", "marketdata", "greeks", "factors", "stress")


def build_service(name: str, db: Database, bus: Bus, **overrides: Any) -> Service:
    """Create one service through its `main.create_service`."""
    module = __import__(f"{name}.main", fromlist=["create_service"])
    settings = service_settings(name, **overrides)
    service: Service = module.create_service(settings, db, bus)
    return service


@dataclass
class AllInOne:
    """The composed process: gateway app + engine services sharing one db and bus."""

    database_url: str
    db: Database
    bus: InProcessBus
    gateway: Service
    engines: dict[str, Service] = field(default_factory=dict)

    @property
    def app(self) -> Any:
        return self.gateway.app

    @property
    def services(self) -> list[Service]:
        return [*self.engines.values(), self.gateway]

    async def start(self) -> None:
        """Start every service, then let the bus deliver."""
        for svc in self.services:
            await svc.start()
        await self.bus.start()

    async def stop(self) -> None:
        """Stop services, the bus and the database."""
        for svc in reversed(self.services):
            await svc.stop()
        await self.bus.close()
        await self.db.close()


def build_allinone(database_url: str, **overrides: Any) -> AllInOne:
    """Compose all services in one process against `database_url`."""
    from gateway.main import create_service as create_gateway

    pool_size = int(overrides.pop("db_pool_size", 10))
    common_overrides = {"database_url": database_url, "mode": "allinone", **overrides}
    gateway_settings = service_settings("gateway", **common_overrides)
    db = Database(
        database_url,
        pool_size=pool_size,
        application_name="sigmasight",
        parallel_workers_per_gather=gateway_settings.db_parallel_workers,
    )
    bus = InProcessBus()
    engines = {name: build_service(name, db, bus, **common_overrides) for name in ENGINES}
    gateway = create_gateway(gateway_settings, db, bus, upstreams={n: s.app for n, s in engines.items()})
    return AllInOne(database_url, db, bus, gateway, engines)


async def migrate(database_url: str) -> None:
    """Run every service's migrations (Alembic runs its own loop, so use a thread)."""
    await asyncio.to_thread(upgrade_all, database_url)


async def seed_all(db: Database, database_url: str, **overrides: Any) -> dict[str, Any]:
    """Run each service's idempotent seed in dependency order; returns what seeds report."""
    results: dict[str, Any] = {}
    for name in ("gateway", "marketdata", "factors", "ingest", "greeks", "stress"):
        if importlib.util.find_spec(f"{name}.seed") is None:
            continue  # this service has no seed data
        module = importlib.import_module(f"{name}.seed")
        settings = service_settings(name, database_url=database_url, **overrides)
        results[name] = await module.seed(db, settings)
    return results
