"""Shared set-up of the position-correlation integration tests (imported by test_correlation_*.py).

A database with the marketdata, ingest and factors schemas and a synthetic market/book on
T0 = 2026-11-24 (Tuesday), 130 weekdays of history at price level 1,000,000 (so 4-dp storage does
not disturb the statistics):

* P1 (user U1, default) — calculations.md §10 Example 10b: AAA 30,000 + an AAA call with 10,000 of
  dollar delta (node 40,000), BBB 30,000, CCC −20,000, DDD 10,000, whose last 90 returns have exactly
  the Example 10b correlations; SHORTY 15,000 with 20 returns (insufficient_history); TINY 500
  (below_filter); an EEE call without a delta (missing_exposure). Tag "Mega Tech" on AAA, BBB, CCC.
  Valued on the last 10 trading days with the same exposures.
* P2 (user U1): a single AAA position (fewer than 2 nodes).
* P3 (user U2): HEDGE1 +50,000 and HEDGE2 −50,000 with ρ = 0.9; GAPA and GAPB whose return dates do
  not overlap (a NULL pair although each has ≥ 30 returns).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.service import Service

T0 = date(2026, 11, 24)
SECRET = "factors-correlation-tests-secret-0123456789abcdef"
SERVICES = ("marketdata", "ingest", "factors")
U1, U2, ADMIN, NOBODY = (uuid.uuid5(uuid.NAMESPACE_DNS, f"corr-{n}") for n in ("u1", "u2", "admin", "nobody"))
P1, P2, P3 = (uuid.uuid5(uuid.NAMESPACE_DNS, f"corr-p{n}") for n in "123")
BASE = 1_000_000.0
R_10B = np.array(
    [
        [1.00, 0.82, 0.75, 0.10],
        [0.82, 1.00, 0.68, -0.05],
        [0.75, 0.68, 1.00, 0.20],
        [0.10, -0.05, 0.20, 1.00],
    ]
)
AAA_CALL = "AAA261218C00100000"
EEE_CALL = "EEE261218C00050000"
SECTORS = {"AAA": "Technology", "BBB": "Technology", "CCC": "Technology", "DDD": "Energy", "HEDGE1": "Financial"}


def weekdays_until(end: date, count: int) -> list[date]:
    """The last `count` weekdays ending at `end` (the synthetic calendar)."""
    days: list[date] = []
    d = end
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


DAYS = weekdays_until(T0, 130)


def exact_correlation_returns(corr: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n × k returns whose sample correlation is exactly `corr`."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, corr.shape[0]))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / (n - 1))).T
    return 0.01 * z @ np.linalg.cholesky(corr).T


def _closes(returns: np.ndarray) -> np.ndarray:
    return np.vstack([np.full(returns.shape[1], BASE), BASE * np.cumprod(1.0 + returns, axis=0)])


def synthetic_closes() -> dict[str, list[float | None]]:
    """Adjusted closes per symbol on DAYS (None = no row)."""
    rng = np.random.default_rng(42)
    n = len(DAYS)
    early = rng.standard_normal((n - 91, 4)) * 0.01
    window = exact_correlation_returns(R_10B, 90, seed=7)
    abcd = _closes(np.vstack([early, window]))
    hedge = _closes(
        np.vstack(
            [rng.standard_normal((n - 91, 2)) * 0.01, exact_correlation_returns(np.array([[1, 0.9], [0.9, 1]]), 90, 9)]
        )
    )
    other = _closes(rng.standard_normal((n - 1, 5)) * 0.01)
    out: dict[str, list[float | None]] = {}
    for j, sym in enumerate(("AAA", "BBB", "CCC", "DDD")):
        out[sym] = abcd[:, j].tolist()
    out["HEDGE1"], out["HEDGE2"] = hedge[:, 0].tolist(), hedge[:, 1].tolist()
    spy, shorty, tiny, gap, eee = (other[:, j].tolist() for j in range(5))
    out["SPY"], out["TINY"], out["EEE"] = spy, tiny, eee
    out["SHORTY"] = [None] * (n - 21) + shorty[-21:]
    out["GAPA"] = [None] * (n - 91) + gap[n - 91 : n - 45] + [None] * 45  # 45 returns early in the window
    out["GAPB"] = [None] * (n - 31) + gap[-31:]  # 30 returns at the end of the window
    return out


@dataclass(frozen=True)
class Pos:
    portfolio: uuid.UUID
    symbol: str
    exposure: float | None
    market_value: float
    ptype: str = "LONG"
    tags: tuple[str, ...] = ()

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(self.portfolio, self.symbol)

    @property
    def underlying(self) -> str:
        return self.symbol[:3] if self.symbol in (AAA_CALL, EEE_CALL) else self.symbol


BOOK: tuple[Pos, ...] = (
    Pos(P1, "AAA", 30_000.0, 30_000.0, tags=("Mega Tech",)),
    Pos(P1, AAA_CALL, 10_000.0, 1_500.0, "LC", tags=("Mega Tech",)),
    Pos(P1, "BBB", 30_000.0, 30_000.0, tags=("Mega Tech",)),
    Pos(P1, "CCC", -20_000.0, -20_000.0, "SHORT", tags=("Mega Tech",)),
    Pos(P1, "DDD", 10_000.0, 10_000.0),
    Pos(P1, "SHORTY", 15_000.0, 15_000.0),
    Pos(P1, "TINY", 500.0, 500.0),
    Pos(P1, EEE_CALL, None, 900.0, "LC"),
    Pos(P2, "AAA", 50_000.0, 50_000.0),
    Pos(P3, "HEDGE1", 50_000.0, 50_000.0),
    Pos(P3, "HEDGE2", -50_000.0, -50_000.0, "SHORT"),
    Pos(P3, "GAPA", 30_000.0, 30_000.0),
    Pos(P3, "GAPB", 30_000.0, 30_000.0),
)
VALUED_DAYS = DAYS[-10:]


async def load_synthetic(db: Database) -> None:
    """Reset the tables the tests touch and load the synthetic market and books."""
    async with db.transaction() as s:
        await s.execute(
            sa.text(
                "TRUNCATE factors.correlation_calculation, factors.job, ingest.position_tag, ingest.tag, "
                "ingest.position_valuation, ingest.position, ingest.portfolio, marketdata.daily_price, "
                "marketdata.trading_day, marketdata.symbol_alias, marketdata.security CASCADE"
            )
        )
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.trading_day (trading_date, previous_trading_date, next_trading_date, close_at) "
                "VALUES (:d, :p, :n, :c)"
            ),
            [
                {
                    "d": d,
                    "p": DAYS[i - 1] if i else None,
                    "n": DAYS[i + 1] if i + 1 < len(DAYS) else None,
                    "c": datetime(d.year, d.month, d.day, 21, tzinfo=UTC),
                }
                for i, d in enumerate(DAYS)
            ],
        )
        closes = synthetic_closes()
        await s.execute(
            sa.text("INSERT INTO marketdata.security (symbol, security_type, sector) VALUES (:s, :t, :sec)"),
            [{"s": sym, "t": "etf" if sym == "SPY" else "stock", "sec": SECTORS.get(sym)} for sym in closes],
        )
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source) "
                "VALUES (:s, :d, :c, :c, 'fixture')"
            ),
            [
                {"s": sym, "d": d, "c": round(c, 4)}
                for sym, series in closes.items()
                for d, c in zip(DAYS, series, strict=True)
                if c is not None
            ],
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (id, user_id, name, is_default, status, created_at) "
                "VALUES (:id, :u, :n, :d, 'active', now() - make_interval(mins => :o))"
            ),
            [
                {"id": P1, "u": U1, "n": "Example 10b", "d": True, "o": 3},
                {"id": P2, "u": U1, "n": "Single", "d": False, "o": 2},
                {"id": P3, "u": U2, "n": "Hedged", "d": True, "o": 1},
            ],
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position (id, portfolio_id, symbol, instrument_type, position_type, quantity, "
                "multiplier, underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, "
                "status, source) VALUES (:id, :p, :s, :it, :pt, :q, :m, :u, :ot, :k, :e, 1, :ed, 'open', 'api')"
            ),
            [_position_row(p) for p in BOOK],
        )
        tags = {name for p in BOOK for name in p.tags}
        tag_ids = {name: uuid.uuid5(U1, name) for name in tags}
        if tags:
            await s.execute(
                sa.text("INSERT INTO ingest.tag (id, user_id, name) VALUES (:id, :u, :n)"),
                [{"id": tag_ids[n], "u": U1, "n": n} for n in sorted(tags)],
            )
            await s.execute(
                sa.text("INSERT INTO ingest.position_tag (position_id, tag_id) VALUES (:p, :t)"),
                [{"p": p.id, "t": tag_ids[n]} for p in BOOK for n in p.tags],
            )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position_valuation (position_id, valuation_date, portfolio_id, market_value, "
                "dollar_exposure) VALUES (:id, :d, :p, :mv, :e)"
            ),
            [
                {"id": p.id, "d": d, "p": p.portfolio, "mv": p.market_value, "e": p.exposure}
                for p in BOOK
                for d in VALUED_DAYS
            ],
        )


def _position_row(p: Pos) -> dict[str, Any]:
    option = p.ptype in ("LC", "LP", "SC", "SP")
    qty = 1 if option else round((p.exposure or p.market_value) / 100)
    return {
        "id": p.id,
        "p": p.portfolio,
        "s": p.symbol,
        "it": "option" if option else "stock",
        "pt": p.ptype,
        "q": qty,
        "m": 100 if option else 1,
        "u": p.underlying,
        "ot": "C" if option else None,
        "k": 100 if option else None,
        "e": date(2026, 12, 18) if option else None,
        "ed": date(2026, 1, 5),
    }


async def set_exposure(db: Database, pos: Pos, exposure: float, days: Sequence[date] = (T0,)) -> None:
    """Change a position's valued exposure (and market value) on `days`."""
    async with db.transaction() as s:
        await s.execute(
            sa.text(
                "UPDATE ingest.position_valuation SET dollar_exposure = :e, market_value = :e "
                "WHERE position_id = :id AND valuation_date = ANY(:d)"
            ),
            {"e": exposure, "id": pos.id, "d": list(days)},
        )


def headers(user: uuid.UUID, role: str = "user") -> dict[str, str]:
    token = issue_access_token(Principal(user, f"{user}@example.com", role), SECRET, 3600)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Env:
    """A factors service on an InProcessBus over a migrated database."""

    url: str
    db: Database
    service: Service
    bus: InProcessBus

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.service.app), base_url="http://t")

    async def rows(self, sql: str, **params: object) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            return [dict(r) for r in (await s.execute(sa.text(sql), params)).mappings().all()]

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.db.session() as s:
            return (await s.execute(sa.text(sql), params)).scalar()


def build_env(url: str) -> Env:
    """The real factors service (factors.main.create_service) on `url`."""
    from factors.main import create_service
    from factors.settings import Settings

    db = Database(url, pool_size=4)
    bus = InProcessBus()
    service = create_service(Settings(jwt_secret=SECRET, database_url=url), db, bus)
    return Env(url, db, service, bus)
