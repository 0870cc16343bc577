"""Fixtures for the greeks integration tests: a database with the marketdata, ingest and greeks
schemas, a running greeks service on an InProcessBus, and a small market/book fixture.

Book at T0 = 2026-11-24 (Tuesday):
* portfolio A (user U1, default): 1,000 XYZ shares; −5 XYZ 105 calls expiring T0+30 (Example 2, σ from
  the vendor IV 0.25 after the market solve fails); +2 ABC 450 calls expiring T0+60 priced 16.22
  (Example 3, market IV); +1 NOPE call (no underlying price: missing_inputs); −3 XYZ 95 puts that
  expired on T0−3 and are still open (expired).
* portfolio B (user U1): stocks only.  * portfolio C (user U2): +4 XYZ 105 calls.
Curve: DGS1MO = e^0.05 − 1 and DGS3MO chosen so that r(60/365) = 0.045 exactly.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import make_migrated_database, worker_suffix

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import GreeksComputed
from common.service import Service
from common.testing import drop_database
from greeks.main import create_service
from greeks.settings import Settings

T0 = date(2026, 11, 24)
SECRET = "greeks-integration-secret-0123456789abcdef"
U1, U2, ADMIN, NOBODY = (uuid.uuid5(uuid.NAMESPACE_DNS, f"greeks-{n}") for n in ("u1", "u2", "admin", "nobody"))
PA, PB, PC, PD = (uuid.uuid5(uuid.NAMESPACE_DNS, f"greeks-p{n}") for n in "abcd")
EXPIRY_2 = T0 + timedelta(days=30)
EXPIRY_3 = T0 + timedelta(days=60)
EXPIRED = T0 - timedelta(days=3)


def occ(root: str, expiry: date, cp: str, strike: float) -> str:
    return f"{root}{expiry:%y%m%d}{cp}{round(strike * 1000):08d}"


SYM_XYZ_C = occ("XYZ", EXPIRY_2, "C", 105)
SYM_ABC_C = occ("ABC", EXPIRY_3, "C", 450)
SYM_NOPE_C = occ("NOPE", EXPIRY_2, "C", 10)
SYM_XYZ_P = occ("XYZ", EXPIRED, "P", 95)


def position_id(portfolio: uuid.UUID, symbol: str) -> uuid.UUID:
    return uuid.uuid5(portfolio, symbol)


@pytest.fixture(scope="session")
async def greeks_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"sigmasight_greeks_{worker_suffix()}"
    url = await make_migrated_database(pg_admin_url, name, services=("marketdata", "ingest", "greeks"))
    yield url
    await drop_database(pg_admin_url, name)


def weekdays_until(end: date, count: int) -> list[date]:
    days: list[date] = []
    d = end + timedelta(days=5)
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


async def load_fixture(db: Database) -> None:
    """Reset every table the tests touch and load the market and book fixture."""
    async with db.transaction() as s:
        await s.execute(
            sa.text(
                "TRUNCATE greeks.position_greek, greeks.processed_event, greeks.outbox, greeks.job, "
                "ingest.position, ingest.portfolio, marketdata.daily_price, marketdata.rate_observation, "
                "marketdata.trading_day, marketdata.symbol_alias, marketdata.security CASCADE"
            )
        )
        days = weekdays_until(T0, 90)
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.trading_day (trading_date, previous_trading_date, next_trading_date, close_at) "
                "VALUES (:d, :p, :n, :c)"
            ),
            [
                {
                    "d": d,
                    "p": days[i - 1] if i else None,
                    "n": days[i + 1] if i + 1 < len(days) else None,
                    "c": datetime(d.year, d.month, d.day, 21, tzinfo=UTC),
                }
                for i, d in enumerate(days)
            ],
        )
        stocks = [("SPY", "etf", 0.013), ("XYZ", "stock", 0.02), ("ABC", "stock", 0.0), ("NOPE", "stock", None)]
        await s.execute(
            sa.text("INSERT INTO marketdata.security (symbol, security_type, dividend_yield) VALUES (:s, :t, :q)"),
            [{"s": sym, "t": t, "q": q} for sym, t, q in stocks],
        )
        options = [
            (SYM_XYZ_C, "XYZ", "C", 105, EXPIRY_2),
            (SYM_ABC_C, "ABC", "C", 450, EXPIRY_3),
            (SYM_NOPE_C, "NOPE", "C", 10, EXPIRY_2),
            (SYM_XYZ_P, "XYZ", "P", 95, EXPIRED),
        ]
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.security (symbol, security_type, underlying_symbol, option_type, strike_price, "
                "expiration_date, multiplier) VALUES (:s, 'option', :u, :t, :k, :e, 100)"
            ),
            [{"s": sym, "u": u, "t": t, "k": k, "e": e} for sym, u, t, k, e in options],
        )
        await s.execute(sa.text("INSERT INTO marketdata.symbol_alias (alias, symbol) VALUES ('XYZ.A', 'XYZ')"))
        history = [d for d in days if d <= T0]
        price_rows = []
        for i, d in enumerate(history):
            wiggle = 1 + 0.01 * math.sin(i)  # deterministic history for realised volatility
            price_rows.append(
                {"s": "SPY", "d": d, "c": 450.0 * wiggle, "a": 450.0 * wiggle, "iv": None, "src": "fixture"}
            )
            price_rows.append(
                {
                    "s": "ABC",
                    "d": d,
                    "c": 450.0 if d == T0 else 440.0 * wiggle,
                    "a": 440.0 * wiggle,
                    "iv": None,
                    "src": "fixture",
                }
            )
            price_rows.append(
                {
                    "s": "XYZ",
                    "d": d,
                    "c": 100.0 if d == T0 else 99.0 * wiggle,
                    "a": 99.0 * wiggle,
                    "iv": None,
                    "src": "fixture",
                }
            )
        # The XYZ call's close is above the call bound S·e^{-qT}: the market solve fails, vendor IV 0.25 is used.
        price_rows.append({"s": SYM_XYZ_C, "d": T0, "c": 150.0, "a": None, "iv": 0.25, "src": "fixture"})
        price_rows.append({"s": SYM_ABC_C, "d": T0, "c": 16.22, "a": None, "iv": None, "src": "fixture"})
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, implied_volatility, source) "
                "VALUES (:s, :d, :c, :a, :iv, :src)"
            ),
            price_rows,
        )
        y1 = math.expm1(0.05)
        y60 = math.expm1(0.045)
        t1, t3, t60 = 1 / 12, 0.25, 60 / 365
        y3 = y1 + (y60 - y1) * (t3 - t1) / (t60 - t1)
        await s.execute(
            sa.text("INSERT INTO marketdata.rate_observation (series_id, observation_date, value) VALUES (:s, :d, :v)"),
            [{"s": "DGS1MO", "d": T0, "v": y1}, {"s": "DGS3MO", "d": T0 - timedelta(days=4), "v": y3}],
        )
        portfolios = [
            (PA, U1, "Alpha", True, "active"),
            (PB, U1, "Beta", False, "active"),
            (PC, U2, "Gamma", True, "active"),
            (PD, U2, "Onboarding", False, "onboarding"),
        ]
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (id, user_id, name, is_default, status, created_at) "
                "VALUES (:id, :u, :n, :d, :st, now() - make_interval(mins => :o))"
            ),
            [{"id": p, "u": u, "n": n, "d": d, "st": st, "o": 10 - i} for i, (p, u, n, d, st) in enumerate(portfolios)],
        )
        rows = [
            (PA, "XYZ", "stock", "LONG", 1000, 1, "XYZ", None, None, None, 100000, 100000, "open", None),
            (PA, SYM_XYZ_C, "option", "SC", -5, 100, "XYZ", "C", 105, EXPIRY_2, None, None, "open", None),
            (PA, SYM_ABC_C, "option", "LC", 2, 100, "ABC", "C", 450, EXPIRY_3, None, None, "open", None),
            (PA, SYM_NOPE_C, "option", "LC", 1, 100, "NOPE", "C", 10, EXPIRY_2, None, None, "open", None),
            (PA, SYM_XYZ_P, "option", "SP", -3, 100, "XYZ", "P", 95, EXPIRED, None, None, "open", None),
            (PA, "SPY", "stock", "SHORT", -10, 1, "SPY", None, None, None, -4500, -4500, "open", None),
            (PB, "SPY", "stock", "LONG", 20, 1, "SPY", None, None, None, 9000, 9000, "open", None),
            (PC, SYM_XYZ_C, "option", "LC", 4, 100, "XYZ", "C", 105, EXPIRY_2, None, None, "open", None),
        ]
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position (id, portfolio_id, symbol, instrument_type, position_type, quantity, "
                "multiplier, underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, "
                "market_value, dollar_exposure, status, exit_date, source) VALUES (:id, :p, :s, :it, :pt, :q, :m, :u, "
                ":ot, :k, :e, 1, :ed, :mv, :de, :st, :xd, 'api')"
            ),
            [
                {
                    "id": position_id(p, s_),
                    "p": p,
                    "s": s_,
                    "it": it,
                    "pt": pt,
                    "q": q,
                    "m": m,
                    "u": u,
                    "ot": ot,
                    "k": k,
                    "e": e,
                    "ed": date(2026, 1, 5),
                    "mv": mv,
                    "de": de,
                    "st": st,
                    "xd": xd,
                }
                for p, s_, it, pt, q, m, u, ot, k, e, mv, de, st, xd in rows
            ],
        )


@dataclass
class Harness:
    """A started greeks service with a GreeksComputed sink (consumer "ingest") and an HTTP client."""

    service: Service
    bus: InProcessBus
    db: Database
    client: httpx.AsyncClient
    received: list[GreeksComputed] = field(default_factory=list)

    def headers(self, user: uuid.UUID, role: str = "user") -> dict[str, str]:
        token = issue_access_token(Principal(user, f"{user}@example.com", role), SECRET, 3600)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    async def scalar(self, sql: str, **params: object) -> object:
        async with self.db.session() as s:
            return (await s.execute(sa.text(sql), params)).scalar()

    async def rows(self, sql: str, **params: object) -> list[dict]:
        async with self.db.session() as s:
            return [dict(r) for r in (await s.execute(sa.text(sql), params)).mappings().all()]


@pytest.fixture
async def harness(greeks_db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    db = Database(greeks_db_url, pool_size=4)
    await load_fixture(db)
    bus = InProcessBus()
    service = create_service(Settings(), db, bus)
    h = Harness(
        service, bus, db, httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")
    )

    async def sink(evt: GreeksComputed) -> None:
        h.received.append(evt)

    bus.subscribe("ingest", GreeksComputed, sink)
    await bus.start()
    await service.start()
    yield h
    await h.client.aclose()
    await service.stop()
    await bus.close()
    await db.close()
