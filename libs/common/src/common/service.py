"""A running service: its ASGI app plus the plumbing (outbox relay, job runner, background tasks).

`create_service()` in each service's `main.py` returns a `Service`. The all-in-one composer and
`sigmasight serve` both call `start()` / `stop()`, so background work does not depend on ASGI
lifespan events (in all-in-one mode the gateway calls service apps directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from common import health_metrics
from common.bus import Bus
from common.db import Database
from common.jobs import JobLedger, JobRunner
from common.outbox import OutboxRelay
from common.tables import PlumbingTables, plumbing_tables
from common.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass
class Plumbing:
    """Everything a service needs to publish reliably and run jobs."""

    name: str
    db: Database
    bus: Bus
    tables: PlumbingTables
    relay: OutboxRelay
    uow: UnitOfWorkFactory
    ledger: JobLedger
    runner: JobRunner

    @classmethod
    def build(cls, name: str, db: Database, bus: Bus, metadata: sa.MetaData | None = None) -> Plumbing:
        """Plumbing for service `name` whose schema is also `name`."""
        tables = plumbing_tables(metadata if metadata is not None else sa.MetaData(), name)
        relay = OutboxRelay(db, bus, tables)
        ledger = JobLedger(name, tables)
        return cls(
            name=name,
            db=db,
            bus=bus,
            tables=tables,
            relay=relay,
            uow=UnitOfWorkFactory(db, tables, relay, producer=name),
            ledger=ledger,
            runner=JobRunner(db, ledger),
        )

    async def ready(self) -> dict[str, Any]:
        """Readiness checks: database and broker."""
        db_ok = await self.db.ping()
        broker: Any = "in_process" if self.bus.kind == "in_process" else await self.bus.ping()
        return {"database": db_ok, "broker": broker}


@dataclass
class Service:
    """An app plus lifecycle hooks."""

    name: str
    app: FastAPI
    plumbing: Plumbing
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        hooks = getattr(self.app.state, "scrape_hooks", None)
        if hooks is not None:  # apps from create_service_app: readiness and queue gauges on /metrics
            hooks.append(functools.partial(health_metrics.observe, self.plumbing))

    async def start(self) -> None:
        """Flush the outbox, recover jobs, run start hooks and background loops."""
        await self.plumbing.relay.flush()
        self.plumbing.relay.start()
        await self.plumbing.runner.recover()
        self.plumbing.runner.start_heartbeat()
        for hook in self.on_start:
            await hook()
        for loop in self.background:
            self._tasks.append(asyncio.create_task(loop()))
        log.info("service %s started", self.name)

    async def stop(self) -> None:
        """Stop background work."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for hook in self.on_stop:
            with contextlib.suppress(Exception):
                await hook()
        await self.plumbing.runner.shutdown()
        await self.plumbing.relay.stop()
