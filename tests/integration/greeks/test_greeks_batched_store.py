"""The one-batch write of the greeks step (bulk_store) stores exactly what the portfolio-by-portfolio
write stores: books A (mixed: ok, missing_inputs, expired), B (no options) and C (options only), with
a row of a position no longer held left from an earlier run in A and C; and a bad portfolio fails alone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from greeks_harness import PA, PB, PC, T0, Harness

from common.events import PricesUpdated
from greeks import bulk_store, repository

RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "greeks-batched-store-run")
GONE = {PA: uuid.uuid5(PA, "gone"), PC: uuid.uuid5(PC, "gone")}


async def _leave_rows_of_positions_no_longer_held(h: Harness) -> None:
    async with h.db.transaction() as s:
        await s.execute(sa.text("DELETE FROM greeks.position_greek"))
        for pid, position in GONE.items():
            await s.execute(
                sa.text(
                    "INSERT INTO greeks.position_greek (position_id, calculation_date, portfolio_id, symbol, "
                    "underlying_symbol, status, engine_version) VALUES (:id, :d, :p, 'OLD', 'OLD', 'error', 'old')"
                ),
                {"id": position, "d": T0, "p": pid},
            )


async def _run(h: Harness) -> dict[uuid.UUID, tuple[Any, ...]]:
    """One prices.updated for A, B, C with a fixed run id; the announced outcome per portfolio."""
    h.received.clear()
    await h.bus.publish(PricesUpdated(as_of=T0, run_id=RUN, portfolio_ids=[PA, PB, PC]))
    await h.bus.drain()
    return {
        e.portfolio_id: (e.ok, e.failed, e.step.status, e.step.records_processed, e.step.error and e.step.error.code)
        for e in h.received
        if e.step is not None
    }


async def _stored(h: Harness) -> list[dict[str, Any]]:
    rows = await h.rows("SELECT * FROM greeks.position_greek ORDER BY position_id, calculation_date")
    return [{k: v for k, v in r.items() if k != "created_at"} for r in rows]


async def test_one_batch_write_stores_what_the_per_portfolio_write_stores(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    await _leave_rows_of_positions_no_longer_held(harness)
    batched_events = await _run(harness)
    batched = await _stored(harness)

    async def unavailable(*args: Any, **kw: Any) -> None:
        raise RuntimeError("batch write unavailable")

    await _leave_rows_of_positions_no_longer_held(harness)
    monkeypatch.setattr(bulk_store, "replace_many", unavailable)  # → portfolio by portfolio
    per_portfolio_events = await _run(harness)
    assert await _stored(harness) == batched
    assert per_portfolio_events == batched_events
    assert {r["portfolio_id"] for r in batched} == {PA, PC}  # B holds no options
    assert not {r["position_id"] for r in batched} & set(GONE.values())
    assert {r["status"] for r in batched} == {"ok", "missing_inputs", "expired"}


async def test_a_portfolio_whose_rows_cannot_be_written_fails_alone(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    await _leave_rows_of_positions_no_longer_held(harness)
    await _run(harness)
    reference = [r for r in await _stored(harness) if r["portfolio_id"] != PC]

    # C's rows break the statement (as a row violating a constraint would): the batch write fails,
    # every portfolio is written again on its own, and only C fails; its old rows stay untouched.
    original = repository.replace_position_greeks

    async def fragile(session: Any, *, portfolio_id: uuid.UUID, calculation_date: Any, rows: Any) -> None:
        if portfolio_id == PC:
            raise ValueError("row of C rejected")
        await original(session, portfolio_id=portfolio_id, calculation_date=calculation_date, rows=rows)

    async def fragile_many(session: Any, *, portfolio_ids: Any, calculation_date: Any, rows: Any) -> None:
        if PC in portfolio_ids:
            raise ValueError("row of C rejected")

    await _leave_rows_of_positions_no_longer_held(harness)
    monkeypatch.setattr(repository, "replace_position_greeks", fragile)
    monkeypatch.setattr(bulk_store, "replace_many", fragile_many)
    events = await _run(harness)
    assert events[PC][2:] == ("failed", 0, "ValueError")
    assert events[PA][2] == "completed" and events[PB][2] == "completed"
    stored = await _stored(harness)
    assert [r for r in stored if r["portfolio_id"] != PC] == reference
    assert [r["position_id"] for r in stored if r["portfolio_id"] == PC] == [GONE[PC]]
