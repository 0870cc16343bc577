"""Unit of work: one transaction, at most one application of an event, events out after commit.

    async with uow.for_event("greeks", evt) as u:
        if u.duplicate:
            return
        ... u.session ...
        u.emit(GreeksComputed(...))

On success the transaction commits (results, inbox claim and outbox rows together) and the outbox
is flushed. A repeated delivery finds the claim, changes nothing, and still flushes the outbox in
case the first delivery crashed between commit and publish.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common import outbox
from common.db import Database, reraise_transient
from common.events import Event
from common.outbox import OutboxRelay
from common.tables import PlumbingTables


@dataclass
class Work:
    """What a handler sees inside a unit of work."""

    session: AsyncSession
    duplicate: bool = False
    emitted: list[Event] = field(default_factory=list)
    # Batch units of work: the incoming events not applied before (in arrival order).
    fresh: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        """Publish `event` after this transaction commits."""
        self.emitted.append(event)


class UnitOfWorkFactory:
    """Creates units of work for one service schema."""

    def __init__(self, db: Database, tables: PlumbingTables, relay: OutboxRelay, producer: str) -> None:
        self.db = db
        self.tables = tables
        self.relay = relay
        self.producer = producer
        # Called with the emitted events right after a commit (e.g. to drop read caches).
        self.after_commit: list[Callable[[list[Event]], None]] = []

    def _committed(self, work: Work) -> None:
        for callback in self.after_commit:
            callback(work.emitted)

    async def claim(self, session: AsyncSession, consumer: str, event: Event) -> bool:
        """Record that `consumer` applied `event`; False if it already had."""
        stmt = (
            pg.insert(self.tables.processed_event)
            .values(consumer=consumer, event_id=event.event_id, routing_key=event.routing_key)
            .on_conflict_do_nothing()
            .returning(self.tables.processed_event.c.event_id)
        )
        return (await session.execute(stmt)).first() is not None

    @contextlib.asynccontextmanager
    async def for_event(self, consumer: str, event: Event) -> AsyncIterator[Work]:
        """A unit of work applying `event` at most once for `consumer`."""
        try:
            async with self.db.transaction() as session:
                work = Work(session)
                work.duplicate = not await self.claim(session, consumer, event)
                yield work
                await self._stage(session, work)
        except Exception as exc:
            reraise_transient(exc)
            raise
        self._committed(work)
        await self._flush_after(work)

    async def _flush_after(self, work: Work) -> None:
        """Publish after a commit that staged events, and after a repeated delivery (its first
        application may have crashed between commit and publish). A fresh unit that staged nothing
        has nothing of its own to send: skipping the relay's transaction there saves one per batch
        for bookkeeping consumers (marketdata handles ~150 batches a 1,000-portfolio run); rows left
        by an earlier crash are still sent by the periodic relay and at start-up."""
        if work.emitted or work.duplicate:
            await self.relay.flush()

    async def claim_many(self, session: AsyncSession, consumer: str, events: list[Event]) -> list[Event]:
        """Record that `consumer` applied `events`; returns those it had not applied before."""
        if not events:
            return []
        # One statement whatever the batch size: the ids travel as arrays, so the SQL text is the same
        # for every batch (a multi-row VALUES was compiled anew by SQLAlchemy for each batch).
        stmt = sa.text(
            f"INSERT INTO {self.tables.processed_event.fullname} (consumer, event_id, routing_key) "
            "SELECT :consumer, t.event_id, t.routing_key "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS text[])) AS t(event_id, routing_key) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ).columns(event_id=pg.UUID(as_uuid=True))
        params = {
            "consumer": consumer,
            "ids": [str(e.event_id) for e in events],
            "keys": [e.routing_key for e in events],
        }
        claimed = {row[0] for row in (await session.execute(stmt, params)).all()}
        seen: set[object] = set()
        fresh = []
        for event in events:
            if event.event_id in claimed and event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
        return fresh

    @contextlib.asynccontextmanager
    async def for_events(self, consumer: str, events: list[Event]) -> AsyncIterator[Work]:
        """One unit of work applying a batch of events, each at most once for `consumer`
        (`work.fresh` lists those not applied before)."""
        try:
            async with self.db.transaction() as session:
                work = Work(session)
                work.fresh = await self.claim_many(session, consumer, events)
                work.duplicate = not work.fresh
                yield work
                await self._stage(session, work)
        except Exception as exc:
            reraise_transient(exc)
            raise
        self._committed(work)
        await self._flush_after(work)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Work]:
        """A unit of work not tied to an incoming event (API commands, schedulers)."""
        try:
            async with self.db.transaction() as session:
                work = Work(session)
                yield work
                await self._stage(session, work)
        except Exception as exc:
            reraise_transient(exc)
            raise
        self._committed(work)
        if work.emitted:
            await self.relay.flush()

    async def _stage(self, session: AsyncSession, work: Work) -> None:
        staged = [e if e.producer else e.model_copy(update={"producer": self.producer}) for e in work.emitted]
        await outbox.add_many(session, self.tables, staged)
