"""The market_data step on cycle.started, with the offline fixture provider, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pytest
from test_batch_support import ADMIN, AS_OF, Env, close_env, make_env, simulate_pipeline

from common.events import STEP_NAMES, CycleStarted, PricesUpdated
from marketdata.backfill import wait_for_run
from marketdata.batch_service import start_run
from marketdata.providers.base import PriceFetch
from marketdata.providers.fixture import FixtureProvider

pytestmark = pytest.mark.integration


class BrokenProvider(FixtureProvider):
    """The fixture market whose price endpoint is down."""

    async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
        raise ConnectionError("provider unreachable")


async def market_data_run(env: Env, symbols: list[str] | None, *, cascade: bool = False, lookback: int = 5):
    params: dict = {"lookback_days": lookback}
    if symbols is not None:
        params["symbols"] = symbols
    return await start_run(
        env.ctx,
        job_name="market_data",
        trigger="manual",
        requested_by=ADMIN.user_id,
        as_of_date=AS_OF,
        portfolio_ids=None,
        cascade=cascade,
        force=True,
        params=params,
    )


async def test_market_data_step_stores_prices_and_publishes_prices_updated_with_the_scope(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    await env.bus.start()
    run, _, _ = await market_data_run(env, ["AAPL", "SPY"])
    assert await wait_for_run(env.ctx, run["id"], 60) == "completed"
    await env.bus.drain()
    [prices] = env.events(PricesUpdated)
    assert prices.run_id == run["id"] and prices.as_of == AS_OF
    assert prices.symbols == ["AAPL", "SPY"] and prices.symbols_failed == []
    assert sorted(prices.portfolio_ids, key=str) == sorted([p1, p2], key=str)
    assert prices.trigger == "manual" and prices.cascade is False and prices.producer == "marketdata"
    assert prices.step is not None and prices.step.name == "market_data" and prices.step.status == "completed"
    assert prices.step.records_processed and prices.step.records_processed > 0
    close = await env.scalar(
        "SELECT close FROM marketdata.daily_price WHERE symbol = 'AAPL' AND price_date = :d", d=AS_OF
    )
    assert isinstance(close, Decimal) and close > 0
    row = (await env.rows("SELECT * FROM marketdata.batch_job_run WHERE run_id = :r", r=run["id"]))[0]
    assert row["job"] == "market_data" and row["portfolio_id"] is None and row["service"] == "marketdata"
    assert row["status"] == "completed" and row["records_processed"] == prices.step.records_processed
    assert row["details"]["symbols_ok"] == 2
    assert await env.scalar("SELECT status FROM marketdata.job WHERE id = :r", r=run["id"]) == "completed"


async def test_cascading_market_data_run_drives_the_downstream_steps(env: Env) -> None:
    p1 = await env.portfolio()
    simulate_pipeline(env.bus)
    await env.bus.start()
    run, _, _ = await market_data_run(env, ["AAPL"], cascade=True)
    assert run["steps"] == list(STEP_NAMES)
    assert await wait_for_run(env.ctx, run["id"], 60) == "completed"
    [prices] = env.events(PricesUpdated)
    assert prices.cascade is True and prices.portfolio_ids == [p1]


async def test_unknown_symbol_is_reported_without_sinking_the_step(env: Env) -> None:
    await env.bus.start()
    run, _, _ = await market_data_run(env, ["AAPL", "ZZZZQ"])
    assert await wait_for_run(env.ctx, run["id"], 60) == "completed"
    await env.bus.drain()
    [prices] = env.events(PricesUpdated)
    assert prices.symbols == ["AAPL"] and prices.symbols_failed == ["ZZZZQ"]
    assert prices.step.status == "partial"
    row = (
        await env.rows(
            "SELECT status, error_code, details FROM marketdata.batch_job_run WHERE run_id = :r", r=run["id"]
        )
    )[0]
    assert row["status"] == "completed" and row["error_code"] == "SYMBOLS_FAILED"
    assert row["details"]["partial"] is True and row["details"]["symbols_failed"] == ["ZZZZQ"]


async def test_provider_failure_still_publishes_prices_updated_with_a_failed_step(batch_db_url: str) -> None:
    env = await make_env(batch_db_url, provider=BrokenProvider(AS_OF))
    try:
        await env.portfolio()
        await env.bus.start()
        run, _, _ = await market_data_run(env, ["AAPL"])
        assert await wait_for_run(env.ctx, run["id"], 60) == "failed"
        await env.bus.drain()
        [prices] = env.events(PricesUpdated)
        assert prices.step.status == "failed" and prices.step.error is not None
        assert prices.symbols == []
        row = (
            await env.rows("SELECT status, error_code FROM marketdata.batch_job_run WHERE run_id = :r", r=run["id"])
        )[0]
        assert row["status"] == "failed" and row["error_code"] in ("MARKET_DATA_FAILED", "ALL_SYMBOLS_FAILED")
    finally:
        await close_env(env)


async def test_redelivered_cycle_started_does_not_run_the_step_twice(env: Env) -> None:
    await env.bus.start()
    run, _, _ = await market_data_run(env, ["SPY"])
    assert await wait_for_run(env.ctx, run["id"], 60) == "completed"
    [cycle] = [
        CycleStarted.model_validate_json(bytes(r["body"]))
        for r in await env.rows("SELECT body FROM marketdata.outbox WHERE routing_key = 'cycle.started'")
    ]
    await env.bus.publish(cycle)
    await env.bus.drain()
    assert len(env.events(PricesUpdated)) == 1
    assert await env.scalar("SELECT attempt FROM marketdata.batch_job_run WHERE run_id = :r", r=run["id"]) == 1
