"""Fixtures of the stress integration tests: a database with the marketdata, ingest, greeks, factors and
stress schemas (factor registry and scenario catalogue seeded), an NYSE-like calendar, and helpers that
insert inputs into the other services' tables (positions, valuations, Greeks, prices, rates, factor model)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import make_migrated_database, worker_suffix

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import SnapshotCreated, StressComputed
from common.service import Service
from common.testing import drop_database
from stress.main import create_service
from stress.settings import Settings

SECRET = "stress-test-secret-0123456789abcdef0123"
# NYSE full-day holidays of the calendar years the tests use.
HOLIDAYS = {
    date(2025, 1, 1), date(2025, 1, 20), date(2025, 2, 17), date(2025, 4, 18), date(2025, 5, 26),
    date(2025, 6, 19), date(2025, 7, 4), date(2025, 9, 1), date(2025, 11, 27), date(2025, 12, 25),
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
    date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25),
}  # fmt: skip
CAL_START, CAL_END = date(2025, 1, 2), date(2026, 12, 31)


def trading_days(start: date = CAL_START, end: date = CAL_END) -> list[date]:
    """Weekdays that are not NYSE holidays, in [start, end]."""
    out, d = [], start
    while d <= end:
        if d.weekday() < 5 and d not in HOLIDAYS:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.fixture(scope="session")
async def stress_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"sigmasight_stress_{worker_suffix()}"
    url = await make_migrated_database(
        pg_admin_url, name, services=("marketdata", "ingest", "greeks", "factors", "stress")
    )
    db = Database(url, pool_size=2)
    from factors.seed import seed as seed_factors
    from stress.catalogue import seed_scenarios

    await seed_factors(db)
    await seed_scenarios(db)
    days = trading_days()
    async with db.transaction() as s:
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.trading_day (trading_date, previous_trading_date, next_trading_date, close_at)"
                " VALUES (:d, :p, :n, :c)"
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
    await db.close()
    yield url
    await drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
async def stress_db(stress_db_url: str) -> AsyncIterator[Database]:
    db = Database(stress_db_url, pool_size=4)
    yield db
    await db.close()


class Seeder:
    """Inserts inputs the way ingest, greeks and marketdata store them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def execute(self, sql: str, params: Any = None) -> None:
        async with self.db.transaction() as s:
            await s.execute(sa.text(sql), params or {})

    async def portfolio(
        self, *, user_id: uuid.UUID | None = None, cash: str = "0", is_default: bool = True, status: str = "active"
    ) -> uuid.UUID:
        pid = uuid.uuid4()
        await self.execute(
            "INSERT INTO ingest.portfolio (id, user_id, name, cash_balance, is_default, status)"
            " VALUES (:id, :u, :n, :c, :d, :s)",
            {
                "id": pid,
                "u": user_id or uuid.uuid4(),
                "n": f"p-{pid.hex[:8]}",
                "c": Decimal(cash),
                "d": is_default,
                "s": status,
            },
        )
        return pid

    async def position(
        self,
        portfolio_id: uuid.UUID,
        symbol: str,
        quantity: str,
        entry_price: str,
        entry_date: date,
        *,
        option: tuple[str, str, date] | None = None,
        underlying: str | None = None,
        status: str = "open",
        exit_price: str | None = None,
        exit_date: date | None = None,
    ) -> uuid.UUID:
        pos_id = uuid.uuid4()
        q = Decimal(quantity)
        if option is None:
            kind, ptype, mult, opt_type, strike, expiry = "stock", ("LONG" if q > 0 else "SHORT"), 1, None, None, None
        else:
            opt_type, strike_s, expiry = option
            kind, mult, strike = "option", 100, Decimal(strike_s)
            ptype = ("L" if q > 0 else "S") + opt_type
        realized = None
        if exit_price is not None:
            realized = q * (Decimal(exit_price) - Decimal(entry_price)) * mult
        await self.execute(
            "INSERT INTO ingest.position (id, portfolio_id, symbol, instrument_type, position_type, quantity,"
            " multiplier, underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date,"
            " status, exit_price, exit_date, realized_pnl, source)"
            " VALUES (:id, :pf, :sym, :kind, :pt, :q, :m, :u, :ot, :k, :x, :ep, :ed, :st, :xp, :xd, :rp, 'api')",
            {
                "id": pos_id,
                "pf": portfolio_id,
                "sym": symbol,
                "kind": kind,
                "pt": ptype,
                "q": q,
                "m": mult,
                "u": underlying or symbol,
                "ot": opt_type,
                "k": strike,
                "x": expiry,
                "ep": Decimal(entry_price),
                "ed": entry_date,
                "st": status,
                "xp": Decimal(exit_price) if exit_price else None,
                "xd": exit_date,
                "rp": realized,
            },
        )
        return pos_id

    async def valuation(
        self,
        position_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        day: date,
        *,
        last_price: str | None,
        market_value: str | None,
        dollar_exposure: str | None,
        notional: str | None,
        daily_pnl: str | None = "0",
        unrealized_pnl: str | None = "0",
        price_source: str | None = "close",
    ) -> None:
        def d(v: str | None) -> Decimal | None:
            return None if v is None else Decimal(v)

        await self.execute(
            "INSERT INTO ingest.position_valuation (position_id, valuation_date, portfolio_id, last_price, price_date,"
            " price_source, market_value, dollar_exposure, notional, unrealized_pnl, daily_pnl)"
            " VALUES (:p, :d, :pf, :lp, :d, :ps, :mv, :de, :n, :u, :dp)",
            {
                "p": position_id,
                "d": day,
                "pf": portfolio_id,
                "lp": d(last_price),
                "ps": price_source if last_price is not None else None,
                "mv": d(market_value),
                "de": d(dollar_exposure),
                "n": d(notional),
                "u": d(unrealized_pnl),
                "dp": d(daily_pnl),
            },
        )

    async def greek(
        self,
        position_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        day: date,
        *,
        dollar_gamma_1pct: str,
        theta: float,
        vega: float,
        rho: float,
        status: str = "ok",
    ) -> None:
        await self.execute(
            "INSERT INTO greeks.position_greek (position_id, calculation_date, portfolio_id, symbol, underlying_symbol,"
            " delta, gamma, theta, vega, rho, dollar_gamma_1pct, status, engine_version)"
            " VALUES (:p, :d, :pf, 'OPT', 'UND', 50.0, 2.0, :t, :v, :r, :g, :s, 'test')",
            {
                "p": position_id,
                "d": day,
                "pf": portfolio_id,
                "t": theta,
                "v": vega,
                "r": rho,
                "g": Decimal(dollar_gamma_1pct),
                "s": status,
            },
        )

    async def batch_run(self, as_of: date, *, backfill: bool) -> uuid.UUID:
        run_id = uuid.uuid4()
        await self.execute(
            "INSERT INTO marketdata.batch_run (id, job_name, trigger, as_of_date, cascade, force, include_correlations,"
            " params, steps, scope_hash, status)"
            " VALUES (:id, 'run_all', 'manual', :d, true, false, false, CAST(:params AS jsonb), ARRAY['snapshots'],"
            " :h, 'running')",
            {"id": run_id, "d": as_of, "params": '{"backfill": true}' if backfill else "{}", "h": run_id.bytes},
        )
        return run_id

    async def option_greek(
        self,
        position_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        day: date,
        *,
        symbol: str,
        underlying: str,
        option_type: str,
        strike: str,
        expiry: date,
        quantity: str,
        spot: float,
        sigma: float,
        delta_ps: float,
        gamma_ps: float,
        years: float,
        rate: float = 0.04,
        dividend: float = 0.0,
        status: str = "ok",
    ) -> None:
        """A greeks.position_greek row with the BSM inputs stress revalues options with."""
        q = float(quantity)
        qm = q * 100
        await self.execute(
            "INSERT INTO greeks.position_greek (position_id, calculation_date, portfolio_id, symbol, underlying_symbol,"
            " option_type, strike_price, expiration_date, multiplier, quantity, delta, gamma, theta, vega, rho,"
            " dollar_delta, dollar_gamma_1pct, underlying_price, implied_volatility, iv_source, delta_ps, gamma_ps,"
            " theta_ps, vega_ps, rho_ps, risk_free_rate, dividend_yield, time_to_expiry_years, status,"
            " engine_version)"
            " VALUES (:p, :d, :pf, :sym, :u, :ot, :k, :x, 100, :q, :delta, :gamma, -1.0, 1.0, 1.0, :dd, :dg, :s,"
            " :sigma, 'market', :dps, :gps, -0.01, 0.01, 0.01, :r, :dy, :t, :st, 'test')",
            {
                "p": position_id,
                "d": day,
                "pf": portfolio_id,
                "sym": symbol,
                "u": underlying,
                "ot": option_type,
                "k": Decimal(strike),
                "x": expiry,
                "q": Decimal(quantity),
                "delta": delta_ps * qm,
                "gamma": gamma_ps * qm,
                "dd": Decimal(str(round(delta_ps * qm * spot, 2))),
                "dg": Decimal(str(round(gamma_ps * qm * spot * spot / 100, 2))),
                "s": Decimal(str(spot)),
                "sigma": sigma,
                "dps": delta_ps,
                "gps": gamma_ps,
                "r": rate,
                "dy": dividend,
                "t": years,
                "st": status,
            },
        )

    async def security(self, symbol: str, security_type: str = "stock") -> None:
        await self.execute(
            "INSERT INTO marketdata.security (symbol, security_type) VALUES (:s, :t) ON CONFLICT DO NOTHING",
            {"s": symbol, "t": security_type},
        )

    async def prices(self, symbol: str, days: list[date], closes: list[float], source: str = "fixture") -> None:
        """Adjusted closes (close = adj_close) of `symbol`, replacing stored ones."""
        await self.security(symbol, "etf" if symbol == "SPY" else "stock")
        async with self.db.transaction() as s:
            await s.execute(
                sa.text(
                    "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source)"
                    " VALUES (:s, :d, :c, :c, :src) ON CONFLICT (symbol, price_date)"
                    " DO UPDATE SET close = excluded.close, adj_close = excluded.adj_close"
                ),
                [
                    {"s": symbol, "d": d, "c": Decimal(str(round(c, 4))), "src": source}
                    for d, c in zip(days, closes, strict=True)
                ],
            )

    async def rate(self, series: str, days: list[date], value: float) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                sa.text(
                    "INSERT INTO marketdata.rate_observation (series_id, observation_date, value)"
                    " VALUES (:s, :d, :v) ON CONFLICT DO NOTHING"
                ),
                [{"s": series, "d": d, "v": value} for d in days],
            )

    async def factor_model(
        self, as_of: date, betas: dict[str, dict[str, float]], vols: dict[str, float] | None = None
    ) -> uuid.UUID:
        """A model-basis factor matrix (diagonal covariance) and regression betas of `betas` on `as_of`."""
        codes = ["market", "momentum", "value", "growth", "quality", "size", "low_volatility", "interest_rate"]
        vols = vols or {c: (0.01 if c == "market" else 0.004) for c in codes}
        async with self.db.transaction() as s:
            ids = {r.code: r.id for r in await s.execute(sa.text("SELECT id, code FROM factors.factor_definition"))}
            matrix_id = (
                await s.execute(
                    sa.text(
                        "INSERT INTO factors.factor_matrix (calculation_date, basis, lookback_days, window_start_date,"
                        " window_end_date, observations, factor_codes) VALUES (:d, 'model', 252, :lo, :d, 252, :codes)"
                        " ON CONFLICT (calculation_date, lookback_days, basis) DO UPDATE SET observations = 252"
                        " RETURNING id"
                    ),
                    {"d": as_of, "lo": as_of - timedelta(days=365), "codes": codes},
                )
            ).scalar_one()
            await s.execute(sa.text("DELETE FROM factors.factor_matrix_cell WHERE matrix_id = :m"), {"m": matrix_id})
            await s.execute(
                sa.text(
                    "INSERT INTO factors.factor_matrix_cell (matrix_id, factor_1, factor_2, correlation, covariance)"
                    " VALUES (:m, :a, :b, :rho, :cov)"
                ),
                [
                    {
                        "m": matrix_id,
                        "a": a,
                        "b": b,
                        "rho": 1.0 if a == b else 0.0,
                        "cov": vols[a] ** 2 if a == b else 0.0,
                    }
                    for a in codes
                    for b in codes
                ],
            )
            for symbol, per_factor in betas.items():
                await s.execute(
                    sa.text(
                        "INSERT INTO factors.underlying_regression (symbol, calculation_date, matrix_id,"
                        " window_start_date, window_end_date, observations, quality_flag, beta_source)"
                        " VALUES (:s, :d, :m, :lo, :d, 252, 'full_history', 'regression')"
                        " ON CONFLICT (symbol, calculation_date) DO UPDATE SET matrix_id = excluded.matrix_id"
                    ),
                    {"s": symbol, "d": as_of, "m": matrix_id, "lo": as_of - timedelta(days=365)},
                )
                await s.execute(
                    sa.text(
                        "INSERT INTO factors.underlying_factor_beta (symbol, calculation_date, factor_id, beta)"
                        " VALUES (:s, :d, :f, :b) ON CONFLICT (symbol, calculation_date, factor_id)"
                        " DO UPDATE SET beta = excluded.beta"
                    ),
                    [{"s": symbol, "d": as_of, "f": ids[c], "b": per_factor.get(c, 0.0)} for c in codes],
                )
        return matrix_id

    async def portfolio_exposures(
        self,
        portfolio_id: uuid.UUID,
        as_of: date,
        exposures: dict[str, str],
        *,
        equity: str,
        gross: str,
        coverage: float = 1.0,
    ) -> None:
        """factors.portfolio_factor_exposure rows (status ok) of `exposures` {code: X_f}."""
        eq, gr = Decimal(equity), Decimal(gross)
        async with self.db.transaction() as s:
            ids = {r.code: r.id for r in await s.execute(sa.text("SELECT id, code FROM factors.factor_definition"))}
            await s.execute(
                sa.text(
                    "INSERT INTO factors.portfolio_factor_exposure (portfolio_id, calculation_date, factor_id,"
                    " exposure_dollar, beta, beta_gross, equity, gross_exposure, coverage_pct, status)"
                    " VALUES (:p, :d, :f, :x, :b, :bg, :eq, :gr, :cov, 'ok')"
                    " ON CONFLICT (portfolio_id, calculation_date, factor_id) DO UPDATE"
                    " SET exposure_dollar = excluded.exposure_dollar, beta = excluded.beta"
                ),
                [
                    {
                        "p": portfolio_id,
                        "d": as_of,
                        "f": ids[code],
                        "x": Decimal(x),
                        "b": float(Decimal(x) / eq) if eq > 0 else None,
                        "bg": float(Decimal(x) / gr) if gr > 0 else None,
                        "eq": eq,
                        "gr": gr,
                        "cov": coverage,
                    }
                    for code, x in exposures.items()
                ],
            )

    async def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            return [dict(r) for r in (await s.execute(sa.text(sql), params or {})).mappings()]

    async def snapshot(self, portfolio_id: uuid.UUID) -> dict[str, Any] | None:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    sa.text("SELECT * FROM stress.api_snapshot WHERE portfolio_id = :p ORDER BY snapshot_date"),
                    {"p": portfolio_id},
                )
            ).mappings()
            return {r["snapshot_date"]: dict(r) for r in rows} or None


@pytest.fixture(scope="session")
def seeder(stress_db: Database) -> Seeder:
    return Seeder(stress_db)


class Harness:
    """The stress service on an InProcessBus, with sinks collecting its stress.computed and
    snapshot.created events."""

    def __init__(self, service: Service, bus: InProcessBus) -> None:
        self.service = service
        self.bus = bus
        self.created: list[SnapshotCreated] = []
        self.computed: list[StressComputed] = []

    async def deliver(self, *events: Any) -> None:
        for event in events:
            await self.bus.publish(event)
        await self.bus.drain()

    def token(self, user_id: uuid.UUID, role: str = "user") -> str:
        return issue_access_token(Principal(user_id=user_id, email="u@example.com", role=role), SECRET, 3600)  # type: ignore[arg-type]


@pytest.fixture
async def harness(stress_db: Database) -> AsyncIterator[Harness]:
    bus = InProcessBus()
    service = create_service(Settings(jwt_secret=SECRET), stress_db, bus)
    h = Harness(service, bus)

    async def sink(evt: SnapshotCreated) -> None:
        h.created.append(evt)

    async def stress_sink(evt: StressComputed) -> None:
        h.computed.append(evt)

    bus.subscribe("test", SnapshotCreated, sink)
    bus.subscribe("test", StressComputed, stress_sink)
    await bus.start()
    await service.start()
    yield h
    await service.stop()
    await bus.close()


@pytest.fixture(scope="session")
def calendar_days() -> list[date]:
    """The trading days seeded into marketdata.trading_day."""
    return trading_days()
