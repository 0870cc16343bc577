"""The batched `aggregations` path (valuation_batch) stores exactly what the per-portfolio path stores.

Books: the three demo books plus an empty portfolio and an option-only one whose Greeks exercise
every per-share-delta rule (delta_ps, delta / (q·m) fallback, expired, error, missing); one stock
has no close on T0 (stale), one option none on T0 or P0 (model prices on both days).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from tests.integration.ingest.book_harness import P0, T0, Harness, close_harness, open_harness

from common.events import GreeksComputed
from common.run_cache import RunCache
from ingest import catalog, compute, run_closes, valuation_batch
from ingest import service as ingest_service
from ingest.demo_data import DEMO_BOOKS, HEDGE_FUND

pytestmark = pytest.mark.integration

EMPTY = uuid.uuid5(uuid.NAMESPACE_DNS, "valuation-batch-empty")
OPTIONS = uuid.uuid5(uuid.NAMESPACE_DNS, "valuation-batch-options")
RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "valuation-batch-run")
STALE_STOCK = "AAPL"
MODEL_OPTION = "SPY270917C00460000"

MARKER_CONTRACTS = 997  # only the option-only book holds this many contracts (see the failure test)
_COPIED = (
    "symbol, underlying_symbol, quantity, delta, gamma, theta, vega, rho, dollar_delta, dollar_gamma_1pct, "
    "underlying_price, model_price, delta_ps, status, engine_version"
)
_COPY_GREEKS = f"""
INSERT INTO greeks.position_greek (position_id, calculation_date, portfolio_id, {_COPIED})
SELECT n.id, CAST(:d AS date), n.portfolio_id, {", ".join(f"g.{c}" for c in _COPIED.split(", "))}
FROM greeks.position_greek g JOIN ingest.position n ON n.symbol = g.symbol AND n.portfolio_id = :o
WHERE g.portfolio_id = :hf AND g.calculation_date = :t0
"""
_COPY_OPTIONS = """
INSERT INTO ingest.position (portfolio_id, symbol, instrument_type, position_type, quantity, multiplier,
    underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, status, source)
SELECT :o, symbol, instrument_type, position_type, quantity, multiplier, underlying_symbol, option_type,
       strike_price, expiration_date, entry_price, entry_date, status, source
FROM ingest.position WHERE portfolio_id = :hf AND instrument_type = 'option'
"""


async def _add_books(h: Harness) -> None:
    """An empty and an option-only portfolio (copies of the hedge fund's options and their Greeks)."""
    hf = HEDGE_FUND.portfolio_id
    async with h.db.transaction() as s:
        user = (await s.execute(sa.text("SELECT user_id FROM ingest.portfolio WHERE id = :p"), {"p": hf})).scalar()
        for pid, name in ((EMPTY, "Batch empty"), (OPTIONS, "Batch options")):
            await s.execute(
                sa.text("INSERT INTO ingest.portfolio (id, user_id, name, status) VALUES (:id, :u, :n, 'active')"),
                {"id": pid, "u": user, "n": name},
            )
        await s.execute(sa.text(_COPY_OPTIONS), {"o": OPTIONS, "hf": hf})
        for day in (T0, P0):  # Greeks on P0 too: the previous model price of an option without closes
            await s.execute(sa.text(_COPY_GREEKS), {"o": OPTIONS, "hf": hf, "t0": T0, "d": day})
        rows = await s.execute(
            sa.text("SELECT id FROM ingest.position WHERE portfolio_id = :o ORDER BY symbol"), {"o": OPTIONS}
        )
        ids = [r.id for r in rows]
        greeks = "UPDATE greeks.position_greek SET {} WHERE position_id = :p AND calculation_date = :t"
        await s.execute(sa.text(greeks.format("delta_ps = NULL")), {"p": ids[0], "t": T0})  # delta / (q·m)
        zero = "delta = 0, gamma = 0, theta = 0, vega = 0, rho = 0, status = 'expired'"
        await s.execute(sa.text(greeks.format(zero)), {"p": ids[1], "t": T0})
        null = "delta = NULL, gamma = NULL, theta = NULL, vega = NULL, rho = NULL, delta_ps = NULL, status = 'error'"
        await s.execute(sa.text(greeks.format(null)), {"p": ids[2], "t": T0})
        await s.execute(
            sa.text("DELETE FROM greeks.position_greek WHERE position_id = :p AND calculation_date = :t"),
            {"p": ids[3], "t": T0},
        )
        await s.execute(
            sa.text("UPDATE ingest.position SET quantity = :q * sign(quantity) WHERE id = :p"),
            {"p": ids[4], "q": MARKER_CONTRACTS},
        )
        await s.execute(
            sa.text("DELETE FROM marketdata.daily_price WHERE symbol = :s AND price_date = :t"),
            {"s": STALE_STOCK, "t": T0},
        )
        await s.execute(sa.text("DELETE FROM marketdata.daily_price WHERE symbol = :s"), {"s": MODEL_OPTION})


@pytest.fixture(scope="module")
async def h(pg_admin_url: str) -> AsyncIterator[Harness]:
    harness = await open_harness(pg_admin_url, "vbatch")
    await _add_books(harness)
    yield harness
    await close_harness(harness, pg_admin_url)


PORTFOLIOS = [*(b.portfolio_id for b in DEMO_BOOKS), EMPTY, OPTIONS]


async def _stored(h: Harness) -> dict[str, Any]:
    """Everything the step writes, without its wall-clock stamps."""
    async with h.db.session() as s:
        valuations = (
            await s.execute(
                sa.text(
                    "SELECT position_id, valuation_date, portfolio_id, last_price, underlying_price, price_date, "
                    "price_source, market_value, dollar_exposure, notional, unrealized_pnl, daily_pnl, quantity, "
                    "delta, flags, run_id FROM ingest.position_valuation ORDER BY position_id, valuation_date"
                )
            )
        ).all()
        current = (
            await s.execute(
                sa.text(
                    "SELECT id, last_price, price_date, price_source, underlying_price, market_value, dollar_exposure, "
                    "notional, unrealized_pnl, daily_pnl, valuation_date, valued_at IS NOT NULL FROM ingest.position "
                    "ORDER BY id"
                )
            )
        ).all()
        books = (
            await s.execute(
                sa.text("SELECT id, valuation_date, valued_at IS NOT NULL FROM ingest.portfolio ORDER BY id")
            )
        ).all()
    return {"valuations": [tuple(r) for r in valuations], "current": [tuple(r) for r in current], "books": books}


async def _reset(h: Harness) -> None:
    async with h.db.transaction() as s:
        await s.execute(sa.text("DELETE FROM ingest.position_valuation"))
        await s.execute(
            sa.text(
                "UPDATE ingest.position SET last_price = NULL, price_date = NULL, price_source = NULL, "
                "underlying_price = NULL, market_value = NULL, dollar_exposure = NULL, notional = NULL, "
                "unrealized_pnl = NULL, daily_pnl = NULL, valuation_date = NULL, valued_at = NULL"
            )
        )
        await s.execute(sa.text("UPDATE ingest.portfolio SET valuation_date = NULL, valued_at = NULL"))


async def _present(h: Harness) -> frozenset[str]:
    return await catalog.ViewCatalog(h.db).present()


async def test_batched_valuation_stores_exactly_what_portfolio_by_portfolio_stores(h: Harness) -> None:
    present = await _present(h)
    per_portfolio: dict[uuid.UUID, ingest_service.ValuationSummary] = {}
    await _reset(h)
    for day in (P0, T0):  # P0 first: T0's current columns then replace P0's (newest date wins)
        async with h.db.transaction() as s:
            for pid in PORTFOLIOS:
                per_portfolio[pid] = await ingest_service.value_portfolio(
                    s, portfolio_id=pid, as_of=day, run_id=RUN, present=present, stale_days=5
                )
    expected = await _stored(h)
    await _reset(h)
    for day in (P0, T0):
        async with h.db.transaction() as s:
            counts = await valuation_batch.value_many(
                s, portfolio_ids=PORTFOLIOS, as_of=day, run_id=RUN, present=present, stale_days=5
            )
    assert await _stored(h) == expected
    # The summaries of the last day agree too (they become the steps' status and records_processed).
    for i, pid in enumerate(PORTFOLIOS):
        summary = per_portfolio[pid]
        assert (
            counts.positions[i],
            counts.unpriced[i],
            counts.stale[i],
            counts.without_delta[i],
            counts.prev_missing[i],
        ) == (summary.positions, summary.unpriced, summary.stale, summary.without_delta, summary.prev_missing)
    # The fixture does reach the interesting branches.
    flags = {f for row in expected["valuations"] for f in row[14]}
    assert {"price_stale", "model_price", "no_delta", "unpriced"} <= flags
    assert counts.positions[PORTFOLIOS.index(EMPTY)] == 0
    assert counts.positions[PORTFOLIOS.index(OPTIONS)] == 8


async def test_a_bad_portfolio_fails_alone_and_the_others_store_the_same_numbers(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = await _present(h)
    await _reset(h)
    async with h.db.transaction() as s:
        for pid in PORTFOLIOS:
            if pid != OPTIONS:
                await ingest_service.value_portfolio(
                    s, portfolio_id=pid, as_of=T0, run_id=RUN, present=present, stale_days=5
                )
    expected = await _stored(h)
    await _reset(h)

    # A compute bug triggered by the option-only book's data: the batch containing it raises, so
    # every portfolio is valued again on its own and only that book fails.
    original = compute.value_positions

    def fragile(inp: compute.ValuationInput) -> compute.ValuationResult:
        if (np.abs(inp.quantity) == MARKER_CONTRACTS * compute.SCALE).any():
            raise ArithmeticError("simulated valuation bug")
        return original(inp)

    monkeypatch.setattr(compute, "value_positions", fragile)
    before = len(h.events)
    events = [GreeksComputed(as_of=T0, portfolio_id=pid, run_id=RUN) for pid in PORTFOLIOS]
    for evt in events:
        await h.bus.publish(evt)
    await h.bus.drain()
    steps = {e.portfolio_id: e.step for e in h.events[before:]}
    assert steps[OPTIONS] is not None and steps[OPTIONS].status == "failed"
    assert steps[OPTIONS].error is not None and steps[OPTIONS].error.code == "VALUATION_FAILED"
    assert all(steps[p] is not None and steps[p].status != "failed" for p in PORTFOLIOS if p != OPTIONS)
    assert await _stored(h) == expected

    # Delivering the same events again changes nothing and announces nothing.
    before = len(h.events)
    for evt in events:
        await h.bus.publish(evt)
    await h.bus.drain()
    assert h.events[before:] == []
    assert await _stored(h) == expected


async def _row_versions(h: Harness) -> dict[str, dict[Any, str]]:
    """The transaction id that wrote each valuation row and each position's current version."""
    async with h.db.session() as s:
        valuations = await s.execute(
            sa.text("SELECT position_id, valuation_date, xmin::text AS x FROM ingest.position_valuation")
        )
        positions = await s.execute(sa.text("SELECT id, xmin::text AS x FROM ingest.position"))
        return {
            "valuations": {(r.position_id, r.valuation_date): r.x for r in valuations},
            "positions": {r.id: r.x for r in positions},
        }


async def _value_batch(h: Harness, run_id: uuid.UUID) -> None:
    present = await _present(h)
    async with h.db.transaction() as s:
        await valuation_batch.value_many(
            s, portfolio_ids=PORTFOLIOS, as_of=T0, run_id=run_id, present=present, stale_days=5
        )


async def test_an_unchanged_rerun_rewrites_no_row_and_a_changed_close_updates_only_its_positions(h: Harness) -> None:
    await _reset(h)
    await _value_batch(h, RUN)
    first, versions = await _stored(h), await _row_versions(h)
    assert first["valuations"] and all(row[15] == RUN for row in first["valuations"])

    # Same date, same inputs, another run: nothing is rewritten (the rows keep the run that produced them).
    await _value_batch(h, uuid.uuid4())
    assert await _stored(h) == first
    assert await _row_versions(h) == versions

    # A corrected close of one stock: exactly the positions in it and the options on it are rewritten.
    symbol = "MSFT"
    async with h.db.transaction() as s:
        await s.execute(
            sa.text("UPDATE marketdata.daily_price SET close = close + 1 WHERE symbol = :s AND price_date = :t"),
            {"s": symbol, "t": T0},
        )
        held = {
            r.id: r.last_price
            for r in await s.execute(
                sa.text("SELECT id, last_price FROM ingest.position WHERE symbol = :s AND status = 'open'"),
                {"s": symbol},
            )
        }
        on_it = set(
            (
                await s.execute(
                    sa.text("SELECT id FROM ingest.position WHERE underlying_symbol = :s AND status = 'open'"),
                    {"s": symbol},
                )
            ).scalars()
        )
    assert held and len(on_it) > len(held)  # the stock and options on it
    rerun = uuid.uuid4()
    try:
        await _value_batch(h, rerun)
    finally:
        async with h.db.transaction() as s:
            await s.execute(
                sa.text("UPDATE marketdata.daily_price SET close = close - 1 WHERE symbol = :s AND price_date = :t"),
                {"s": symbol, "t": T0},
            )
    after = await _row_versions(h)
    changed_valuations = {k[0] for k, x in after["valuations"].items() if versions["valuations"][k] != x}
    changed_positions = {k for k, x in after["positions"].items() if versions["positions"][k] != x}
    assert changed_valuations == on_it == changed_positions
    async with h.db.session() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT p.id, p.last_price, v.last_price AS stored, v.run_id FROM ingest.position p "
                    "JOIN ingest.position_valuation v ON v.position_id = p.id AND v.valuation_date = :t "
                    "WHERE p.symbol = :s AND p.status = 'open'"
                ),
                {"s": symbol, "t": T0},
            )
        ).all()
    assert {r.id: (r.last_price, r.stored, r.run_id) for r in rows} == {
        pid: (price + 1, price + 1, rerun) for pid, price in held.items()
    }


async def test_batches_of_one_run_share_its_closes_and_store_the_same_numbers(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = await _present(h)
    await _reset(h)
    await _value_batch(h, RUN)  # no shared closes: every batch reads its own
    expected = await _stored(h)
    await _reset(h)

    requested: list[set[str]] = []
    original = run_closes.fetch_records

    async def recording(session: Any, sql: str, params: dict[str, Any]) -> Any:
        requested.append({*params["today"], *params["previous"]})
        return await original(session, sql, params)

    monkeypatch.setattr(run_closes, "fetch_records", recording)
    cache: RunCache[run_closes.RunCloses] = RunCache()
    half = len(PORTFOLIOS) // 2
    async with h.db.transaction() as s:
        for batch in (PORTFOLIOS[:half], PORTFOLIOS[half:], PORTFOLIOS):
            await valuation_batch.value_many(
                s, portfolio_ids=batch, as_of=T0, run_id=RUN, present=present, stale_days=5, closes=cache
            )
    assert await _stored(h) == expected
    # The second batch reads only symbols the first did not; the third, all read before, reads none.
    assert len(requested) == 2 and requested[0] and requested[1] and not requested[0] & requested[1]
    known = cache.get(T0, RUN)
    assert known is not None and set(known.today) == requested[0] | requested[1]

    # Another run reads its closes again.
    async with h.db.transaction() as s:
        await valuation_batch.value_many(
            s, portfolio_ids=PORTFOLIOS, as_of=T0, run_id=uuid.uuid4(), present=present, stale_days=5, closes=cache
        )
    assert len(requested) == 3 and requested[2] == requested[0] | requested[1]


async def test_without_the_prices_view_no_position_is_priced_from_a_close(h: Harness) -> None:
    present = (await _present(h)) - {catalog.DAILY_PRICE}
    await _reset(h)
    async with h.db.transaction() as s:
        counts = await valuation_batch.value_many(
            s, portfolio_ids=PORTFOLIOS, as_of=T0, run_id=RUN, present=present, stale_days=5
        )
    sources = {row[6] for row in (await _stored(h))["valuations"]}
    assert counts.positions.sum() > 0 and sources <= {None, "model"}
    assert counts.unpriced.sum() > 0
