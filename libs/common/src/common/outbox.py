"""Transactional outbox: events are stored with the results that caused them, published after commit.

A crash between commit and publish loses nothing: the relay republishes unpublished rows at
start-up, after every unit of work and every few seconds; consumers ignore repeated event ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.bundles import Outgoing
from common.bus import Bus
from common.db import Database
from common.events import Event
from common.tables import PlumbingTables

log = logging.getLogger(__name__)


async def add(session: AsyncSession, tables: PlumbingTables, event: Event) -> None:
    """Stage `event` in the outbox inside the caller's transaction (idempotent on event_id)."""
    stmt = (
        pg.insert(tables.outbox)
        .values(
            event_id=event.event_id,
            routing_key=event.routing_key,
            producer=event.producer,
            correlation_id=event.correlation_id,
            body=event.model_dump_json().encode(),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    await session.execute(stmt)


async def add_many(session: AsyncSession, tables: PlumbingTables, events: list[Event]) -> None:
    """Stage `events` in order with one executemany (asyncpg pipelines it: one round trip, where a
    step emitting one event per portfolio paid one per event); same rows and idempotence as `add`."""
    if not events:
        return
    stmt = pg.insert(tables.outbox).on_conflict_do_nothing(index_elements=["event_id"])
    rows = [
        {
            "event_id": e.event_id,
            "routing_key": e.routing_key,
            "producer": e.producer,
            "correlation_id": e.correlation_id,
            "body": e.model_dump_json().encode(),
        }
        for e in events
    ]
    await session.execute(stmt, rows)


class OutboxRelay:
    """Publishes a schema's unpublished outbox rows in insertion order."""

    def __init__(self, db: Database, bus: Bus, tables: PlumbingTables, *, batch: int = 500) -> None:
        self.db = db
        self.bus = bus
        self.tables = tables
        self.batch = batch
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        """Publish everything pending; returns how many events went out."""
        sent = 0
        async with self._lock:
            while True:
                n = await self._flush_batch()
                sent += n
                if n < self.batch:
                    return sent

    async def _flush_batch(self) -> int:
        outbox = self.tables.outbox
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(
                        outbox.c.id,
                        outbox.c.routing_key,
                        outbox.c.body,
                        outbox.c.event_id,
                        outbox.c.producer,
                        outbox.c.correlation_id,
                    )
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            # Grouped by routing key (in insertion order within each key) and published concurrently:
            # RabbitMQ carries each group in bundles (common.bundles) and confirms them as a pipeline.
            # Any failure rolls the whole batch back unmarked, so it is re-published later
            # (consumers drop duplicates by event id).
            groups: dict[str, list[Outgoing]] = {}
            for row in rows:
                groups.setdefault(row.routing_key, []).append(
                    Outgoing(bytes(row.body), str(row.event_id), row.producer, row.correlation_id)
                )
            await asyncio.gather(*(self.bus.publish_many(key, items) for key, items in groups.items()))
            if rows:
                await session.execute(
                    sa.update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(published_at=sa.func.now())
                )
        return len(rows)

    def start(self, interval: float = 2.0) -> None:
        """Flush periodically in the background (covers crashes and broker outages)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(interval))

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.flush()
            except Exception as exc:
                log.warning("outbox flush for %s failed: %s", self.tables.schema, exc)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the background loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
