"""Seed of the marketdata schema (data-model.md §10): the demo security master (demo.md §5: 35
listed symbols, the VIX index, the 8 rolled option contracts, the six factor ETFs not already
listed), the BRK.B alias, the data providers and the NYSE calendar 2015–2035. Idempotent:
upserts on natural keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from marketdata import calendar, repository
from marketdata.demo_securities import ALIASES, LISTED, OPTIONS, VIX
from marketdata.providers.fixture import fixture_profile
from marketdata.security_master import upsert_aliases, upsert_securities
from marketdata.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderSeed:
    """One data_provider row."""

    name: str
    roles: dict[str, int]
    rate_limit_per_minute: int
    timeout_seconds: int
    max_retries: int


# Priority per role (lower = first). v1 ships clients for fixture and yfinance only; fmp, polygon and
# fred rows document the intended live set-up and are enabled when their key is configured.
PROVIDERS = (
    ProviderSeed("fmp", {"stock_prices": 1, "fund_prices": 1, "profiles": 1}, 300, 30, 3),
    ProviderSeed("polygon", {"options": 1, "stock_prices": 2, "fund_prices": 2}, 5, 30, 3),
    ProviderSeed("fred", {"rates": 1}, 120, 30, 3),
    ProviderSeed(
        "fixture", {"stock_prices": 1, "fund_prices": 1, "profiles": 1, "options": 1, "rates": 1}, 100_000, 5, 0
    ),
    ProviderSeed("yfinance", {"stock_prices": 1, "fund_prices": 1, "profiles": 1, "options": 2, "rates": 2}, 60, 30, 3),
)


@dataclass(frozen=True)
class SeedResult:
    """Row counts written by the seed."""

    securities: int
    aliases: int
    providers: int
    trading_days: int
    holidays: int


def provider_enabled(name: str, settings: Settings) -> bool:
    """fixture when it is the provider in use; yfinance when selected; the others when their key is set."""
    if name == "fixture":
        return settings.fixture_mode
    if name == "yfinance":
        return settings.provider_name == "yfinance"
    return settings.live_keys.get(name, False)


async def _seed_providers(session: AsyncSession, settings: Settings) -> int:
    conn = await repository.raw_connection(session)
    await conn.executemany(
        """
        INSERT INTO marketdata.data_provider AS d
            (name, enabled, roles, rate_limit_per_minute, timeout_seconds, max_retries)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6)
        ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, roles = EXCLUDED.roles, updated_at = now()
        WHERE (d.enabled, d.roles) IS DISTINCT FROM (EXCLUDED.enabled, EXCLUDED.roles)
        """,
        [
            (
                p.name,
                provider_enabled(p.name, settings),
                orjson.dumps(p.roles).decode(),
                p.rate_limit_per_minute,
                p.timeout_seconds,
                p.max_retries,
            )
            for p in PROVIDERS
        ],
    )
    return len(PROVIDERS)


async def _seed_calendar(session: AsyncSession) -> tuple[int, int]:
    conn = await repository.raw_connection(session)
    days: list[tuple[Any, ...]] = [
        (d.trading_date, d.previous_trading_date, d.next_trading_date, d.early_close, d.close_at)
        for d in calendar.trading_day_rows()
    ]
    await conn.executemany(
        """
        INSERT INTO marketdata.trading_day AS t
            (trading_date, previous_trading_date, next_trading_date, early_close, close_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (trading_date) DO UPDATE SET previous_trading_date = EXCLUDED.previous_trading_date,
            next_trading_date = EXCLUDED.next_trading_date, early_close = EXCLUDED.early_close,
            close_at = EXCLUDED.close_at
        WHERE (t.previous_trading_date, t.next_trading_date, t.early_close, t.close_at)
              IS DISTINCT FROM (EXCLUDED.previous_trading_date, EXCLUDED.next_trading_date, EXCLUDED.early_close,
                                EXCLUDED.close_at)
        """,
        days,
    )
    holidays = [(h.holiday_date, h.name, h.early_close, h.close_time) for h in calendar.holidays()]
    await conn.executemany(
        """
        INSERT INTO marketdata.market_holiday AS h (holiday_date, name, early_close, close_time)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (holiday_date) DO UPDATE SET name = EXCLUDED.name, early_close = EXCLUDED.early_close,
            close_time = EXCLUDED.close_time
        WHERE (h.name, h.early_close, h.close_time)
              IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.early_close, EXCLUDED.close_time)
        """,
        holidays,
    )
    return len(days), len(holidays)


def demo_security_infos() -> list[Any]:
    """Profiles of every seeded security (underlyings before options)."""
    symbols = [*LISTED, VIX.symbol, *(o.symbol for o in OPTIONS)]
    infos = [fixture_profile(s) for s in symbols]
    return [i for i in infos if i is not None]


async def seed(db: Database, settings: Settings) -> SeedResult:
    """Upsert the demo security master, aliases, providers and the trading calendar."""
    infos = demo_security_infos()
    async with db.transaction() as session:
        await upsert_securities(session, infos, provider="fixture" if settings.fixture_mode else None)
        await upsert_aliases(session, dict(ALIASES))
        providers = await _seed_providers(session, settings)
        trading_days, holidays = await _seed_calendar(session)
    result = SeedResult(
        securities=len(infos),
        aliases=len(ALIASES),
        providers=providers,
        trading_days=trading_days,
        holidays=holidays,
    )
    log.info("marketdata seed: %s", result)
    return result
