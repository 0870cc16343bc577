"""The market_data step core (collect_market_data), the seed and the upload-verification RPC."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from marketdata.errors import ProviderError
from marketdata.market_data import collect_market_data, default_as_of
from marketdata.providers.base import PriceFetch
from marketdata.providers.fixture import FixtureProvider
from marketdata.seed import seed

pytestmark = pytest.mark.integration

AS_OF = date(2026, 11, 24)
FACTOR_ETFS = {"SPY", "MTUM", "VTV", "VUG", "QUAL", "IWM", "USMV"}
PORTFOLIO = uuid.UUID("cccccccc-1111-4000-8000-000000000003")


@pytest.fixture
async def env(md_env):
    async with md_env.db.transaction() as session:
        await session.execute(
            sa.text("TRUNCATE marketdata.daily_price, marketdata.rate_observation, ingest.api_open_position")
        )
    md_env.ctx.ample_history.forget()  # the prices it learnt about are gone
    yield md_env


async def _hold(env, *rows: tuple[str, str | None]) -> None:
    async with env.db.transaction() as session:
        for symbol, underlying in rows:
            await session.execute(
                sa.text("INSERT INTO ingest.api_open_position VALUES (:p, :s, :u)"),
                {"p": PORTFOLIO, "s": symbol, "u": underlying},
            )


async def _dump(env) -> list[tuple]:
    async with env.db.session() as session:
        prices = (await session.execute(sa.text("SELECT * FROM marketdata.daily_price ORDER BY 1, 2"))).all()
        rates = (await session.execute(sa.text("SELECT * FROM marketdata.rate_observation ORDER BY 1, 2"))).all()
    return [tuple(r) for r in prices] + [tuple(r) for r in rates]


async def test_seed_is_idempotent_and_loads_the_demo_master_providers_and_calendar(md_env) -> None:
    settings = md_env.settings
    first = await seed(md_env.db, settings)
    second = await seed(md_env.db, settings)
    assert first == second
    counts = {
        t: await md_env.scalar(f"SELECT count(*) FROM marketdata.{t}")
        for t in ("symbol_alias", "data_provider", "trading_day", "market_holiday")
    }
    assert counts == {"symbol_alias": 1, "data_provider": 5, "trading_day": 5276, "market_holiday": 246}
    by_type = dict((await md_env.db.fetch("SELECT security_type, count(*) FROM marketdata.security GROUP BY 1")) or [])
    assert by_type["stock"] == 24 and by_type["mutual_fund"] == 4 and by_type["option"] >= 8
    assert by_type["etf"] == 7 + 6 and by_type["index"] == 1  # 7 listed ETFs/ETNs + 6 factor ETFs; VIX
    vix_call = await md_env.db.fetchrow("SELECT * FROM marketdata.api_security WHERE symbol = 'VIX270721C00025000'")
    assert vix_call["underlying_symbol"] == "VIX" and vix_call["multiplier"] == 100
    assert vix_call["strike_price"] == Decimal("25.000") and vix_call["option_type"] == "C"
    assert await md_env.scalar("SELECT symbol FROM marketdata.api_symbol_alias WHERE alias = 'BRK.B'") == "BRK-B"
    assert await md_env.scalar("SELECT enabled FROM marketdata.data_provider WHERE name = 'fixture'") is True
    assert await md_env.scalar("SELECT enabled FROM marketdata.data_provider WHERE name = 'polygon'") is False
    day = await md_env.db.fetchrow("SELECT * FROM marketdata.api_trading_day WHERE trading_date = '2026-11-27'")
    assert day["previous_trading_date"] == date(2026, 11, 25) and day["next_trading_date"] == date(2026, 11, 30)
    assert (
        await md_env.scalar("SELECT early_close FROM marketdata.market_holiday WHERE holiday_date = '2026-11-27'")
        is True
    )


async def test_start_hook_applies_the_stored_provider_limits(md_env) -> None:
    for hook in md_env.service.on_start:
        await hook()
    assert md_env.ctx.provider.throttle.bucket.rate_per_minute == 100_000


async def test_default_scope_collects_held_symbols_underlyings_factor_etfs_and_full_history(env) -> None:
    await _hold(env, ("AAPL", None), ("SPY270917C00460000", "SPY"), ("BRK-B", None))
    result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=None)
    assert result.symbols_failed == {}
    assert set(result.symbols_ok) == FACTOR_ETFS | {"AAPL", "SPY270917C00460000", "BRK-B"}
    assert result.status == "completed"
    counts = dict(await env.db.fetch("SELECT symbol, count(*) FROM marketdata.daily_price GROUP BY symbol"))
    assert all(n >= 757 for n in counts.values())  # 756 trading days back plus the as-of day
    closes = dict(
        await env.db.fetch("SELECT symbol, close FROM marketdata.api_daily_price WHERE price_date = $1", AS_OF)
    )
    assert closes["SPY270917C00460000"] == Decimal("7.5000") and closes["BRK-B"] == Decimal("440.0000")
    assert await env.scalar("SELECT max(price_date) FROM marketdata.daily_price") == AS_OF
    iv = await env.scalar(
        "SELECT implied_volatility FROM marketdata.daily_price WHERE symbol = 'SPY270917C00460000' AND price_date = :d",
        d=AS_OF,
    )
    assert 0.05 < iv < 0.5
    series = dict(await env.db.fetch("SELECT series_id, count(*) FROM marketdata.api_rate GROUP BY 1"))
    assert set(series) == {"DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2", "DGS10"}
    dgs10 = await env.scalar(
        "SELECT value FROM marketdata.api_rate WHERE series_id = 'DGS10' AND observation_date = :d", d=AS_OF
    )
    assert dgs10 == pytest.approx(0.043)  # a fraction, not a FRED percent
    assert await env.scalar("SELECT count(*) FROM marketdata.api_rate WHERE observation_date = '2026-11-11'") == 0
    assert result.records == result.price_records + result.rate_records > 0
    assert await env.scalar("SELECT last_success_at IS NOT NULL FROM marketdata.data_provider WHERE name='fixture'")


async def test_running_twice_leaves_exactly_the_same_rows(env) -> None:
    await _hold(env, ("MSFT", None))
    await collect_market_data(env.ctx, as_of=AS_OF, symbols=None)
    before = await _dump(env)
    again = await collect_market_data(env.ctx, as_of=AS_OF, symbols=None)
    assert await _dump(env) == before  # same rows, same values, not even fetched_at rewritten
    # With history stored, only the lookback window (5 trading days + the as-of day) is fetched again.
    assert again.price_records == 6 * len(again.symbols_ok)


async def test_a_failing_symbol_is_isolated_and_keeps_its_stored_prices(env) -> None:
    await _hold(env, ("AAPL", None), ("MSFT", None))
    await collect_market_data(env.ctx, as_of=date(2026, 11, 20), symbols=None)
    aapl_rows = await env.scalar("SELECT count(*) FROM marketdata.daily_price WHERE symbol = 'AAPL'")

    class AaplDown(FixtureProvider):
        async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
            out = await super().fetch_prices([s for s in symbols if s != "AAPL"], start, end)
            if "AAPL" in symbols:
                out.failed["AAPL"] = "fixture-test: HTTP 503"
            return out

    original = env.ctx.provider
    env.ctx.provider = AaplDown(original.end_date)
    try:
        result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=None)
    finally:
        env.ctx.provider = original
    assert result.symbols_failed == {"AAPL": "fixture-test: HTTP 503"}
    assert "MSFT" in result.symbols_ok and result.status == "partial"
    assert await env.scalar("SELECT count(*) FROM marketdata.daily_price WHERE symbol = 'AAPL'") == aapl_rows
    assert await env.scalar("SELECT max(price_date) FROM marketdata.daily_price WHERE symbol = 'MSFT'") == AS_OF
    assert await env.scalar("SELECT max(price_date) FROM marketdata.daily_price WHERE symbol = 'AAPL'") == date(
        2026, 11, 20
    )
    # one bad symbol is not a provider failure
    assert await env.scalar("SELECT consecutive_failures FROM marketdata.data_provider WHERE name='fixture'") == 0


async def test_a_provider_outage_fails_every_symbol_without_touching_stored_data(env) -> None:
    class Down(FixtureProvider):
        async def fetch_prices(self, symbols: Sequence[str], start: date, end: date) -> PriceFetch:
            raise ProviderError("fixture", "unreachable")

        async def fetch_rates(self, series_ids, start, end):  # type: ignore[no-untyped-def]
            raise ProviderError("fixture", "unreachable")

    original = env.ctx.provider
    env.ctx.provider = Down(original.end_date)
    try:
        result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=["SPY", "AAPL"])
    finally:
        env.ctx.provider = original
    assert result.symbols_ok == [] and set(result.symbols_failed) == {"SPY", "AAPL"}
    assert result.status == "failed" and set(result.rates_failed) == {
        "DGS1MO",
        "DGS3MO",
        "DGS6MO",
        "DGS1",
        "DGS2",
        "DGS10",
    }
    assert result.records == 0
    row = await env.db.fetchrow(
        "SELECT consecutive_failures, last_error, last_failure_at FROM marketdata.data_provider WHERE name='fixture'"
    )
    assert row["consecutive_failures"] == 1 and "unreachable" in row["last_error"] and row["last_failure_at"]
    await collect_market_data(env.ctx, as_of=AS_OF, symbols=["SPY"], lookback_days=1)
    assert await env.scalar("SELECT consecutive_failures FROM marketdata.data_provider WHERE name='fixture'") == 0


async def test_rates_get_their_full_history_even_when_prices_are_already_stored(env) -> None:
    await collect_market_data(env.ctx, as_of=AS_OF, symbols=["SPY"])
    async with env.db.transaction() as session:
        await session.execute(sa.text("TRUNCATE marketdata.rate_observation"))
    result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=["SPY"])
    assert result.price_records == 6  # prices: only the lookback window
    assert await env.scalar("SELECT count(*) FROM marketdata.api_rate WHERE series_id = 'DGS10'") >= 740


async def test_explicit_symbols_resolve_aliases_and_report_unknown_or_malformed_ones(env) -> None:
    result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=["BRK.B", "zzzz", "not a symbol"], lookback_days=2)
    assert result.symbols_ok == ["BRK-B"]
    assert result.symbols_failed["ZZZZ"] == "unknown to provider fixture"
    assert "not a valid" in result.symbols_failed["not a symbol"]
    assert await env.scalar("SELECT count(*) FROM marketdata.security WHERE symbol = 'ZZZZ'") == 0


async def test_a_new_option_contract_is_added_to_the_master_from_its_occ_symbol(env) -> None:
    result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=["AAPL270820C00250000"], lookback_days=1)
    row = await env.db.fetchrow("SELECT * FROM marketdata.security WHERE symbol = 'AAPL270820C00250000'")
    assert row["security_type"] == "option" and row["underlying_symbol"] == "AAPL"
    assert row["strike_price"] == Decimal("250.000") and row["expiration_date"] == date(2027, 8, 20)
    assert (row["sector"], row["industry"], row["enrichment_status"]) == ("Technology", "Consumer Electronics", "ok")
    assert "AAPL" in result.symbols_ok  # the underlying is collected with it
    assert "AAPL270820C00250000" in result.symbols_failed  # the fixture has no market for this contract


async def test_pending_securities_are_enriched_from_the_provider(env) -> None:
    async with env.db.transaction() as session:
        await session.execute(
            sa.text(
                "UPDATE marketdata.security SET enrichment_status = 'pending', sector = NULL, industry = NULL, "
                "name = NULL WHERE symbol = 'GLD'"
            )
        )
    await collect_market_data(env.ctx, as_of=AS_OF, symbols=["GLD"], lookback_days=1)
    row = await env.db.fetchrow("SELECT * FROM marketdata.security WHERE symbol = 'GLD'")
    assert (row["enrichment_status"], row["sector"], row["name"]) == ("ok", "ETF/Fund", "SPDR Gold Shares")
    assert row["enriched_at"] is not None


def test_default_as_of_in_fixture_mode_is_the_fixture_end_date(md_env) -> None:
    ctx = md_env.ctx
    assert default_as_of(ctx, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)) == AS_OF
    assert default_as_of(ctx, datetime(2027, 3, 1, 22, 0, tzinfo=UTC)) == AS_OF  # a frozen market
    assert default_as_of(ctx, datetime(2026, 11, 24, 20, 0, tzinfo=UTC)) == date(2026, 11, 23)  # before the close


async def test_verify_symbols_reports_classification_for_upload_checks(env) -> None:
    symbols = ["brk.b", "VIX", "FXNAX", "SPY270917C00460000", "NOPE", "1X"]
    await env.bus.start()
    try:
        before = (await env.bus.request("marketdata.verify_symbols", {"symbols": symbols}))["symbols"]
        await collect_market_data(env.ctx, as_of=AS_OF, symbols=["SPY270917C00460000"], lookback_days=1)
        after = (await env.bus.request("marketdata.verify_symbols", {"symbols": ["SPY270917C00460000"]}))["symbols"]
    finally:
        await env.bus.close()
    assert before["brk.b"]["symbol"] == "BRK-B" and before["brk.b"]["known"] is True
    assert before["VIX"]["security_type"] == "index"  # ingest rejects it as NOT_HOLDABLE
    assert before["FXNAX"]["security_type"] == "mutual_fund"  # SHORT_NOT_ALLOWED when short
    assert before["FXNAX"]["classification_known"] is True
    option = before["SPY270917C00460000"]
    assert option["security_type"] == "option" and option["has_option_data"] is False  # NO_OPTION_DATA warning
    assert after["SPY270917C00460000"]["has_option_data"] is True
    assert before["NOPE"] == {
        "symbol": "NOPE", "known": False, "error": "UNKNOWN_SYMBOL", "reason": "unknown to provider fixture",
    }  # fmt: skip
    assert before["1X"]["known"] is False and before["1X"]["error"] == "UNKNOWN_SYMBOL"


async def test_verify_symbols_fails_retryably_when_the_provider_is_unreachable(env) -> None:
    class Down(FixtureProvider):
        async def profile(self, symbol: str):  # type: ignore[no-untyped-def]
            raise ProviderError("fixture", "unreachable")

    from common.errors import TransientError
    from marketdata.security_master import verify_symbols

    with pytest.raises(TransientError):
        await verify_symbols(env.db, Down(AS_OF), ["NEWCO"])
    # symbols already in the master need no provider call
    known = await verify_symbols(env.db, Down(AS_OF), ["AAPL"])
    assert known["symbols"]["AAPL"]["known"] is True


async def test_missing_classification_is_stored_as_unknown_and_never_overwrites_a_known_one(env) -> None:
    from marketdata.providers.base import SecurityInfo
    from marketdata.security_master import upsert_securities

    async with env.db.transaction() as session:
        await upsert_securities(
            session, [SecurityInfo(symbol="NOCLASS", security_type="stock", name="No Class")], provider="t"
        )
        await upsert_securities(session, [SecurityInfo(symbol="GE", security_type="stock")], provider="t")
    row = await env.db.fetchrow(
        "SELECT sector, industry, enrichment_status FROM marketdata.security WHERE symbol = 'NOCLASS'"
    )
    assert tuple(row) == ("Unknown", "Unknown", "partial")
    ge = await env.db.fetchrow(
        "SELECT sector, industry, enrichment_status, name FROM marketdata.security WHERE symbol = 'GE'"
    )
    assert tuple(ge) == ("Industrials", "Specialty Industrial Machinery", "ok", "General Electric (GE Aerospace)")


async def test_factor_proxies_come_from_the_factor_registry_when_it_is_installed(env) -> None:
    async with env.db.transaction() as session:
        await session.execute(sa.text("CREATE SCHEMA IF NOT EXISTS factors"))
        await session.execute(
            sa.text("CREATE TABLE factors.api_factor_definition (proxy text, proxy_type text, is_active boolean)")
        )
        await session.execute(
            sa.text(
                "INSERT INTO factors.api_factor_definition VALUES ('SPY','etf',true), ('IWM','etf',true), "
                "('DGS10','rate_series',true), (NULL, NULL, false)"
            )
        )
    try:
        result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=None, lookback_days=1)
    finally:
        async with env.db.transaction() as session:
            await session.execute(sa.text("DROP SCHEMA factors CASCADE"))
    assert result.symbols_ok == ["IWM", "SPY"]  # the registry's ETF proxies plus SPY; no rate series


async def test_a_pending_symbol_the_provider_does_not_know_is_marked_failed_and_keeps_its_prices(env) -> None:
    from marketdata.repository import upsert_price_records
    from marketdata.security_master import pending_placeholders

    async with env.db.transaction() as session:
        assert await pending_placeholders(session, ["PRIVCO"]) == ["PRIVCO"]
        await upsert_price_records(
            session,
            [("PRIVCO", AS_OF, None, None, None, Decimal("12.5"), Decimal("12.5"), None, None, None, "file")],
        )
    result = await collect_market_data(env.ctx, as_of=AS_OF, symbols=["PRIVCO"], lookback_days=1)
    assert result.symbols_failed == {"PRIVCO": "unknown to provider fixture"}
    row = await env.db.fetchrow(
        "SELECT enrichment_status, enrichment_error FROM marketdata.security WHERE symbol='PRIVCO'"
    )
    assert row["enrichment_status"] == "failed" and "fixture" in row["enrichment_error"]
    assert await env.scalar("SELECT close FROM marketdata.daily_price WHERE symbol = 'PRIVCO'") == Decimal("12.5000")
