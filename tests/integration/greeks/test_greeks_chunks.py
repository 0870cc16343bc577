"""The greeks step committed chunk by chunk (greeks.chunks): the same rows and events as one unit of
work, each chunk applied exactly once, and a crash between chunks loses and repeats nothing."""

from __future__ import annotations

import uuid

import pytest
from greeks_harness import PA, PB, PC, T0, Harness

from common.errors import TransientError
from common.events import PricesUpdated
from greeks import chunks
from greeks.chunks import chunk_event_id, scope_chunks
from greeks.service import GreeksService

pytestmark = pytest.mark.integration

SCOPE = [PA, PB, PC]


def prices_updated() -> PricesUpdated:
    return PricesUpdated(as_of=T0, run_id=uuid.uuid4(), portfolio_ids=SCOPE, correlation_id="req_chunks")


async def greek_rows(h: Harness) -> list[tuple]:
    rows = await h.rows(
        "SELECT portfolio_id, symbol, status, delta, gamma, theta, vega, rho, dollar_delta, implied_volatility "
        "FROM greeks.position_greek ORDER BY portfolio_id, symbol"
    )
    return [tuple(r.values()) for r in rows]


async def claims(h: Harness) -> set[uuid.UUID]:
    return {r["event_id"] for r in await h.rows("SELECT event_id FROM greeks.processed_event")}


def test_a_scope_splits_in_order_with_stable_claim_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    evt = prices_updated()
    assert [(c.event_id, ids) for c, ids in scope_chunks(evt)] == [(evt.event_id, SCOPE)]  # one chunk's worth

    monkeypatch.setattr(chunks, "CHUNK_PORTFOLIOS", 2)
    parts = list(scope_chunks(evt))
    assert [ids for _, ids in parts] == [[PA, PB], [PC]]
    assert [c.event_id for c, _ in parts] == [chunk_event_id(evt.event_id, i, 2) for i in range(2)]
    assert [c.event_id for c, _ in scope_chunks(evt)] == [c.event_id for c, _ in parts]  # a redelivery: same keys
    assert all(c.run_id == evt.run_id and c.portfolio_ids == SCOPE for c, _ in parts)

    all_active = PricesUpdated(as_of=T0, portfolio_ids=None)
    assert [(c.event_id, ids) for c, ids in scope_chunks(all_active)] == [(all_active.event_id, None)]


async def test_chunked_step_stores_and_announces_what_one_unit_of_work_does(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = prices_updated()
    await harness.bus.publish(whole)
    await harness.bus.drain()
    expected_rows = await greek_rows(harness)
    expected_events = {e.portfolio_id: (e.ok, e.failed, e.step.status) for e in harness.received}

    monkeypatch.setattr(chunks, "CHUNK_PORTFOLIOS", 1)
    harness.received.clear()
    chunked = prices_updated()
    await harness.bus.publish(chunked)
    await harness.bus.drain()

    assert await greek_rows(harness) == expected_rows
    assert {e.portfolio_id: (e.ok, e.failed, e.step.status) for e in harness.received} == expected_events
    assert [e.portfolio_id for e in harness.received] == SCOPE  # one event per portfolio, in scope order
    assert {chunk_event_id(chunked.event_id, i, 3) for i in range(3)} <= await claims(harness)

    # A repeated delivery finds every chunk claimed: nothing is recomputed or announced again.
    before = await harness.rows("SELECT position_id, created_at FROM greeks.position_greek ORDER BY position_id")
    await harness.bus.publish(chunked)
    await harness.bus.drain()
    assert await harness.rows("SELECT position_id, created_at FROM greeks.position_greek ORDER BY position_id") == (
        before
    )
    assert len(harness.received) == 3


async def test_a_crash_between_chunks_resumes_after_the_committed_ones(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_PORTFOLIOS", 1)
    original = GreeksService.compute_step
    calls: list[uuid.UUID] = []

    async def crash_once_on_the_second_chunk(self, work, *, portfolio_ids, **kw):
        calls.extend(portfolio_ids)
        if portfolio_ids == [PB] and calls.count(PB) == 1:
            raise TransientError("simulated crash after the first chunk committed")
        return await original(self, work, portfolio_ids=portfolio_ids, **kw)

    monkeypatch.setattr(GreeksService, "compute_step", crash_once_on_the_second_chunk)
    evt = prices_updated()
    await harness.bus.publish(evt)
    await harness.bus.drain()

    # The redelivery skipped PA's committed chunk, redid PB's rolled-back one, then did PC's.
    assert calls == [PA, PB, PB, PC]
    assert [e.portfolio_id for e in harness.received] == SCOPE
    assert not harness.bus.dead_letters
    assert await harness.scalar("SELECT count(DISTINCT portfolio_id) FROM greeks.position_greek") == 2  # PB: stocks
