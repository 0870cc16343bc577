"""GET /api/v1/portfolio/exposures (#22) and /performance (#23) on stored snapshots."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import httpx
import numpy as np
import pytest

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from stress.main import create_service
from stress.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "stress-test-secret-0123456789abcdef0123"
END = date(2026, 11, 20)


@dataclass
class Dataset:
    owner: uuid.UUID
    other: uuid.UUID
    nobody: uuid.UUID
    long_pf: uuid.UUID
    short_pf: uuid.UUID
    empty_pf: uuid.UUID
    dates: dict[uuid.UUID, list[date]] = field(default_factory=dict)
    pnl: dict[uuid.UUID, list[Decimal]] = field(default_factory=dict)
    returns: dict[uuid.UUID, list[float | None]] = field(default_factory=dict)
    equity: dict[uuid.UUID, list[Decimal]] = field(default_factory=dict)
    spy: dict[date, float] = field(default_factory=dict)


def token(user_id: uuid.UUID, role: str = "user") -> str:
    return issue_access_token(Principal(user_id=user_id, email="u@example.com", role=role), SECRET, 3600)  # type: ignore[arg-type]


async def seed_history(
    seeder, pid: uuid.UUID, days: list[date], spy_returns: dict[date, float], rng, ds: Dataset
) -> None:
    equity = Decimal("1000000.00")
    rows = []
    ds.dates[pid], ds.pnl[pid], ds.returns[pid], ds.equity[pid] = [], [], [], []
    cumulative = Decimal("0")
    for i, d in enumerate(days):
        if i == 0:
            pnl, ret = Decimal("0.00"), None
        else:
            r = 1.2 * spy_returns[d] + rng.normal(0.0003, 0.002)
            pnl = (equity * Decimal(repr(r))).quantize(Decimal("0.01"))
            ret = float(pnl) / float(equity)
        equity = equity + pnl
        cumulative += pnl
        partial = d == days[len(days) // 2]
        rows.append(
            {
                "p": pid,
                "d": d,
                "e": equity,
                "pnl": pnl,
                "r": ret,
                "cp": cumulative,
                "lev": 1.0,
                "st": "partial" if partial else "complete",
            }
        )
        ds.dates[pid].append(d)
        ds.pnl[pid].append(pnl)
        ds.returns[pid].append(ret)
        ds.equity[pid].append(equity)
    await seeder.execute(
        "INSERT INTO stress.portfolio_snapshot (portfolio_id, snapshot_date, source, equity, cash_balance,"
        " cash_unknown, long_mv, short_mv, gross_mv, net_mv, long_exposure, short_exposure, gross_exposure,"
        " net_exposure, notional,"
        " gross_leverage, net_leverage, daily_pnl, daily_return, cumulative_pnl, num_positions, num_long, num_short,"
        " num_stocks, num_options, inputs_status, engine_version)"
        " VALUES (:p, :d, 'backfill', :e, 0, false, :e, 0, :e, :e, :e, 0, :e, :e, :e, :lev, :lev, :pnl, :r, :cp,"
        " 0, 0, 0, 0, 0, :st, 'test')",
        rows,
    )


@pytest.fixture(scope="module")
async def dataset(seeder, calendar_days) -> Dataset:
    rng = np.random.default_rng(7)
    owner, other, nobody = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ds = Dataset(
        owner=owner,
        other=other,
        nobody=nobody,
        long_pf=await seeder.portfolio(user_id=owner, is_default=True),
        short_pf=await seeder.portfolio(user_id=owner, is_default=False),
        empty_pf=await seeder.portfolio(user_id=other, is_default=True),
    )
    days = [d for d in calendar_days if d <= END]
    # SPY: adjusted closes on every trading day, provenance `fixture`.
    price = 500.0
    spy_rows, spy_returns = [], {}
    for i, d in enumerate(days):
        if i:
            r = float(rng.normal(0.0004, 0.01))
            spy_returns[d] = r
            price *= 1 + r
        ds.spy[d] = round(price, 4)
        spy_rows.append({"d": d, "c": Decimal(repr(round(price, 4)))})
    await seeder.execute(
        "INSERT INTO marketdata.security (symbol, security_type) VALUES ('SPY', 'etf') ON CONFLICT DO NOTHING"
    )
    await seeder.execute(
        "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source)"
        " VALUES ('SPY', :d, :c, :c, 'fixture') ON CONFLICT DO NOTHING",
        spy_rows,
    )
    await seeder.execute(
        "INSERT INTO marketdata.rate_observation (series_id, observation_date, value) VALUES ('DGS3MO', :d, 0.0402)"
        " ON CONFLICT DO NOTHING",
        [{"d": d} for d in days[::5]],
    )
    # Recomputed SPY returns from the stored (rounded) closes, as the service sees them.
    stored = [ds.spy[d] for d in days]
    spy_returns = {d: stored[i] / stored[i - 1] - 1 for i, d in enumerate(days) if i}
    await seed_history(seeder, ds.long_pf, days[-260:], spy_returns, rng, ds)
    await seed_history(seeder, ds.short_pf, days[-70:], spy_returns, rng, ds)
    return ds


@pytest.fixture(scope="module")
async def client(stress_db) -> AsyncIterator[httpx.AsyncClient]:
    service = create_service(Settings(jwt_secret=SECRET), stress_db, InProcessBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as c:
        yield c


async def get(client, path: str, user: uuid.UUID | None, role: str = "user", **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token(user, role)}"} if user else {}
    return await client.get(path, params=params, headers=headers)


# -- auth, ownership, validation -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/portfolio/exposures", "/api/v1/portfolio/performance"])
async def test_requests_without_a_token_are_401(client, dataset, path) -> None:
    resp = await get(client, path, None)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("path", ["/api/v1/portfolio/exposures", "/api/v1/portfolio/performance"])
async def test_another_users_portfolio_is_404(client, dataset, path) -> None:
    resp = await get(client, path, dataset.other, portfolio_id=str(dataset.long_pf))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    unknown = await get(client, path, dataset.owner, portfolio_id=str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"


async def test_admin_may_read_any_portfolio(client, dataset) -> None:
    resp = await get(client, "/api/v1/portfolio/exposures", uuid.uuid4(), "admin", portfolio_id=str(dataset.long_pf))
    assert resp.status_code == 200 and resp.json()["data"]["portfolio_id"] == str(dataset.long_pf)


@pytest.mark.parametrize("path", ["/api/v1/portfolio/exposures", "/api/v1/portfolio/performance"])
async def test_user_without_portfolio_gets_404_with_upload_hint(client, dataset, path) -> None:
    resp = await get(client, path, dataset.nobody)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    assert resp.json()["error"]["hint"] == "POST /api/v1/portfolio/upload"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/portfolio/exposures", {"period": "decade"}, "query.period"),
        ("/api/v1/portfolio/exposures", {"period": "day"}, "query.period"),
        ("/api/v1/portfolio/exposures", {"interval": "hourly"}, "query.interval"),
        ("/api/v1/portfolio/exposures", {"start_date": "2026-11-10", "end_date": "2026-11-01"}, "query.start_date"),
        ("/api/v1/portfolio/exposures", {"start_date": "2020-01-01", "end_date": "2026-11-20"}, "query.start_date"),
        ("/api/v1/portfolio/exposures", {"start_date": "2020-01-01"}, "query.start_date"),
        ("/api/v1/portfolio/exposures", {"period": "month", "start_date": "2026-11-01"}, "query.start_date"),
        ("/api/v1/portfolio/exposures", {"start_date": "not-a-date"}, "query.start_date"),
        ("/api/v1/portfolio/performance", {"period": "decade"}, "query.period"),
        ("/api/v1/portfolio/performance", {"start_date": "2026-11-10", "end_date": "2026-11-01"}, "query.start_date"),
        ("/api/v1/portfolio/performance", {"include": "everything"}, "query.include"),
        ("/api/v1/portfolio/performance", {"benchmark": "$$$"}, "query.benchmark"),
    ],
)
async def test_bad_query_values_are_422_naming_the_parameter(client, dataset, path, params, field) -> None:
    resp = await get(client, path, dataset.owner, **params)
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["code"] == "VALIDATION_ERROR"
    assert any(d["field"] == field for d in body["details"])


# -- #22 exposures ---------------------------------------------------------------------------


async def test_month_of_exposures_is_daily_ascending_from_the_default_portfolio(client, dataset) -> None:
    resp = await get(client, "/api/v1/portfolio/exposures", dataset.owner)
    assert resp.status_code == 200
    body = resp.json()
    data, meta = body["data"], body["meta"]
    assert data["portfolio_id"] == str(dataset.long_pf)
    assert (data["period"], data["interval"]) == ("month", "daily")
    assert (data["start_date"], data["end_date"]) == ("2026-10-21", "2026-11-20")
    expected = [d for d in dataset.dates[dataset.long_pf] if date(2026, 10, 21) <= d <= END]
    assert [p["date"] for p in data["points"]] == [d.isoformat() for d in expected]
    assert data["partial"] is False and data["data_status"] == "fresh"
    assert data["first_available_date"] == dataset.dates[dataset.long_pf][0].isoformat()
    last = data["points"][-1]
    equity = str(dataset.equity[dataset.long_pf][-1])
    assert last["equity"] == equity
    assert last["market_value"] == {"long": equity, "short": "0.00", "gross": equity, "net": equity}
    assert last["exposure"]["gross"] == equity and last["notional"] == equity
    assert last["gross_leverage"] == 1.0
    assert meta["as_of"] == "2026-11-20" and meta["data_source"] == "fixture"


async def test_window_before_history_is_partial_and_inception_returns_all_points(client, dataset) -> None:
    pid = str(dataset.short_pf)
    year = (await get(client, "/api/v1/portfolio/exposures", dataset.owner, portfolio_id=pid, period="year")).json()
    assert year["data"]["partial"] is True
    assert len(year["data"]["points"]) == 70
    quarter = (
        await get(client, "/api/v1/portfolio/exposures", dataset.owner, portfolio_id=pid, period="quarter")
    ).json()
    assert quarter["data"]["partial"] is False and quarter["data"]["start_date"] == "2026-08-21"
    inception = (
        await get(client, "/api/v1/portfolio/exposures", dataset.owner, portfolio_id=pid, period="inception")
    ).json()
    assert inception["data"]["partial"] is False
    assert len(inception["data"]["points"]) == 70
    assert inception["data"]["start_date"] == dataset.dates[dataset.short_pf][0].isoformat()
    assert inception["data"]["coverage"] == {"partial_points": 1}


async def test_weekly_interval_keeps_the_last_trading_day_of_each_week(client, dataset) -> None:
    resp = await get(
        client,
        "/api/v1/portfolio/exposures",
        dataset.owner,
        start_date="2026-10-26",
        end_date="2026-11-20",
        interval="weekly",
    )
    data = resp.json()["data"]
    assert data["period"] == "custom"
    # Thanksgiving week is outside the range; these are the Fridays.
    assert [p["date"] for p in data["points"]] == ["2026-10-30", "2026-11-06", "2026-11-13", "2026-11-20"]


async def test_portfolio_without_snapshots_returns_no_history(client, dataset) -> None:
    resp = await get(client, "/api/v1/portfolio/exposures", dataset.other)
    data = resp.json()["data"]
    assert resp.status_code == 200
    assert data["points"] == [] and data["data_status"] == "no_history" and data["first_available_date"] is None


# -- #23 performance -------------------------------------------------------------------------


def window(ds: Dataset, pid: uuid.UUID, start: date, end: date = END) -> tuple[list[Decimal], list[float]]:
    idx = [i for i, d in enumerate(ds.dates[pid]) if start <= d <= end]
    return [ds.pnl[pid][i] for i in idx], [r for r in (ds.returns[pid][i] for i in idx) if r is not None]


async def test_performance_over_a_year_matches_the_snapshot_history(client, dataset) -> None:
    pid = dataset.long_pf
    resp = await get(client, "/api/v1/portfolio/performance", dataset.owner, period="year", include="series")
    assert resp.status_code == 200
    data = resp.json()["data"]
    start = date(2025, 11, 21)
    pnl, rets = window(dataset, pid, start)
    r = np.array(rets)
    assert data["start_date"] == start.isoformat() and data["end_date"] == "2026-11-20"
    assert data["pnl"] == str(sum(pnl))
    assert data["return"] == pytest.approx(float(np.prod(1 + r) - 1), abs=1e-6)
    assert data["observations"] == r.size
    assert data["partial"] is False
    stats = data["stats"]
    excess = r - 0.0402 / 252
    assert stats["annualized_volatility"] == pytest.approx(float(np.std(r, ddof=1) * np.sqrt(252)), abs=1e-6)
    assert stats["sharpe_ratio"] == pytest.approx(float(excess.mean() / excess.std(ddof=1) * np.sqrt(252)), abs=1e-5)
    downside = np.sqrt(np.mean(np.minimum(excess, 0) ** 2))
    assert stats["sortino_ratio"] == pytest.approx(float(excess.mean() / downside * np.sqrt(252)), abs=1e-5)
    assert stats["risk_free_rate"] == pytest.approx(0.0402)
    assert stats["positive_days_pct"] == pytest.approx(float(np.mean(r > 0)), abs=1e-6)
    assert stats["best_day"]["return"] == pytest.approx(float(r.max()), abs=1e-6)
    assert stats["max_drawdown"] < 0 and stats["max_drawdown_trough_date"] is not None
    # Benchmark: SPY over the same window, realised beta ≈ the 1.2 loading of the synthetic history.
    bench = data["benchmark"]
    base = dataset.dates[pid][dataset.dates[pid].index(start) - 1] if start in dataset.dates[pid] else None
    base = base or max(d for d in dataset.dates[pid] if d < start)
    assert bench["symbol"] == "SPY"
    assert bench["return"] == pytest.approx(dataset.spy[END] / dataset.spy[base] - 1, abs=1e-6)
    spy_r = np.array(
        [
            dataset.spy[d] / dataset.spy[dataset.dates[pid][i - 1]] - 1
            for i, d in enumerate(dataset.dates[pid])
            if d >= start
        ]
    )
    slope = np.polyfit(spy_r, r, 1)[0]
    assert bench["beta_realized"] == pytest.approx(float(slope), abs=1e-5)
    assert 1.0 < bench["beta_realized"] < 1.4
    assert bench["correlation"] == pytest.approx(float(np.corrcoef(spy_r, r)[0, 1]), abs=1e-5)
    # Series: one point per snapshot, cumulative return restarting at the window base.
    series = data["series"]
    assert len(series) == r.size
    assert series[-1]["cumulative_return"] == pytest.approx(data["return"], abs=1e-6)
    assert series[-1]["benchmark_cumulative_return"] == pytest.approx(bench["return"], abs=1e-6)
    assert min(p["drawdown"] for p in series) == pytest.approx(stats["max_drawdown"], abs=1e-6)
    assert data["data_status"] == "partial" and data["coverage"] == {"partial_points": 1}


async def test_periods_block_reports_day_week_month_and_partial_ytd(client, dataset) -> None:
    pid = dataset.short_pf
    resp = await get(client, "/api/v1/portfolio/performance", dataset.owner, portfolio_id=str(pid), benchmark="none")
    data = resp.json()["data"]
    assert data["benchmark"] is None and data["series"] is None
    periods = data["periods"]
    assert periods["day"]["pnl"] == str(dataset.pnl[pid][-1])
    assert periods["day"]["return"] == pytest.approx(dataset.returns[pid][-1], abs=1e-6)
    week_pnl, week_r = window(dataset, pid, date(2026, 11, 14))
    assert periods["week"]["pnl"] == str(sum(week_pnl)) and periods["week"]["partial"] is False
    assert periods["week"]["return"] == pytest.approx(float(np.prod(1 + np.array(week_r)) - 1), abs=1e-6)
    # History starts in August: the year-to-date figures exist but do not cover the period.
    assert periods["ytd"]["partial"] is True and periods["ytd"]["pnl"] == str(sum(dataset.pnl[pid]))
    assert data["first_available_date"] == dataset.dates[pid][0].isoformat()


async def test_fewer_than_60_returns_leave_statistics_null_except_drawdown(client, dataset) -> None:
    resp = await get(
        client, "/api/v1/portfolio/performance", dataset.owner, portfolio_id=str(dataset.short_pf), period="year"
    )
    data = resp.json()["data"]
    assert data["partial"] is True  # the year starts before the history
    assert data["observations"] == 69  # the first snapshot of a history has no return
    assert data["data_status"] == "partial" and data["stats"]["sharpe_ratio"] is not None
    two_months = await get(client, "/api/v1/portfolio/performance", dataset.owner, portfolio_id=str(dataset.short_pf))
    month = two_months.json()["data"]
    assert month["data_status"] == "insufficient_history"
    stats = month["stats"]
    assert stats["sharpe_ratio"] is None and stats["annualized_volatility"] is None and stats["best_day"] is None
    assert stats["max_drawdown"] is not None and stats["max_drawdown"] <= 0
    assert month["benchmark"]["beta_realized"] is None and month["benchmark"]["return"] is not None


async def test_unknown_benchmark_is_symbol_not_found(client, dataset) -> None:
    resp = await get(client, "/api/v1/portfolio/performance", dataset.owner, benchmark="NOPE")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "SYMBOL_NOT_FOUND"


async def test_performance_without_history_is_no_history(client, dataset) -> None:
    resp = await get(client, "/api/v1/portfolio/performance", dataset.other, benchmark="none", period="ytd")
    data = resp.json()["data"]
    assert resp.status_code == 200
    assert data["data_status"] == "no_history" and data["stats"] is None and data["pnl"] is None


async def test_reads_answer_well_under_200_ms_p95(client, dataset) -> None:
    for path, params in (
        ("/api/v1/portfolio/exposures", {"period": "inception"}),
        ("/api/v1/portfolio/performance", {"period": "year", "include": "series"}),
    ):
        timings = []
        for _ in range(30):
            t0 = time.perf_counter()
            resp = await get(client, path, dataset.owner, **params)
            timings.append(time.perf_counter() - t0)
            assert resp.status_code == 200
        assert float(np.percentile(timings, 95)) < 0.2, (path, sorted(timings)[-3:])
