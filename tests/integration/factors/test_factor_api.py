"""Factor routes on PostgreSQL: #31/#45 exposures, #32/#46 positions, #34 matrix, #35 matrix recompute,
#47 exposure job (api.md §4.4–4.6).

Two kinds of data: exact rows written with the repository (P1 on T0 and TP = the day before, so
numbers are known in advance) and a synthetic market (300 weekdays of SPY, the style ETFs, DGS10
and three stocks) on which the real FactorPipeline runs for #35 and #47 (P3 on TJ)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from common.app import create_service_app, jobs_router
from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import decode
from common.service import Plumbing
from factors import repository as repo
from factors.api_factors import create_factor_router
from factors.context import FactorsContext
from factors.models import metadata
from factors.registry import FACTORS
from factors.seed import seed
from factors.service import FactorPipeline
from factors.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "factors-api-tests-secret-0123456789abcdef0123"
SERVICES = ("marketdata", "ingest", "factors")
U1, U2, ADMIN = (uuid.uuid5(uuid.NAMESPACE_DNS, f"facapi-{n}") for n in ("u1", "u2", "admin"))
P1, P2, P3 = (uuid.uuid5(uuid.NAMESPACE_DNS, f"facapi-p{n}") for n in "123")
FID = {f.code: f.id for f in FACTORS}
PROXIES = ("SPY", "MTUM", "VTV", "VUG", "QUAL", "IWM", "USMV")


def weekdays_until(end: date, count: int) -> list[date]:
    days: list[date] = []
    d = end
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


T0 = date(2026, 11, 24)
DAYS = weekdays_until(T0, 300)
TP, TJ = DAYS[-2], DAYS[-3]  # TP: seeded previous day (attribution); TJ: the pipeline's date


def market_closes() -> dict[str, np.ndarray]:
    """Adjusted closes on DAYS; NaN = no row. Styles = b·SPY + own noise; AAA = 1.2·SPY + noise."""
    rng = np.random.default_rng(11)
    n = len(DAYS) - 1
    spy = rng.normal(0.0004, 0.01, n)
    rets = {"SPY": spy}
    for j, sym in enumerate(PROXIES[1:]):
        rets[sym] = (0.8 + 0.1 * j) * spy + rng.normal(0, 0.004, n)
    rets["AAA"] = 1.2 * spy + 0.3 * (rets["VTV"] - 1.1 * spy) + rng.normal(0, 0.01, n)
    rets["BBB"] = 0.7 * spy + rng.normal(0, 0.012, n)
    rets["CCC"] = rng.normal(0, 0.02, n)
    out = {s: 100.0 * np.concatenate([[1.0], np.cumprod(1 + r)]) for s, r in rets.items()}
    out["BBB"][: len(DAYS) - 101] = np.nan  # 100 returns: limited_history
    out["CCC"][: len(DAYS) - 21] = np.nan  # 20 returns: default betas
    return out


CLOSES = market_closes()
DGS10 = 0.04 + np.cumsum(np.random.default_rng(5).normal(0, 0.0005, len(DAYS)))


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_factor_api_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, SERVICES)
    database = Database(url, pool_size=4)
    await seed(database)
    await load_market_and_books(database)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


async def load_market_and_books(db: Database) -> None:
    async with db.transaction() as s:
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
        await s.execute(
            sa.text("INSERT INTO marketdata.security (symbol, security_type) VALUES (:s, :t)"),
            [{"s": sym, "t": "etf" if sym in PROXIES else "stock"} for sym in CLOSES],
        )
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source) "
                "VALUES (:s, :d, :c, :c, 'fixture')"
            ),
            [
                {"s": sym, "d": d, "c": round(float(c), 4)}
                for sym, series in CLOSES.items()
                for d, c in zip(DAYS, series, strict=True)
                if np.isfinite(c)
            ],
        )
        await s.execute(
            sa.text(
                "INSERT INTO marketdata.rate_observation (series_id, observation_date, value) VALUES ('DGS10', :d, :v)"
            ),
            [{"d": d, "v": float(v)} for d, v in zip(DAYS, DGS10, strict=True)],
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (id, user_id, name, is_default, status, cash_balance, created_at) "
                "VALUES (:id, :u, :n, :d, 'active', 0, now() - make_interval(mins => :o))"
            ),
            [
                {"id": P1, "u": U1, "n": "Seeded", "d": True, "o": 3},
                {"id": P2, "u": U2, "n": "Never computed", "d": True, "o": 2},
                {"id": P3, "u": U1, "n": "Pipeline", "d": False, "o": 1},
            ],
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position (id, portfolio_id, symbol, instrument_type, position_type, quantity, "
                "multiplier, underlying_symbol, option_type, strike_price, expiration_date, entry_price, entry_date, "
                "status, source) VALUES (:id, :p, :s, :it, :pt, :q, :m, :u, :ot, :k, :e, 1, :ed, 'open', 'api')"
            ),
            [position_row(*p) for p in BOOK],
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position_valuation (position_id, valuation_date, portfolio_id, market_value, "
                "dollar_exposure) VALUES (:id, :d, :p, :e, :e)"
            ),
            [{"id": pid(p, s), "d": TJ, "p": p, "e": e} for p, s, _, e in BOOK if p == P3],
        )


PUT = "AAA261218P00100000"
BOOK: tuple[tuple[uuid.UUID, str, str, float], ...] = (
    (P1, "AAA", "LONG", 100_000.0),
    (P1, PUT, "LP", -20_000.0),
    (P1, "CCC", "LONG", 50_000.0),
    (P3, "AAA", "LONG", 100_000.0),
    (P3, "BBB", "SHORT", -30_000.0),
    (P3, "CCC", "LONG", 10_000.0),
)


def pid(portfolio: uuid.UUID, symbol: str) -> uuid.UUID:
    return uuid.uuid5(portfolio, symbol)


def position_row(portfolio: uuid.UUID, symbol: str, ptype: str, exposure: float) -> dict[str, Any]:
    option = symbol == PUT
    return {
        "id": pid(portfolio, symbol),
        "p": portfolio,
        "s": symbol,
        "it": "option" if option else "stock",
        "pt": ptype,
        "q": 1 if option else round(exposure / 100),
        "m": 100 if option else 1,
        "u": "AAA" if option else symbol,
        "ot": "P" if option else None,
        "k": 100 if option else None,
        "e": date(2026, 12, 18) if option else None,
        "ed": date(2026, 1, 5),
    }


# ---------------------------------------------------------------- exact rows (P1 on T0 and TP)

CODES3 = ["market", "value", "growth"]
RAW3 = ["SPY", "VTV", "VUG"]
R3 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -0.9], [0.0, -0.9, 1.0]])
SD3 = np.array([0.01, 0.005, 0.004])
BETAS = {  # underlying → (quality, source, {code: (beta, se, t, p, r2, vif)})
    "AAA": ("full_history", "regression", {
        "market": (1.2, 0.05, 24.0, 1e-60, 0.7, None),
        "value": (0.3, 0.1, 3.0, 0.003, 0.72, 5.26),
        "growth": (-0.1, 0.1, -1.0, 0.32, 0.70, 5.26),
        "interest_rate": (-2.0, 1.0, -2.0, 0.046, 0.71, None),
    }),
    "CCC": ("insufficient_history", "default", {
        "market": (1.0, None, None, None, None, None),
        "value": (0.0, None, None, None, None, None),
        "growth": (0.0, None, None, None, None, None),
        "interest_rate": (0.0, None, None, None, None, None),
    }),
}  # fmt: skip
P1_BOOK = [(s, e) for p, s, _, e in BOOK if p == P1]
EQUITY, GROSS = 200_000.0, 170_000.0


def cells(codes: list[str], corr: np.ndarray, sd: np.ndarray) -> list[tuple[str, str, float, float]]:
    cov = corr * np.outer(sd, sd)
    return [(a, b, float(corr[i, j]), float(cov[i, j])) for i, a in enumerate(codes) for j, b in enumerate(codes)]


def matrix_row(day: date, basis: str, codes: list[str], loadings: dict[str, float] | None) -> dict[str, Any]:
    return {
        "calculation_date": day,
        "basis": basis,
        "lookback_days": 252,
        "window_start_date": DAYS[-253],
        "window_end_date": day,
        "observations": 250,
        "factor_codes": codes,
        "market_loadings": loadings,
        "volatilities": None,
        "diagnostics": None,
        "flags": ["factor_correlation_high"],
        "engine_version": "test",
        "run_id": None,
    }


async def write_seeded_day(db: Database, day: date, loadings: dict[str, float]) -> None:
    async with db.transaction() as s:
        model = await repo.upsert_matrix(
            s, row=matrix_row(day, "model", CODES3, loadings), cells=cells(CODES3, R3, SD3)
        )
        raw = np.array([[1.0, 0.95, 0.97], [0.95, 1.0, 0.9], [0.97, 0.9, 1.0]])
        await repo.upsert_matrix(s, row=matrix_row(day, "raw", RAW3, None), cells=cells(RAW3, raw, SD3))
        regressions, betas = [], []
        for sym, (quality, source, by_code) in BETAS.items():
            obs = 250 if source == "regression" else 20
            regressions.append(
                (sym, day, model, DAYS[-253], day, obs, quality, source, 0.0001, 0.5, 0.16,
                 0.71 if source == "regression" else None, 6.2 if source == "regression" else None,
                 ["collinearity_warn"] if source == "regression" else [], "test", None)
            )  # fmt: skip
            betas += [(sym, day, FID[c], *v[:5], v[4], v[5]) for c, v in by_code.items()]
        await repo.upsert_regressions(s, regressions=regressions, betas=betas)
        positions = []
        totals: dict[str, float] = {}
        for sym, e in P1_BOOK:
            under = "AAA" if sym == PUT else sym
            quality, source, by_code = BETAS[under]
            for code, v in by_code.items():
                x = round(e * v[0], 2)
                totals[code] = totals.get(code, 0.0) + x
                positions.append((pid(P1, sym), day, FID[code], P1, sym, under, e, v[0], source, x, quality, None))
        dollars = np.array([list(totals.values())])  # (1 portfolio, F factors)
        f = dollars.shape[1]
        portfolio = repo.PortfolioExposureColumns(
            portfolio_id=[P1],
            factor_id=[FID[c] for c in totals],
            exposure_dollar=dollars,
            beta=dollars / EQUITY,
            beta_gross=dollars / GROSS,
            equity=np.array([EQUITY]),
            gross_exposure=np.array([GROSS]),
            contributing_positions=np.full((1, f), 3),
            largest_contributor=["AAA"] * f,
            coverage_pct=np.array([120_000 / GROSS]),
            positions_full=np.array([2]),
            positions_limited=np.array([0]),
            positions_default=np.array([1]),
            status=["ok"] * f,
            reason=[None] * f,
            flags=[["default_betas_used"]],
            excluded=["[]"],
            engine_version="test",
        )
        # Every position carries the same factors in the same order: per-position columns from each
        # position's first row, beta / exposure_dollar from every row (position-major).
        codes = list(next(iter(BETAS.values()))[2])
        k = len(codes)
        firsts = positions[::k]
        columns = repo.PositionExposureColumns(
            [FID[c] for c in codes],
            *(list(c) for c in zip(*[(r[0], r[3], r[4], r[5], r[6], r[8], r[10]) for r in firsts], strict=True)),  # type: ignore[arg-type]
            beta=[r[7] for r in positions],
            exposure_dollar=[r[9] for r in positions],
        )
        await repo.replace_exposures(s, portfolio_ids=[P1], as_of=day, positions=columns, portfolios=portfolio)


@pytest.fixture(autouse=True)
async def seeded(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(
            sa.text(
                "TRUNCATE factors.portfolio_factor_exposure, factors.position_factor_exposure, "
                "factors.underlying_factor_beta, factors.underlying_regression, factors.factor_matrix_cell, "
                "factors.factor_matrix, factors.correlation_calculation, factors.job, factors.outbox CASCADE"
            )
        )
    await write_seeded_day(db, TP, {"value": 0.9, "growth": 1.1})
    await write_seeded_day(db, T0, {"value": 0.92, "growth": 1.08})


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    bus = InProcessBus()
    plumbing = Plumbing.build("factors", db, bus, metadata)
    ctx = FactorsContext(Settings(jwt_secret=SECRET, database_url=db.url), db, bus, plumbing)
    app = create_service_app("factors", title="t", description="t", jwt_secret=SECRET, ready_check=plumbing.ready)

    async def load_job(ident: uuid.UUID) -> dict[str, Any] | None:
        async with db.session() as session:
            row = await plumbing.ledger.get(session, ident)
        return plumbing.ledger.to_api(row) if row else None

    app.include_router(jobs_router("factors", load_job))
    app.include_router(create_factor_router(ctx, FactorPipeline(ctx)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await plumbing.runner.shutdown()


def auth(user: uuid.UUID, role: str = "user") -> dict[str, str]:
    token = issue_access_token(Principal(user, f"{user}@example.com", role), SECRET, 3600)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


# ---------------------------------------------------------------- #45 / #31


async def test_portfolio_exposures_of_the_latest_date(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/api/v1/factors/exposures/{P1}", headers=auth(U1))
    assert r.status_code == 200, r.text
    body = r.json()
    data = body["data"]
    assert body["meta"]["as_of"] == T0.isoformat() and body["meta"]["data_source"] == "fixture"
    assert data["calculation_date"] == T0.isoformat() and data["data_status"] == "partial"  # CCC on default betas
    assert data["window"] == {"start_date": DAYS[-253].isoformat(), "end_date": T0.isoformat(), "observations": 250}
    assert (data["equity"], data["gross_exposure"]) == ("200000.00", "170000.00")
    factors = {f["code"]: f for f in data["factors"]}
    assert [f["code"] for f in data["factors"]] == [f.code for f in sorted(FACTORS, key=lambda f: f.display_order)]
    # X_M = 100,000·1.2 − 20,000·1.2 (long put: negative delta) + 50,000·1 (default beta)
    market = factors["market"]
    assert market["exposure_dollar"] == "146000.00" and market["status"] == "ok"
    assert market["beta"] == pytest.approx(146_000 / EQUITY) and market["beta_gross"] == pytest.approx(
        146_000 / GROSS, abs=1e-6
    )
    assert (market["name"], market["proxy"], market["largest_contributor"]) == ("Market", "SPY", "AAA")
    assert factors["value"]["exposure_dollar"] == "24000.00" and factors["growth"]["exposure_dollar"] == "-8000.00"
    assert factors["short_interest"] == {
        "code": "short_interest", "name": "Short Interest", "proxy": None, "beta": None, "beta_gross": None,
        "exposure_dollar": None, "largest_contributor": None, "contributing_positions": None,
        "status": "not_calculated", "reason": "no return series in v1",
    }  # fmt: skip
    assert factors["momentum"]["status"] == "not_calculated" and factors["momentum"]["beta"] is None
    # X_R = 80,000 · (−2.0): P&L per 1.00 yield change; DV01 per +1 bp.
    assert data["rate_sensitivity"] == {"exposure_dollar": "-160000.00", "dv01": "-16.00", "beta": -0.8}
    assert data["coverage"] == {
        "positions_total": 3, "full_history": 2, "limited_history": 0, "default_betas": 1, "excluded": [],
        "coverage_pct": pytest.approx(120_000 / GROSS, abs=1e-6),
    }  # fmt: skip
    assert data["flags"] == ["default_betas_used"] and data["attribution"] is None


async def test_risk_factors_reads_the_default_portfolio_and_an_older_date(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/risk/factors", headers=auth(U1))
    assert r.status_code == 200 and r.json()["data"]["portfolio_id"] == str(P1)
    older = await client.get("/api/v1/risk/factors", params={"as_of_date": TP.isoformat()}, headers=auth(U1))
    assert older.json()["data"]["calculation_date"] == TP.isoformat()
    assert older.json()["data"]["data_status"] == "stale"
    weekend = T0 + timedelta(days=4)  # Saturday after T0: newest on or before
    assert (
        await client.get("/api/v1/risk/factors", params={"as_of_date": weekend.isoformat()}, headers=auth(U1))
    ).json()["data"]["calculation_date"] == T0.isoformat()


async def test_attribution_uses_the_previous_days_exposures(client: httpx.AsyncClient) -> None:
    r = await client.get(
        f"/api/v1/factors/exposures/{P1}", params={"include": "attribution", "attribution_days": 1}, headers=auth(U1)
    )
    assert r.status_code == 200, r.text
    attribution = r.json()["data"]["attribution"]
    closes = {s: round(float(CLOSES[s][-1]), 4) / round(float(CLOSES[s][-2]), 4) - 1 for s in ("SPY", "VTV", "VUG")}
    market = 146_000 * closes["SPY"]
    value = 24_000 * (closes["VTV"] - 0.9 * closes["SPY"])  # TP's loading b_V = 0.9
    assert (attribution["start_date"], attribution["end_date"], attribution["days"]) == (
        T0.isoformat(),
        T0.isoformat(),
        1,
    )
    assert float(attribution["market_contribution"]) == pytest.approx(market, abs=0.01)
    styles = {s["code"]: s["contribution"] for s in attribution["style_contributions"]}
    assert float(styles["value"]) == pytest.approx(value, abs=0.01)
    dy = DGS10[-1] - DGS10[-2]
    assert float(styles["interest_rate"]) == pytest.approx(-160_000 * dy, abs=0.01)  # no b_R stored for TP: 0
    assert attribution["portfolio_pnl"] is None and attribution["non_additive"] is True  # no snapshots published


# ---------------------------------------------------------------- #46 / #32


async def test_position_exposures_carry_betas_with_diagnostics(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/api/v1/factors/exposures/{P1}/positions", headers=auth(U1))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["page"] == {"limit": 50, "offset": 0, "total": 3, "has_more": False}
    items = body["data"]
    assert [i["symbol"] for i in items] == ["AAA", PUT, "CCC"]
    put = items[1]
    assert (put["underlying_symbol"], put["position_type"], put["dollar_exposure"]) == ("AAA", "LP", "-20000.00")
    assert put["betas"]["market"] == 1.2 and put["exposure_dollar"]["market"] == "-24000.00"
    assert put["betas"]["momentum"] is None and put["exposure_dollar"]["momentum"] is None
    assert put["t_stats"]["market"] == 24.0 and put["p_values"]["value"] == 0.003
    assert put["r_squared"]["value"] == 0.72 and put["vif"]["growth"] == 5.26 and put["std_errors"]["market"] == 0.05
    assert (put["condition_number"], put["r_squared_joint"], put["observations"]) == (6.2, 0.71, 250)
    assert (put["quality_flag"], put["beta_source"], put["covered"]) == ("full_history", "regression", True)
    assert put["flags"] == ["collinearity_warn"]
    ccc = items[2]
    assert (ccc["quality_flag"], ccc["beta_source"], ccc["covered"]) == ("insufficient_history", "default", False)
    assert ccc["betas"]["market"] == 1.0 and ccc["betas"]["value"] == 0.0 and ccc["t_stats"]["market"] is None
    for item in items:  # exposure_dollar.<code> = dollar_exposure × betas.<code>
        assert float(item["exposure_dollar"]["market"]) == pytest.approx(
            float(item["dollar_exposure"]) * item["betas"]["market"], abs=0.005
        )


async def test_position_filters_sort_and_paging(client: httpx.AsyncClient) -> None:
    url = "/api/v1/risk/factors/positions"
    h = auth(U1)
    by_exposure = (await client.get(url, params={"sort": "-dollar_exposure"}, headers=h)).json()["data"]
    assert [i["symbol"] for i in by_exposure] == ["AAA", "CCC", PUT]
    by_beta = (await client.get(url, params={"sort": "beta.value,symbol"}, headers=h)).json()["data"]
    assert [i["symbol"] for i in by_beta] == ["CCC", "AAA", PUT]
    page = (await client.get(url, params={"limit": 1, "offset": 1}, headers=h)).json()
    assert page["page"] == {"limit": 1, "offset": 1, "total": 3, "has_more": True} and len(page["data"]) == 1
    past = (await client.get(url, params={"limit": 2, "offset": 10}, headers=h)).json()
    assert past["data"] == [] and past["page"]["total"] == 3
    options = (await client.get(url, params={"type": "lp"}, headers=h)).json()
    assert [i["symbol"] for i in options["data"]] == [PUT] and options["page"]["total"] == 1
    defaults = (await client.get(url, params={"quality": "insufficient_history"}, headers=h)).json()["data"]
    assert [i["symbol"] for i in defaults] == ["CCC"]
    narrow = (await client.get(url, params={"factors": "market,Value"}, headers=h)).json()["data"][0]
    assert set(narrow["betas"]) == set(narrow["t_stats"]) == set(narrow["exposure_dollar"]) == {"market", "value"}


# ---------------------------------------------------------------- #34


async def test_model_matrix_with_diagnostics(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/risk/correlations/factors/matrix", headers=auth(U2))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["basis"], data["calculation_date"], data["lookback_days"]) == ("model", T0.isoformat(), 252)
    assert data["factors"] == data["series"] == CODES3
    assert data["correlations"] == R3.tolist()
    cov = R3 * np.outer(SD3, SD3)
    assert np.allclose(np.array(data["covariance_daily"]), cov, rtol=1e-6)
    assert data["annualized_volatility"]["market"] == pytest.approx(0.01 * math.sqrt(252), abs=1e-6)
    assert data["market_loadings"] == {"value": 0.92, "growth": 1.08}
    diag = data["diagnostics"]
    assert diag["condition_number"] == pytest.approx(math.sqrt(1.9 / 0.1), abs=1e-6)
    assert diag["vif"]["value"] == pytest.approx(1 / (1 - 0.81), abs=1e-6) and diag["vif"]["market"] == pytest.approx(
        1.0
    )
    assert (diag["min_off_diagonal"], diag["max_off_diagonal"]) == (-0.9, 0.0)
    assert diag["mean_off_diagonal"] == pytest.approx(-0.3)
    assert data["high_correlation_pairs"] == [{"factor_1": "value", "factor_2": "growth", "correlation": -0.9}]
    assert data["flags"] == ["factor_correlation_high"]


async def test_raw_matrix_maps_proxies_to_codes_and_is_not_flagged(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/risk/correlations/factors/matrix",
        params={"basis": "RAW", "as_of_date": TP.isoformat()},
        headers=auth(U1),
    )
    data = r.json()["data"]
    assert data["basis"] == "raw" and data["calculation_date"] == TP.isoformat()
    assert data["series"] == ["SPY", "VTV", "VUG"] and data["factors"] == CODES3
    assert data["market_loadings"] is None and data["flags"] == []
    assert len(data["high_correlation_pairs"]) == 3  # listed for transparency


# ---------------------------------------------------------------- errors


async def test_not_calculated_and_other_users_portfolios(client: httpx.AsyncClient) -> None:
    for url in (f"/api/v1/factors/exposures/{P2}", f"/api/v1/factors/exposures/{P2}/positions", "/api/v1/risk/factors"):
        r = await client.get(url, headers=auth(U2))
        assert r.status_code == 404 and error(r)["code"] == "NOT_CALCULATED", url
        assert error(r)["hint"] == "POST /api/v1/factors/calculate"
    early = await client.get(f"/api/v1/factors/exposures/{P1}", params={"as_of_date": "2026-01-02"}, headers=auth(U1))
    assert early.status_code == 404 and error(early)["code"] == "NOT_CALCULATED"
    matrix = await client.get(
        "/api/v1/risk/correlations/factors/matrix", params={"lookback_days": 500}, headers=auth(U1)
    )
    assert matrix.status_code == 404 and error(matrix)["hint"] == "POST /api/v1/risk/correlations/factors/calculate"
    for url in (f"/api/v1/factors/exposures/{P1}", f"/api/v1/factors/exposures/{P1}/positions"):
        r = await client.get(url, headers=auth(U2))
        assert r.status_code == 404 and error(r)["code"] == "PORTFOLIO_NOT_FOUND"
    r = await client.get("/api/v1/risk/factors", params={"portfolio_id": str(P1)}, headers=auth(U2))
    assert r.status_code == 404 and error(r)["code"] == "PORTFOLIO_NOT_FOUND"
    r = await client.post("/api/v1/factors/calculate", json={"portfolio_id": str(P1)}, headers=auth(U2))
    assert r.status_code == 404 and error(r)["code"] == "PORTFOLIO_NOT_FOUND"
    assert (await client.get(f"/api/v1/factors/exposures/{P1}", headers=auth(ADMIN, "admin"))).status_code == 200
    assert (await client.get(f"/api/v1/factors/exposures/{P1}")).status_code == 401


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/risk/correlations/factors/matrix", {"basis": "pca"}, "query.basis"),
        ("/api/v1/risk/correlations/factors/matrix", {"lookback_days": 59}, "query.lookback_days"),
        ("/api/v1/risk/correlations/factors/matrix", {"as_of_date": "2026-13-01"}, "query.as_of_date"),
        ("/api/v1/risk/factors", {"include": "everything"}, "query.include"),
        ("/api/v1/risk/factors", {"attribution_days": 0}, "query.attribution_days"),
        ("/api/v1/risk/factors/positions", {"sort": "-beta.short_interest"}, "query.sort"),
        ("/api/v1/risk/factors/positions", {"limit": 1001}, "query.limit"),
        ("/api/v1/risk/factors/positions", {"quality": "great"}, "query.quality"),
        ("/api/v1/risk/factors/positions", {"factors": "market,size,alpha"}, "query.factors"),
        ("/api/v1/risk/factors/positions", {"type": "LONG,CALL"}, "query.type"),
    ],
)
async def test_bad_parameters_are_422_in_the_envelope(
    client: httpx.AsyncClient, url: str, params: dict[str, Any], field: str
) -> None:
    r = await client.get(url, params=params, headers=auth(U1))
    assert r.status_code == 422, r.text
    assert error(r)["code"] == "VALIDATION_ERROR" and error(r)["details"][0]["field"] == field


async def test_bad_bodies_are_422(client: httpx.AsyncClient) -> None:
    h = auth(U1)
    for body in ({}, {"portfolio_id": str(P3), "force": "maybe"}, {"portfolio_id": str(P3), "extra": 1}):
        r = await client.post("/api/v1/factors/calculate", json=body, headers=h)
        assert r.status_code == 422 and error(r)["code"] == "VALIDATION_ERROR", body
    r = await client.post("/api/v1/risk/correlations/factors/calculate", json={"lookback_days": 30}, headers=h)
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "body.lookback_days"
    r = await client.post("/api/v1/risk/correlations/factors/calculate", json={"lookback_days": 500}, headers=h)
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "body.lookback_days"


async def test_short_factor_history_is_422_with_the_series_counts(client: httpx.AsyncClient, db: Database) -> None:
    early = DAYS[40]  # 40 returns in the window
    r = await client.post(
        "/api/v1/risk/correlations/factors/calculate", json={"as_of_date": early.isoformat()}, headers=auth(U1)
    )
    assert r.status_code == 422, r.text
    details = {d["field"]: d["value"] for d in error(r)["details"]}
    assert details["SPY"] == 40 and details["listwise"] == 40
    r = await client.post(
        "/api/v1/factors/calculate", json={"portfolio_id": str(P3), "as_of_date": early.isoformat()}, headers=auth(U1)
    )
    assert r.status_code == 422 and {d["field"] for d in error(r)["details"]} >= {"SPY", "MTUM", "listwise"}
    async with db.session() as s:
        assert (await s.execute(sa.text("SELECT count(*) FROM factors.job"))).scalar() == 0


# ---------------------------------------------------------------- #35 / #47 on the real pipeline


async def test_matrix_calculate_builds_and_returns_the_model_matrix(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/risk/correlations/factors/calculate", json={"as_of_date": TJ.isoformat()}, headers=auth(U1)
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["basis"] == "model" and data["calculation_date"] == TJ.isoformat()
    assert data["factors"] == [
        "market",
        "momentum",
        "value",
        "growth",
        "quality",
        "size",
        "low_volatility",
        "interest_rate",
    ]
    corr = np.array(data["correlations"])
    assert np.allclose(np.diag(corr), 1.0) and np.allclose(corr, corr.T)
    assert np.allclose(corr[0, 1:], 0.0, atol=1e-9)  # every model factor is orthogonal to the market in sample
    assert data["window"]["observations"] == 252 and data["window"]["end_date"] == TJ.isoformat()
    assert data["market_loadings"]["value"] == pytest.approx(0.9, abs=0.1)  # VTV = 0.9·SPY + noise
    raw = await client.get(
        "/api/v1/risk/correlations/factors/matrix",
        params={"basis": "raw", "as_of_date": TJ.isoformat()},
        headers=auth(U1),
    )
    assert raw.status_code == 200 and raw.json()["data"]["series"][0] == "SPY"


async def test_factor_calculate_job_completes_and_publishes_without_cascade(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = {"portfolio_id": str(P3), "as_of_date": TJ.isoformat()}
    r = await client.post("/api/v1/factors/calculate", json=body, headers=auth(U1))
    assert r.status_code == 202, r.text
    accepted = r.json()["data"]
    assert accepted["job_type"] == "factors.calculate" and accepted["job_id"].startswith("fac_")
    assert accepted["result_url"] == f"/api/v1/factors/exposures/{P3}?as_of_date={TJ.isoformat()}"
    assert r.headers["Location"] == accepted["status_url"] and r.headers["Retry-After"] == "2"
    job: dict[str, Any] = {}
    for _ in range(100):
        job = (await client.get(accepted["status_url"], headers=auth(U1))).json()["data"]
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert job["status"] == "completed", job
    assert job["result"]["reused"] is False and job["result"]["positions"] == 3

    exposures = (await client.get(accepted["result_url"], headers=auth(U1))).json()["data"]
    assert exposures["calculation_date"] == TJ.isoformat()
    positions_url = f"/api/v1/factors/exposures/{P3}/positions"
    listed = await client.get(positions_url, params={"as_of_date": TJ.isoformat()}, headers=auth(U1))
    positions = listed.json()["data"]
    assert {p["symbol"]: p["quality_flag"] for p in positions} == {
        "AAA": "full_history", "BBB": "limited_history", "CCC": "insufficient_history",
    }  # fmt: skip
    aaa = next(p for p in positions if p["symbol"] == "AAA")
    assert aaa["betas"]["market"] == pytest.approx(1.2, abs=0.15) and aaa["t_stats"]["market"] > 10
    assert aaa["observations"] == 252 and aaa["condition_number"] is not None and aaa["vif"]["value"] is not None
    market = next(f for f in exposures["factors"] if f["code"] == "market")
    # Portfolio X_M = Σ positions' X_i,M (to the cent per position).
    assert float(market["exposure_dollar"]) == pytest.approx(
        sum(float(p["exposure_dollar"]["market"]) for p in positions), abs=0.02
    )
    async with db.session() as s:
        rows = (await s.execute(sa.text("SELECT routing_key, body FROM factors.outbox"))).all()
    events = [decode(k, bytes(b)) for k, b in rows]
    assert [e.routing_key for e in events] == ["factors.computed"]
    assert events[0].cascade is False and events[0].portfolio_id == P3  # type: ignore[attr-defined]

    again = await client.post("/api/v1/factors/calculate", json=body, headers={**auth(U1), "Prefer": "wait=5"})
    assert again.status_code == 200 and again.json()["data"]["calculation_date"] == TJ.isoformat()
    async with db.session() as s:
        reused = (await s.execute(sa.text("SELECT result FROM factors.job ORDER BY created_at DESC LIMIT 1"))).scalar()
    assert reused["reused"] is True


async def test_openapi_documents_every_factor_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in (
        ("/api/v1/risk/factors", "get"),
        ("/api/v1/risk/factors/positions", "get"),
        ("/api/v1/risk/correlations/factors/matrix", "get"),
        ("/api/v1/risk/correlations/factors/calculate", "post"),
        ("/api/v1/factors/exposures/{portfolio_id}", "get"),
        ("/api/v1/factors/exposures/{portfolio_id}/positions", "get"),
        ("/api/v1/factors/calculate", "post"),
    ):
        responses = paths[path][method]["responses"]
        ok = "202" if path == "/api/v1/factors/calculate" else "200"
        assert "$ref" in responses[ok]["content"]["application/json"]["schema"], path
        assert "404" in responses or "422" in responses, path
