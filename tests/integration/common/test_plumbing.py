"""Outbox, inbox (duplicate deliveries) and job ledger on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from common.bus import InProcessBus
from common.db import Database
from common.events import GreeksComputed, PricesUpdated
from common.jobs import JobOutcome
from common.service import Plumbing

pytestmark = pytest.mark.integration


@pytest.fixture
async def plumbing(scratch_database: str):
    db = Database(scratch_database, pool_size=2)
    bus = InProcessBus()
    metadata = sa.MetaData()
    p = Plumbing.build("greeks", db, bus, metadata)
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("CREATE SCHEMA greeks"))
        await conn.run_sync(metadata.create_all)
    yield p
    await bus.close()
    await db.close()


async def test_duplicate_delivery_changes_nothing_and_emits_once(plumbing: Plumbing) -> None:
    received: list[GreeksComputed] = []

    async def sink(evt: GreeksComputed) -> None:
        received.append(evt)

    plumbing.bus.subscribe("ingest", GreeksComputed, sink)
    await plumbing.bus.start()
    event = PricesUpdated(as_of=date(2026, 11, 24), symbols=["AAPL"])
    applied = 0
    for _ in range(3):
        async with plumbing.uow.for_event("greeks", event) as work:
            if work.duplicate:
                continue
            applied += 1
            work.emit(
                GreeksComputed(as_of=event.as_of, portfolio_id=uuid.uuid4(), event_id=uuid.uuid5(event.event_id, "p"))
            )
    await plumbing.bus.drain()
    assert applied == 1
    assert len(received) == 1
    assert received[0].producer == "greeks"
    async with plumbing.db.session() as s:
        unpublished = (
            await s.execute(sa.text("SELECT count(*) FROM greeks.outbox WHERE published_at IS NULL"))
        ).scalar()
    assert unpublished == 0


async def test_event_committed_but_not_published_is_republished_by_relay(plumbing: Plumbing) -> None:
    received: list[GreeksComputed] = []

    async def sink(evt: GreeksComputed) -> None:
        received.append(evt)

    plumbing.bus.subscribe("ingest", GreeksComputed, sink)
    # Simulate a crash: stage the event in the outbox and commit without flushing.
    from common import outbox

    async with plumbing.db.transaction() as session:
        await outbox.add(
            session,
            plumbing.tables,
            GreeksComputed(as_of=date(2026, 11, 24), portfolio_id=uuid.uuid4(), producer="greeks"),
        )
    await plumbing.bus.start()
    assert await plumbing.relay.flush() == 1
    await plumbing.bus.drain()
    assert len(received) == 1
    assert await plumbing.relay.flush() == 0


async def test_job_ledger_dedupes_running_jobs_and_records_outcome(plumbing: Plumbing) -> None:
    user = uuid.uuid4()
    scope = {"portfolio_id": str(uuid.uuid4()), "as_of_date": "2026-11-24"}
    async with plumbing.db.transaction() as s:
        job, dup = await plumbing.ledger.create(s, job_type="greeks.calculate", requested_by=user, scope=scope)
        again, dup2 = await plumbing.ledger.create(s, job_type="greeks.calculate", requested_by=user, scope=scope)
    assert not dup and dup2 and again["id"] == job["id"]

    async def work(ident: uuid.UUID) -> JobOutcome:
        return JobOutcome(result={"positions": 3}, result_url="/api/v1/risk/greeks")

    plumbing.runner.submit(job["id"], "greeks.calculate", work)
    assert await plumbing.runner.wait(job["id"], 5)
    async with plumbing.db.session() as s:
        row = await plumbing.ledger.get(s, job["id"])
    api = plumbing.ledger.to_api(row)
    assert api["status"] == "completed"
    assert api["job_id"] == f"grk_{job['id']}"
    assert api["result"] == {"positions": 3}


async def test_failed_job_records_code_and_message(plumbing: Plumbing) -> None:
    async with plumbing.db.transaction() as s:
        job, _ = await plumbing.ledger.create(s, job_type="greeks.calculate", requested_by=uuid.uuid4(), scope={})

    async def boom(ident: uuid.UUID) -> JobOutcome:
        raise RuntimeError("disk on fire")

    plumbing.runner.submit(job["id"], "greeks.calculate", boom)
    assert await plumbing.runner.wait(job["id"], 5)
    async with plumbing.db.session() as s:
        api = plumbing.ledger.to_api(await plumbing.ledger.get(s, job["id"]))
    assert api["status"] == "failed"
    assert api["error"]["code"] == "INTERNAL_ERROR"
    assert "disk on fire" in api["error"]["message"]


async def test_batch_unit_of_work_applies_each_event_once(plumbing: Plumbing) -> None:
    events = [PricesUpdated(as_of=date(2026, 11, 24), symbols=[s]) for s in ("A", "B", "C")]
    async with plumbing.uow.for_events("greeks", events[:2]) as work:
        assert [e.symbols for e in work.fresh] == [["A"], ["B"]]
    async with plumbing.uow.for_events("greeks", [events[1], events[2], events[2]]) as work:
        assert [e.symbols for e in work.fresh] == [["C"]]
    async with plumbing.uow.for_events("greeks", events) as work:
        assert work.fresh == [] and work.duplicate


async def test_the_outbox_is_flushed_after_staged_events_and_repeats_only(
    plumbing: Plumbing, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[str] = []
    original = plumbing.relay.flush

    async def counted() -> int:
        flushes.append("flush")
        return await original()

    monkeypatch.setattr(plumbing.relay, "flush", counted)
    await plumbing.bus.start()
    quiet = PricesUpdated(as_of=date(2026, 11, 24))
    async with plumbing.uow.for_event("greeks", quiet):
        pass  # applied, nothing staged: no relay transaction
    assert flushes == []
    async with plumbing.uow.for_events("greeks", [PricesUpdated(as_of=date(2026, 11, 24))]):
        pass
    assert flushes == []
    async with plumbing.uow.for_event("greeks", quiet) as work:
        assert work.duplicate  # a repeat flushes: its first application may have crashed before publishing
    assert flushes == ["flush"]
    async with plumbing.uow.for_event("greeks", PricesUpdated(as_of=date(2026, 11, 24))) as work:
        work.emit(GreeksComputed(as_of=date(2026, 11, 24), portfolio_id=uuid.uuid4()))
    assert flushes == ["flush", "flush"]
    async with plumbing.db.session() as s:
        unpublished = (
            await s.execute(sa.text("SELECT count(*) FROM greeks.outbox WHERE published_at IS NULL"))
        ).scalar()
    assert unpublished == 0
