"""Shared set-up for the ingest book integration tests.

A database with the marketdata, ingest, greeks and stress schemas; the seeded demo books; the
demo.md §7 fixture closes on T0 = 2026-11-24 and P0 = 2026-11-23 (identical, so day P&L is 0);
model deltas for the eight hedge-fund options on T0; an ingest service on an InProcessBus with
a collector of published `portfolio.updated` events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from tests.conftest import make_migrated_database

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import GreeksComputed, PortfolioUpdated
from common.ids import demo_user_id
from common.service import Service
from common.testing import drop_database
from ingest.demo_data import DEMO_BOOKS, HEDGE_FUND, HIGH_NET_WORTH, INDIVIDUAL, DemoBook
from ingest.instruments import parse_occ
from ingest.main import create_service
from ingest.seed import seed
from ingest.settings import Settings

SECRET = "ingest-book-tests-secret-0123456789abcdef"
T0 = date(2026, 11, 24)
P0 = date(2026, 11, 23)
SERVICES = ("marketdata", "ingest", "greeks", "stress")

FIXTURE_CLOSE: dict[str, Decimal] = {}
for _book in DEMO_BOOKS:
    for _pos in _book.positions:
        if parse_occ(_pos.symbol) is None:
            FIXTURE_CLOSE.setdefault(_pos.symbol, _pos.entry_price)
FIXTURE_CLOSE["META"] = Decimal("530.00")
FIXTURE_CLOSE["VIX"] = Decimal("18.50")
FIXTURE_CLOSE.update(
    {
        "SPY270917C00460000": Decimal("7.50"),
        "QQQ270820C00420000": Decimal("7.25"),
        "VIX270721C00025000": Decimal("2.75"),
        "NVDA271015C00800000": Decimal("15.00"),
        "AAPL270820P00200000": Decimal("4.25"),
        "MSFT270917P00380000": Decimal("4.75"),
        "TSLA270820C00300000": Decimal("8.50"),
        "META270917P00450000": Decimal("7.25"),
    }
)
FUNDS = {"FXNAX", "FCNTX", "FMAGX", "VTIAX"}
ETFS = {"VTI", "BND", "VNQ", "SPY", "QQQ", "GLD", "DJP"}
SECTORS = {"JPM": "Financials", "C": "Financials", "V": "Financials", "BRK-B": "Financials", "XOM": "Energy"}
# Per-share deltas of the options on T0 (model values; signs by option type).
DELTA_PS = {
    "SPY270917C00460000": 0.93,
    "QQQ270820C00420000": 0.62,
    "VIX270721C00025000": 0.30,
    "NVDA271015C00800000": 0.35,
    "AAPL270820P00200000": -0.25,
    "MSFT270917P00380000": -0.22,
    "TSLA270820C00300000": 0.38,
    "META270917P00450000": -0.15,
}


def token_for(email: str, role: str = "user", user_id: uuid.UUID | None = None) -> str:
    principal = Principal(user_id or demo_user_id(email), email, role)  # type: ignore[arg-type]
    return issue_access_token(principal, SECRET, 3600)


HF_TOKEN = token_for(HEDGE_FUND.email)
IND_TOKEN = token_for(INDIVIDUAL.email)
HNW_TOKEN = token_for(HIGH_NET_WORTH.email)
ADMIN_ID = uuid.uuid5(uuid.NAMESPACE_DNS, "ingest-book-admin")
ADMIN_TOKEN = token_for("demo_admin@sigmasight.com", "admin", ADMIN_ID)


def position_id(book: DemoBook, symbol: str) -> uuid.UUID:
    return next(book.position_id(p) for p in book.positions if p.symbol == symbol)


def trading_days(start: date, end: date) -> list[date]:
    holidays = {date(2026, 11, 26), date(2026, 12, 25), date(2026, 9, 7), date(2026, 10, 12)}
    out, day = [], start
    while day <= end:
        if day.weekday() < 5 and day not in holidays:
            out.append(day)
        day += timedelta(days=1)
    return out


async def install_market(db: Database) -> None:
    """Security master, NYSE days, fixture closes on P0 and T0, option Greeks on T0."""
    async with db.transaction() as s:
        for symbol in sorted(FIXTURE_CLOSE):
            occ = parse_occ(symbol)
            if occ is not None:
                continue
            kind = (
                "mutual_fund"
                if symbol in FUNDS
                else "etf"
                if symbol in ETFS
                else "index"
                if symbol == "VIX"
                else "stock"
            )
            await s.execute(
                sa.text(
                    "INSERT INTO marketdata.security (symbol, security_type, name, sector, industry) "
                    "VALUES (:s, :t, :n, :sec, :ind) ON CONFLICT DO NOTHING"
                ),
                {
                    "s": symbol,
                    "t": kind,
                    "n": f"{symbol} Inc." if kind == "stock" else f"{symbol} fund",
                    "sec": SECTORS.get(symbol, "Technology") if kind == "stock" else None,
                    "ind": "Test industry" if kind == "stock" else None,
                },
            )
        for symbol in sorted(FIXTURE_CLOSE):
            occ = parse_occ(symbol)
            if occ is None:
                continue
            await s.execute(
                sa.text(
                    "INSERT INTO marketdata.security (symbol, security_type, name, underlying_symbol, option_type, "
                    "strike_price, expiration_date, multiplier) VALUES (:s, 'option', :n, :u, :o, :k, :e, 100) "
                    "ON CONFLICT DO NOTHING"
                ),
                {
                    "s": symbol,
                    "n": symbol,
                    "u": occ.underlying,
                    "o": occ.option_type,
                    "k": occ.strike_price,
                    "e": occ.expiration_date,
                },
            )
        days = trading_days(date(2026, 9, 1), date(2026, 12, 31))
        for i, day in enumerate(days):
            await s.execute(
                sa.text(
                    "INSERT INTO marketdata.trading_day (trading_date, previous_trading_date, next_trading_date, "
                    "close_at) "
                    "VALUES (:d, :p, :n, :c) ON CONFLICT DO NOTHING"
                ),
                {
                    "d": day,
                    "p": days[i - 1] if i else None,
                    "n": days[i + 1] if i + 1 < len(days) else None,
                    "c": datetime(day.year, day.month, day.day, 21, 0, tzinfo=UTC),
                },
            )
        for day in (P0, T0):
            await set_closes(s, day, FIXTURE_CLOSE)
        for book in DEMO_BOOKS:
            for pos in book.positions:
                if pos.symbol in DELTA_PS:
                    await put_greek(s, book, pos.symbol, T0, DELTA_PS[pos.symbol])


async def set_closes(s: Any, day: date, closes: dict[str, Decimal], source: str = "fixture") -> None:
    await s.execute(
        sa.text(
            "INSERT INTO marketdata.daily_price (symbol, price_date, close, source) VALUES (:s, :d, :c, :src) "
            "ON CONFLICT (symbol, price_date) DO UPDATE SET close = EXCLUDED.close, source = EXCLUDED.source"
        ),
        [{"s": sym, "d": day, "c": px, "src": source} for sym, px in closes.items()],
    )


def greek_values(book: DemoBook, symbol: str, delta_ps: float) -> dict[str, Any]:
    pos = next(p for p in book.positions if p.symbol == symbol)
    occ = parse_occ(symbol)
    assert occ is not None
    contracts = float(pos.quantity)
    spot = float(FIXTURE_CLOSE[occ.underlying])
    return {
        "pid": book.position_id(pos),
        "pf": book.portfolio_id,
        "sym": symbol,
        "und": occ.underlying,
        "q": pos.quantity,
        "delta": delta_ps * contracts * 100,
        "gamma": 0.001 * contracts * 100,
        "theta": -0.05 * contracts * 100,
        "vega": 0.4 * contracts * 100,
        "rho": 0.2 * contracts * 100,
        "dd": Decimal(str(round(delta_ps * contracts * 100 * spot, 2))),
        "dg": Decimal(str(round(0.001 * contracts * 100 * spot * spot / 100, 2))),
        "s": FIXTURE_CLOSE[occ.underlying],
        "dps": delta_ps,
        "mp": float(FIXTURE_CLOSE[symbol]),
    }


async def put_greek(s: Any, book: DemoBook, symbol: str, day: date, delta_ps: float) -> None:
    await s.execute(
        sa.text(
            "INSERT INTO greeks.position_greek (position_id, calculation_date, portfolio_id, symbol, "
            "underlying_symbol, "
            "quantity, delta, gamma, theta, vega, rho, dollar_delta, dollar_gamma_1pct, underlying_price, model_price, "
            "delta_ps, status, engine_version) VALUES (:pid, :d, :pf, :sym, :und, :q, :delta, :gamma, :theta, :vega, "
            ":rho, :dd, :dg, :s, :mp, :dps, 'ok', 'test') ON CONFLICT (position_id, calculation_date) DO UPDATE SET "
            "delta = EXCLUDED.delta, delta_ps = EXCLUDED.delta_ps, dollar_delta = EXCLUDED.dollar_delta"
        ),
        {**greek_values(book, symbol, delta_ps), "d": day},
    )


@dataclass
class Harness:
    """A migrated, seeded, priced database and an ingest service wired to an InProcessBus."""

    url: str
    name: str
    db: Database
    bus: InProcessBus
    service: Service
    events: list[PortfolioUpdated] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.service.app), base_url="http://t")

    async def get(self, path: str, token: str | None = HF_TOKEN, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.client() as c:
            return await c.get(path, headers=headers, **kw)

    async def send(self, method: str, path: str, token: str | None = HF_TOKEN, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        async with self.client() as c:
            return await c.request(method, path, headers=headers, **kw)

    async def value(self, as_of: date = T0, books: tuple[DemoBook, ...] = DEMO_BOOKS) -> list[GreeksComputed]:
        """Publish `greeks.computed` for each book and wait for the valuations."""
        sent = [GreeksComputed(as_of=as_of, portfolio_id=b.portfolio_id, run_id=uuid.uuid4()) for b in books]
        for evt in sent:
            await self.bus.publish(evt)
        await self.bus.drain()
        return sent

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.session() as s:
            return (await s.execute(sa.text(sql), params)).scalar()


async def open_harness(pg_admin_url: str, tag: str) -> Harness:
    name = f"sigmasight_ingest_{tag}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, SERVICES)
    db = Database(url, pool_size=4)
    bus = InProcessBus()
    service = create_service(Settings(jwt_secret=SECRET, database_url=url), db, bus)
    harness = Harness(url, name, db, bus, service)

    async def collect(evt: PortfolioUpdated) -> None:
        harness.events.append(evt)

    bus.subscribe("test", PortfolioUpdated, collect)
    await bus.start()
    await seed(db)
    await install_market(db)
    return harness


async def close_harness(harness: Harness, pg_admin_url: str) -> None:
    await harness.service.plumbing.runner.shutdown()
    await harness.bus.close()
    await harness.db.close()
    await drop_database(pg_admin_url, harness.name)
