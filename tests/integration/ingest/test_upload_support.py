"""Shared harness of the upload/onboarding integration tests (imported by test_upload_api and
test_onboarding_api): a database with the ingest migrations, stand-ins of the marketdata/factors/
stress views (tests/fixtures/csv/market_standin.sql) filled with the demo security master and
deterministic closes, and the ingest service built by `ingest.main.create_service` on an
InProcessBus, called through httpx's ASGI transport. The upload date is pinned to 2026-11-25.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import PortfolioUpdated
from common.migrations import upgrade
from common.service import Service
from common.testing import drop_database, recreate_database

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"
SECRET = "upload-onboarding-test-secret-0123456789abcdef"
TODAY = date(2026, 11, 25)
HISTORY_DAYS = 300
OTHER_CLOSES = {"META": Decimal("530.00"), "GLD": Decimal("219.23"), "VIX": Decimal("18.50")}
# A listed symbol with no prices at all (onboarding: current_prices fails).
UNPRICED = {
    "symbol": "NOPX",
    "security_type": "stock",
    "name": "No Price Corp.",
    "sector": "Industrials",
    "industry": "Conglomerates",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def weekdays_back(end: date, n: int) -> list[date]:
    out: list[date] = []
    day = end
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return out[::-1]


def demo_closes() -> dict[str, Decimal]:
    """Fixture closes (demo.md §7): each stock/ETF/fund at its CSV entry price, the demo option quotes."""
    closes: dict[str, Decimal] = {}
    for name in ("demo_individual.csv", "demo_hnw.csv", "demo_hedgefund.csv"):
        with (FIXTURES / name).open() as fh:
            for row in csv.DictReader(fh):
                if not re.search(r"\d{6}", row["ticker"]):
                    closes.setdefault(row["ticker"], Decimal(row["entry_price"]))
    closes.update(OTHER_CLOSES)
    for sec in json.loads((FIXTURES / "demo_security_master.json").read_text())["securities"]:
        if sec.get("close"):
            closes[sec["symbol"]] = Decimal(sec["close"])
    return closes


async def install_market(url: str, today: date = TODAY) -> None:
    """Create the stand-in views and fill them (security master, aliases, closes, rates, calendar)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute((FIXTURES / "market_standin.sql").read_text())
        master = json.loads((FIXTURES / "demo_security_master.json").read_text())
        securities = [*master["securities"], UNPRICED]
        await conn.copy_records_to_table(
            "security",
            schema_name="marketdata",
            columns=(
                "symbol",
                "security_type",
                "name",
                "sector",
                "industry",
                "underlying_symbol",
                "option_type",
                "strike_price",
                "expiration_date",
                "multiplier",
            ),
            records=[
                (
                    s["symbol"],
                    s["security_type"],
                    s.get("name"),
                    s.get("sector"),
                    s.get("industry"),
                    s.get("underlying_symbol"),
                    s.get("option_type"),
                    Decimal(s["strike_price"]) if s.get("strike_price") else None,
                    date.fromisoformat(s["expiration_date"]) if s.get("expiration_date") else None,
                    100 if s["security_type"] == "option" else None,
                )
                for s in securities
            ],
        )
        await conn.executemany(
            "INSERT INTO marketdata.symbol_alias (alias, symbol) VALUES ($1, $2)", list(master["aliases"].items())
        )
        calendar = weekdays_back(today + timedelta(days=14), 800)
        await conn.copy_records_to_table(
            "trading_day",
            schema_name="marketdata",
            columns=("trading_date", "previous_trading_date", "next_trading_date"),
            records=[
                (d, calendar[i - 1] if i else None, calendar[i + 1] if i + 1 < len(calendar) else None)
                for i, d in enumerate(calendar)
            ],
        )
        days = weekdays_back(today, HISTORY_DAYS)
        closes = demo_closes()
        records = []
        for s in master["securities"]:
            last = closes.get(s["symbol"], Decimal("100.00"))
            iv = 0.3 if s["security_type"] == "option" else None
            for i, d in enumerate(days):
                drift = Decimal(len(days) - 1 - i) / Decimal(1000)
                px = (last * (1 - drift)).quantize(Decimal("0.0001"))
                records.append((s["symbol"], d, px, px, iv, "fixture"))
        await conn.copy_records_to_table(
            "daily_price",
            schema_name="marketdata",
            columns=("symbol", "price_date", "close", "adj_close", "implied_volatility", "source"),
            records=records,
        )
        rates = [(series, d, 0.04) for series in ("DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2", "DGS10") for d in days]
        await conn.copy_records_to_table(
            "rate_observation",
            schema_name="marketdata",
            columns=("series_id", "observation_date", "value"),
            records=rates,
        )
    finally:
        await conn.close()


@dataclass
class Env:
    """A running ingest service on a migrated database with stand-in market data."""

    url: str
    db: Database
    bus: InProcessBus
    service: Service
    client: httpx.AsyncClient
    events: list[PortfolioUpdated] = field(default_factory=list)
    verify_calls: list[list[str]] = field(default_factory=list)

    @staticmethod
    def user() -> uuid.UUID:
        return uuid.uuid4()

    def headers(self, user_id: uuid.UUID, role: str = "user", **extra: str) -> dict[str, str]:
        token = issue_access_token(Principal(user_id, f"{user_id.hex[:8]}@example.com", role), SECRET, 3600)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}", **extra}

    async def upload(
        self,
        user_id: uuid.UUID,
        content: bytes,
        *,
        file_name: str = "positions.csv",
        content_type: str = "text/csv",
        wait: int | None = 10,
        **fields: Any,
    ) -> httpx.Response:
        headers = self.headers(user_id)
        if wait:
            headers["Prefer"] = f"wait={wait}"
        data = {k: str(v) for k, v in fields.items() if v is not None}
        return await self.client.post(
            "/api/v1/portfolio/upload", files={"file": (file_name, content, content_type)}, data=data, headers=headers
        )

    async def finished(self, user_id: uuid.UUID, upload_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll #59 until the upload leaves queued/processing."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.client.get(f"/api/v1/portfolio/upload/{upload_id}/status", headers=self.headers(user_id))
            assert r.status_code == 200, r.text
            body = r.json()["data"]
            if body["status"] not in ("queued", "processing"):
                return body
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.db.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        row = await self.db.fetchrow(query, *args)
        return None if row is None else row[0]

    async def execute(self, query: str, *args: Any) -> None:
        pool = await self.db.pool()
        async with pool.acquire() as conn:
            await conn.execute(query, *args)

    async def job(self, user_id: uuid.UUID, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll /jobs/{id} until terminal."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.client.get(f"/api/v1/jobs/{job_id}", headers=self.headers(user_id))
            assert r.status_code == 200, r.text
            body = r.json()["data"]
            if body["status"] in ("completed", "partial", "failed", "cancelled"):
                return body
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)


async def start_env(admin_url: str, name: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    """Create the database, start the service, yield the Env, tear everything down."""
    from ingest.main import create_service
    from ingest.onboarding import completion
    from ingest.settings import Settings
    from ingest.upload import clock

    monkeypatch.setattr(clock, "eastern_today", lambda: TODAY)
    monkeypatch.setattr(completion, "POLL_SECONDS", 0.05)
    url = await recreate_database(admin_url, name)
    await asyncio.to_thread(upgrade, "ingest", url)
    await install_market(url)
    db = Database(url, pool_size=6)
    bus = InProcessBus()
    service = create_service(Settings(database_url=url, jwt_secret=SECRET), db, bus)
    events: list[PortfolioUpdated] = []

    async def sink(evt: PortfolioUpdated) -> None:
        events.append(evt)

    bus.subscribe("test", PortfolioUpdated, sink)
    verify_calls: list[list[str]] = []

    async def offline_marketdata(payload: dict[str, Any]) -> dict[str, Any]:
        # Stands in for marketdata on the offline fixture: a symbol new to the master stays unknown.
        verify_calls.append(list(payload["symbols"]))
        return {"symbols": {s: {"symbol": s, "known": False, "error": "UNKNOWN_SYMBOL"} for s in payload["symbols"]}}

    bus.respond("marketdata.verify_symbols", offline_marketdata)
    await bus.start()
    await service.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t", timeout=60)
    env = Env(url, db, bus, service, client, events, verify_calls)
    try:
        yield env
    finally:
        await client.aclose()
        await service.stop()
        await bus.close()
        await db.close()
        await drop_database(admin_url, name)


async def test_stand_in_views_have_the_contract_columns(pg_admin_url: str) -> None:
    """The stand-ins must keep the column lists of docs/contracts.md so the tests exercise the contract."""
    contracts = (Path(__file__).resolve().parents[3] / "docs" / "contracts.md").read_text()
    name = f"sigmasight_upload_views_{uuid.uuid4().hex[:8]}"
    url = await recreate_database(pg_admin_url, name)
    try:
        await install_market(url)
        conn = await asyncpg.connect(url)
        try:
            for view in (
                "marketdata.api_security",
                "marketdata.api_symbol_alias",
                "marketdata.api_daily_price",
                "marketdata.api_rate",
                "marketdata.api_trading_day",
                "marketdata.api_batch_run",
                "factors.api_factor_definition",
            ):
                line = next(line for line in contracts.splitlines() if line.startswith(f"| `{view}`"))
                listed = re.search(r"`([^`]*)`", line.split("|")[2])
                assert listed is not None, view
                expected = [c.strip() for c in listed.group(1).split(",")]
                schema, table = view.split(".")
                got = [
                    r["column_name"]
                    for r in await conn.fetch(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                        "AND table_name = $2 ORDER BY ordinal_position",
                        schema,
                        table,
                    )
                ]
                assert got == expected, view
            assert await conn.fetchval("SELECT count(*) FROM marketdata.api_security") == 51
            assert await conn.fetchval(
                "SELECT close FROM marketdata.api_daily_price WHERE symbol = 'AAPL' AND price_date = $1", TODAY
            ) == Decimal("225.0000")
        finally:
            await conn.close()
    finally:
        await drop_database(pg_admin_url, name)
