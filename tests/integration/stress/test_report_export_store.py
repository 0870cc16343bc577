"""Reports (#66–#68, #75), the daily report on snapshot.created, trade exports (#69–#71) and their storage
on a real PostgreSQL, after the stress and snapshot steps of the Example 7 book on two trading days.
Correlation clusters and the pairwise matrix in reports are checked against the factors service's own
calculation and its #41/#42 bodies."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import httpx
import orjson
import pypdf
import pytest
import sqlalchemy as sa
from tests.integration.stress.conftest import SECRET
from tests.integration.stress.stress_dataset import (
    AS_OF,
    CALL,
    EQUITY,
    GROSS,
    STOCK_A,
    STOCK_B,
    Book,
    seed_book,
    seed_market,
)

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.errors import ValidationFailed
from common.events import FactorsComputed, SnapshotCreated, StepInfo
from common.formatting import utcnow
from common.service import Service
from factors import correlation_read
from factors.correlation_compute import CorrelationFilters
from factors.correlation_service import compute_portfolio_correlations
from stress.exports import files
from stress.main import create_service
from stress.reports import correlation_section, daily_build, store
from stress.reports import inputs as reads
from stress.reports.cli import parse_options
from stress.reports.daily import DailyReports
from stress.reports.folder import generate_to_folder
from stress.reports.schemas import GenerateRequest
from stress.reports.service import ReportService
from stress.settings import Settings

pytestmark = pytest.mark.integration

REPORTS, GENERATE, EXPORT, HISTORY = (
    "/api/v1/reports",
    "/api/v1/reports/generate",
    "/api/v1/export/trades",
    "/api/v1/export/history",
)


@dataclass
class Setup:
    client: httpx.AsyncClient
    service: Service
    owner: uuid.UUID
    other: uuid.UUID
    book: Book
    previous_day: date

    def headers(self, user: uuid.UUID | None = None) -> dict[str, str]:
        token = issue_access_token(Principal(user or self.owner, "u@example.com", "user"), SECRET, 3600)
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, user: uuid.UUID | None = None, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(user))

    async def post(self, path: str, body: dict, user: uuid.UUID | None = None, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers(user) | headers)


async def value_previous_day(seeder, book: Book, day) -> None:
    """The book one trading day earlier: 800 STRA at 98, −500 STRB at 81, no call yet."""
    await seeder.valuation(
        book.stock_a,
        book.portfolio_id,
        day,
        last_price="98",
        market_value="78400.00",
        dollar_exposure="78400.00",
        notional="78400.00",
    )
    await seeder.valuation(
        book.stock_b,
        book.portfolio_id,
        day,
        last_price="81",
        market_value="-40500.00",
        dollar_exposure="-40500.00",
        notional="40500.00",
    )
    await seeder.execute(
        "UPDATE ingest.position_valuation SET quantity = 800 WHERE position_id = :p AND valuation_date = :d",
        {"p": book.stock_a, "d": day},
    )


@pytest.fixture(scope="module")
async def setup(stress_db, seeder, calendar_days) -> AsyncIterator[Setup]:
    await seed_market(seeder, calendar_days)
    owner, other = uuid.uuid4(), uuid.uuid4()
    book = await seed_book(seeder, owner)
    previous = max(d for d in calendar_days if d < AS_OF)
    await value_previous_day(seeder, book, previous)
    await seeder.portfolio(user_id=other)
    bus = InProcessBus()
    service = create_service(Settings(jwt_secret=SECRET), stress_db, bus)
    await bus.start()
    await service.start()
    now = utcnow()
    step = StepInfo(name="factors", status="completed", started_at=now, finished_at=now)
    run_id = uuid.uuid4()
    for day in (previous, AS_OF):
        await bus.publish(FactorsComputed(portfolio_id=book.portfolio_id, as_of=day, run_id=run_id, step=step))
        await bus.drain()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as client:
        yield Setup(client, service, owner, other, book, previous)
    await service.stop()
    await bus.close()


def data(resp: httpx.Response, status: int = 200) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["data"]


async def batch_report(setup: Setup, status: str = "completed") -> dict:
    """The daily report of the book on AS_OF, once it has `status` (the background worker builds it)."""
    params = {"portfolio_id": str(setup.book.portfolio_id), "trigger": "batch", "as_of_date": AS_OF.isoformat()}
    for _ in range(100):
        items = data(await setup.get(REPORTS, **params))
        if items and items[0]["status"] == status:
            break
        await asyncio.sleep(0.1)
    assert len(items) == 1 and items[0]["status"] == status, items
    return items[0]


# -- the daily report ------------------------------------------------------------------------------


async def test_a_daily_report_is_made_after_each_snapshot(setup) -> None:
    item = await batch_report(setup)
    assert item["status"] == "completed" and item["formats"] == ["md", "json", "csv"]
    status = data(await setup.get(item["status_url"]))
    assert [f["format"] for f in status["files"]] == ["md", "json", "csv"] and status["data_source"] == "fixture"
    doc = orjson.loads((await setup.get(f"{REPORTS}/{item['report_id']}/download", format="json")).content)
    assert doc["portfolio"]["position_count"] == 3 and doc["portfolio"]["equity"] == f"{EQUITY:.2f}"
    assert doc["exposures"]["exposure"]["gross"] == f"{GROSS:.2f}"
    assert doc["exposures"]["market_value"]["net"] == "64751.07"
    assert len(doc["stress_tests"]) == 18 and doc["data_quality"]["engines"]["stress_tests"]["status"] == "ok"
    assert {f["factor"] for f in doc["factor_exposures"]} >= {"market", "interest_rate"}
    # Since the previous day: 200 STRA and 20 calls bought, prices moved.
    changes = {m["metric"]: m for m in doc["changes"]["metrics"]}
    assert doc["changes"]["from_date"] == setup.previous_day.isoformat() and doc["changes"]["positions_opened"] == 1
    equity = changes["net_market_value"]
    assert Decimal(equity["change"]) == Decimal("64751.07") - Decimal("37900.00")
    assert equity["parts"]["market"] == "2100.00"  # 800·(100 − 98) + (−500)·(80 − 81)
    assert sum(Decimal(v) for v in equity["parts"].values()) == Decimal(equity["change"])
    by_symbol = {p["symbol"]: p for p in doc["positions"]}
    assert set(by_symbol) == {STOCK_A, STOCK_B, CALL} and by_symbol[CALL]["security_type"] == "option"


async def test_rerunning_the_day_replaces_the_daily_report(setup, stress_db) -> None:
    before = await batch_report(setup)
    stored_sql = sa.text(
        "SELECT array_agg(f.id ORDER BY f.id) FROM stress.stored_file f "
        "JOIN stress.report_file r ON r.stored_file_id = f.id WHERE r.report_id = :r"
    )
    all_files_sql = sa.text("SELECT count(*) FROM stress.stored_file")
    async with stress_db.session() as s:
        old_files = (await s.execute(stored_sql, {"r": before["report_id"]})).scalar()
        files_before = (await s.execute(all_files_sql)).scalar()
    ids = await daily_build.make(stress_db, [setup.book.portfolio_id], AS_OF, {})
    assert ids == {setup.book.portfolio_id: uuid.UUID(before["report_id"])}
    after = await batch_report(setup)
    assert after["report_id"] == before["report_id"] and after["created_at"] >= before["created_at"]
    async with stress_db.session() as s:
        count = (
            await s.execute(
                sa.text("SELECT count(*) FROM stress.report_file WHERE report_id = :r"), {"r": before["report_id"]}
            )
        ).scalar()
        new_files = (await s.execute(stored_sql, {"r": before["report_id"]})).scalar()
        leftover = (
            await s.execute(sa.text("SELECT count(*) FROM stress.stored_file WHERE id = ANY(:ids)"), {"ids": old_files})
        ).scalar()
        files_after = (await s.execute(all_files_sql)).scalar()
    assert count == 3
    # The replaced files' bytes are deleted with their rows, not left behind.
    assert len(old_files) == len(new_files) == 3 and not set(old_files) & set(new_files)
    assert leftover == 0 and files_after == files_before


# -- on-demand reports -----------------------------------------------------------------------------


async def test_on_demand_report_in_every_format(setup) -> None:
    body = {"portfolio_id": str(setup.book.portfolio_id), "formats": ["md", "json", "csv", "pdf"]}
    resp = await setup.post(GENERATE, body, Prefer="wait=10")
    if resp.status_code == 202:
        accepted = resp.json()["data"]
        assert accepted["job_type"] == "report.generate" and accepted["job_id"] == f"str_{accepted['report_id']}"
        for _ in range(200):
            status = data(await setup.get(accepted["status_url"]))
            if status["status"] in ("completed", "failed"):
                break
    else:
        status = data(resp)
    assert status["status"] == "completed", status
    assert status["trigger"] == "api" and status["as_of_date"] == AS_OF.isoformat()
    names = {f["format"]: f["file_name"] for f in status["files"]}
    assert names["md"].endswith(f"_report_{AS_OF.isoformat()}.md") and names["csv"].endswith(f"_positions_{AS_OF}.csv")
    got = {}
    for fmt, media in (
        ("md", "text/markdown"),
        ("json", "application/json"),
        ("csv", "text/csv"),
        ("pdf", "application/pdf"),
    ):
        resp = await setup.get(f"{REPORTS}/{status['report_id']}/download", format=fmt)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media), resp.text[:300]
        assert f'filename="{names[fmt]}"' in resp.headers["content-disposition"]
        got[fmt] = resp.content
    assert got["md"].decode().startswith("**Fixture data")
    rows = list(csv.DictReader(io.StringIO(got["csv"].decode())))
    doc = orjson.loads(got["json"])
    assert len(rows) == 3 and sum(abs(Decimal(r["dollar_exposure"])) for r in rows) == Decimal(
        doc["exposures"]["exposure"]["gross"]
    )
    pdf = pypdf.PdfReader(io.BytesIO(got["pdf"]))
    assert "Executive summary" in pdf.pages[0].extract_text()
    # Every download is in the export history.
    history = data(await setup.get(HISTORY, export_type="report"))
    mine = [h for h in history if h["report_id"] == status["report_id"]]
    assert sorted(h["format"] for h in mine) == ["csv", "json", "md", "pdf"]
    assert all(h["download_url"] for h in mine)


async def test_generate_validates_before_starting(setup) -> None:
    assert (await setup.post(GENERATE, {"formats": ["docx"]})).json()["error"]["code"] == "VALIDATION_ERROR"
    resp = await setup.post(GENERATE, {"portfolio_id": str(setup.book.portfolio_id), "as_of_date": "2026-01-06"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_CALCULATED"
    resp = await setup.post(GENERATE, {"portfolio_id": str(setup.book.portfolio_id)}, user=setup.other)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    no_pdf = ReportService(setup.service.plumbing, pdf_enabled=False)
    with pytest.raises(ValidationFailed) as caught:
        await no_pdf.accept(Principal(setup.owner, "u@example.com", "user"), GenerateRequest(formats=["pdf"]))
    assert caught.value.code == "UNSUPPORTED_FORMAT" and caught.value.status == 422


async def test_another_users_report_is_not_found(setup) -> None:
    item = await batch_report(setup)
    for path in (item["status_url"], f"{REPORTS}/{item['report_id']}/download"):
        resp = await setup.get(path, user=setup.other, format="md")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "REPORT_NOT_FOUND"
    assert data(await setup.get(REPORTS, user=setup.other)) == []
    resp = await setup.get(REPORTS, user=setup.other, portfolio_id=str(setup.book.portfolio_id))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"


async def test_report_list_filters_sorts_and_pages(setup) -> None:
    every = await setup.get(REPORTS, limit="1")
    assert every.json()["page"]["total"] >= 1 and len(every.json()["data"]) == 1
    assert data(await setup.get(REPORTS, trigger="batch", status="failed")) == []
    for params in ({"trigger": "cron"}, {"status": "done"}, {"sort": "size"}, {"limit": "0"}):
        assert (await setup.get(REPORTS, **params)).status_code == 422, params


async def test_an_expired_report_is_listed_as_expired_and_its_download_is_gone(setup, stress_db) -> None:
    body = {"portfolio_id": str(setup.book.portfolio_id), "formats": ["md"], "sections": ["summary"]}
    status = data(await setup.post(GENERATE, body, Prefer="wait=10"))
    assert status["status"] == "completed"
    async with stress_db.transaction() as s:
        await s.execute(
            sa.text("UPDATE stress.report SET expires_at = now() - interval '1 day' WHERE id = :r"),
            {"r": status["report_id"]},
        )
        await s.execute(
            sa.text(
                "UPDATE stress.stored_file SET expires_at = now() - interval '1 day' WHERE id IN"
                " (SELECT stored_file_id FROM stress.report_file WHERE report_id = :r)"
            ),
            {"r": status["report_id"]},
        )
    assert data(await setup.get(f"{REPORTS}/{status['report_id']}/status"))["status"] == "expired"
    resp = await setup.get(f"{REPORTS}/{status['report_id']}/download")
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "GONE"
    async with stress_db.transaction() as s:
        assert await files.purge_expired(s, utcnow()) >= 1
    listed = data(await setup.get(REPORTS, status="expired"))
    assert status["report_id"] in {r["report_id"] for r in listed}
    after = data(await setup.get(f"{REPORTS}/{status['report_id']}/status"))
    assert after["status"] == "expired" and after["files"][0]["download_url"] is None


# -- correlations in reports -----------------------------------------------------------------------


async def store_correlations(stress_db, pid: uuid.UUID, threshold: float) -> dict:
    """Factors' own calculation of `pid` on AS_OF (clusters cut at `threshold`) and its #41/#42 bodies."""
    async with stress_db.transaction() as s:
        outcome = await compute_portfolio_correlations(
            s, portfolio_id=pid, as_of=AS_OF, filters=CorrelationFilters(correlation_threshold=threshold), force=True
        )
    assert outcome.status == "completed", outcome
    async with stress_db.session() as s:
        stored = await correlation_read.load(s, portfolio_id=pid, as_of=AS_OF)
    metrics = correlation_read.metrics_body(stored, correlation_read.Narrowing(), None, None)
    matrix = correlation_read.matrix_body(
        stored,
        correlation_read.Narrowing(),
        direction=False,
        min_correlation=None,
        max_correlation=None,
        include_p_values=False,
    )
    return {"metrics": metrics, "matrix": matrix}


def assert_same_clusters(report: list[dict], served: list[dict]) -> None:
    """Report clusters equal factors' (#41) to the report's precision (shares 4 dp, correlations 6 dp)."""
    assert len(report) == len(served)
    for mine, theirs in zip(report, served, strict=True):
        for key in ("cluster_number", "nickname", "nickname_source", "avg_correlation", "gross", "net"):
            assert mine[key] == theirs[key], key
        assert mine["share_of_gross"] == pytest.approx(theirs["share_of_gross"], abs=5.1e-5)
        assert [(m["symbol"], m["exposure"], m["correlation_to_cluster"]) for m in mine["members"]] == [
            (m["symbol"], m["exposure"], m["correlation_to_cluster"]) for m in theirs["members"]
        ]


async def test_a_report_carries_the_clusters_and_pairs_factors_stored(setup, stress_db) -> None:
    pid = setup.book.portfolio_id
    served = await store_correlations(stress_db, pid, threshold=0.5)
    assert [m["symbol"] for m in served["metrics"]["clusters"][0]["members"]] == [STOCK_A, STOCK_B]
    body = {"portfolio_id": str(pid), "formats": ["md", "json"], "sections": ["correlations"]}
    status = data(await setup.post(GENERATE, body, Prefer="wait=10"))
    assert status["status"] == "completed", status
    got = {
        fmt: (await setup.get(f"{REPORTS}/{status['report_id']}/download", format=fmt)).content
        for fmt in ("md", "json")
    }
    c = orjson.loads(got["json"])["correlations"]
    assert_same_clusters(c["clusters"], served["metrics"]["clusters"])
    # The matrix numbers are factors' stored pairs: the #42 matrix cell for cell.
    assert c["matrix"] == {
        "symbols": [n["symbol"] for n in served["matrix"]["nodes"]],
        "values": served["matrix"]["correlations"],
    }
    rho = served["matrix"]["correlations"][0][1]
    assert c["matrix"]["symbols"] == [STOCK_A, STOCK_B] and 0.5 <= rho < 1
    text = got["md"].decode()
    cluster = c["clusters"][0]
    gross = f"${Decimal(cluster['gross']):,.2f}"
    assert f"| 1 | {cluster['nickname']} | {STOCK_A}, {STOCK_B} | {gross} |" in text
    assert "not available" not in text.lower()


async def test_a_batch_of_reports_reads_each_portfolios_own_calculation(setup, stress_db, seeder) -> None:
    clustered = setup.book.portfolio_id
    loose = (await seed_book(seeder, uuid.uuid4())).portfolio_id
    uncalculated = await seeder.portfolio(user_id=uuid.uuid4())
    served = {
        clustered: await store_correlations(stress_db, clustered, threshold=0.5),
        loose: await store_correlations(stress_db, loose, threshold=0.99),
    }
    async with stress_db.session() as s:
        await reads.start_consistent_read(s)
        loaded = await reads.load(s, [clustered, loose, uncalculated], AS_OF)
    docs = {pid: correlation_section.correlations(inputs) for pid, inputs in loaded.items()}
    for pid in (clustered, loose):
        assert docs[pid]["matrix"]["values"] == served[pid]["matrix"]["correlations"]
        assert_same_clusters(docs[pid]["clusters"], served[pid]["metrics"]["clusters"])
    assert len(docs[clustered]["clusters"]) == 1 and docs[loose]["clusters"] == []
    assert docs[uncalculated] is None and loaded[uncalculated].correlation_pairs is None


# -- trade exports ---------------------------------------------------------------------------------

TRADES = [
    {"side": "SELL_SHORT", "symbol": STOCK_B, "quantity": 595},
    {"side": "BUY", "symbol": STOCK_A.lower(), "quantity": "10", "order_type": "LIMIT", "limit_price": "99.5"},
]


@pytest.mark.parametrize("fmt", ["csv", "json", "fix"])
async def test_trade_export_is_stored_and_downloadable(setup, fmt) -> None:
    out = data(await setup.post(EXPORT, {"trades": TRADES, "format": fmt, "account": "ACC-9"}), 201)
    assert out["trade_count"] == 2 and out["format"] == fmt and out["session_id"] is None
    assert [t["summary"] for t in out["trades"]] == [f"SELL_SHORT 595 {STOCK_B}", f"BUY 10 {STOCK_A}"]
    resp = await setup.client.get(out["download_url"], headers=setup.headers())
    assert resp.status_code == 200 and len(resp.content) == out["size_bytes"]
    assert f'filename="{out["file_name"]}"' in resp.headers["content-disposition"]
    if fmt == "fix":
        assert resp.content.count(b"35=D\x01") == 2 and b"1=ACC-9\x01" in resp.content
    listed = data(await setup.get(HISTORY, export_type="trades", format=fmt))
    assert out["export_id"] in {h["export_id"] for h in listed}
    other = await setup.client.get(out["download_url"], headers=setup.headers(setup.other))
    assert other.status_code == 404 and other.json()["error"]["code"] == "EXPORT_NOT_FOUND"


async def test_upload_csv_prices_market_orders_at_the_latest_close(setup) -> None:
    out = data(await setup.post(EXPORT, {"trades": TRADES, "format": "upload_csv"}), 201)
    resp = await setup.client.get(out["download_url"], headers=setup.headers())
    rows = list(csv.reader(io.StringIO(resp.text)))
    today = utcnow().date()
    assert rows[0] == ["ticker", "quantity", "entry_price", "entry_date", "tags"]
    assert rows[1][:3] == [STOCK_B, "-595", "80.0000"] and rows[2][:3] == [STOCK_A, "10", "99.5000"]
    assert abs(date.fromisoformat(rows[1][3]) - today) <= timedelta(days=1)  # US/Eastern date of the export
    closing = await setup.post(
        EXPORT, {"trades": [{"side": "SELL", "symbol": STOCK_A, "quantity": 1}], "format": "upload_csv"}
    )
    assert closing.status_code == 422 and "closes a position" in closing.json()["error"]["details"][0]["issue"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"trades": [{"side": "BUY", "symbol": "NOPE", "quantity": 1}], "format": "csv"}, "UNKNOWN_SYMBOL"),
        ({"trades": [{"side": "BUY", "symbol": STOCK_A, "quantity": 0}], "format": "csv"}, "VALIDATION_ERROR"),
        (
            {"trades": [{"side": "BUY", "symbol": STOCK_A, "quantity": 1, "order_type": "LIMIT"}], "format": "csv"},
            "VALIDATION_ERROR",
        ),
        ({"trades": TRADES, "session_id": str(uuid.uuid4()), "format": "csv"}, "VALIDATION_ERROR"),
        ({"format": "csv"}, "VALIDATION_ERROR"),
        ({"trades": TRADES, "format": "xlsx"}, "VALIDATION_ERROR"),
        ({"trades": TRADES, "format": "fix", "fix_delimiter": "tab"}, "VALIDATION_ERROR"),
    ],
)
async def test_trade_export_rejects_bad_input_and_stores_nothing(setup, stress_db, body, code) -> None:
    async with stress_db.session() as s:
        before = (await s.execute(sa.text("SELECT count(*) FROM stress.export"))).scalar()
    resp = await setup.post(EXPORT, body)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == code, resp.text
    async with stress_db.session() as s:
        assert (await s.execute(sa.text("SELECT count(*) FROM stress.export"))).scalar() == before


async def test_unknown_session_is_not_found(setup) -> None:
    resp = await setup.post(EXPORT, {"session_id": str(uuid.uuid4()), "format": "csv"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "SESSION_NOT_FOUND"


async def test_expired_export_is_gone_and_listed_without_a_link(setup, stress_db) -> None:
    out = data(await setup.post(EXPORT, {"trades": TRADES[:1], "format": "json"}), 201)
    async with stress_db.transaction() as s:
        await s.execute(
            sa.text("UPDATE stress.export SET expires_at = now() - interval '1 second' WHERE id = :e"),
            {"e": out["export_id"]},
        )
    resp = await setup.client.get(out["download_url"], headers=setup.headers())
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "GONE"
    listed = {h["export_id"]: h for h in data(await setup.get(HISTORY, limit="500"))}
    assert listed[out["export_id"]]["download_url"] is None
    missing = await setup.client.get(f"/api/v1/export/{uuid.uuid4()}/download", headers=setup.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "EXPORT_NOT_FOUND"


async def test_stored_files_round_trip_compressed(stress_db) -> None:
    content = files.FileContent("a.csv", "text/csv", b"x,y\n" * 10_000)
    async with stress_db.transaction() as s:
        stored = await files.put(s, owner=uuid.uuid4(), file=content, expires_at=utcnow() + timedelta(days=30))
        raw = (
            await s.execute(sa.text("SELECT length(content) FROM stress.stored_file WHERE id = :i"), {"i": stored.id})
        ).scalar()
        assert await files.read(s, stored.id) == content.data
    assert stored.size_bytes == 40_000 and raw < 1_000 and stored.sha256 == content.sha256


async def test_daily_reports_skip_backfills_and_non_cascading_snapshots(setup, seeder) -> None:
    before = await batch_report(setup)
    backfill = await seeder.batch_run(AS_OF, backfill=True)
    daily = DailyReports(setup.service.plumbing)
    for evt in (
        SnapshotCreated(portfolio_id=setup.book.portfolio_id, snapshot_date=AS_OF, as_of=AS_OF, run_id=backfill),
        SnapshotCreated(portfolio_id=setup.book.portfolio_id, snapshot_date=AS_OF, as_of=AS_OF, cascade=False),
    ):
        await daily.on_snapshots_created([evt])
    assert await batch_report(setup) == before  # not rebuilt


async def test_run_in_progress_follows_the_run_and_later_runs(setup, seeder, stress_db) -> None:
    run = await seeder.batch_run(AS_OF, backfill=False)
    async with stress_db.session() as s:
        assert await store.run_in_progress(s, run) is True
        assert await store.run_in_progress(s, uuid.uuid4()) is False
    await seeder.execute("UPDATE marketdata.batch_run SET status = 'completed' WHERE id = :r", {"r": run})
    async with stress_db.session() as s:
        assert await store.run_in_progress(s, run) is False


async def test_the_daily_report_waits_until_its_run_has_finished(setup, seeder) -> None:
    run = await seeder.batch_run(AS_OF, backfill=False)
    daily = DailyReports(setup.service.plumbing)
    event = SnapshotCreated(portfolio_id=setup.book.portfolio_id, snapshot_date=AS_OF, as_of=AS_OF, run_id=run)
    await daily.on_snapshots_created([event])
    queued = await batch_report(setup, "queued")
    assert await daily.build_pending() == 0  # the run is still going: nothing is built during a cycle
    early = await setup.get(f"{REPORTS}/{queued['report_id']}/download", format="md")
    assert early.status_code == 409 and early.json()["error"]["code"] == "REPORT_NOT_READY"
    await asyncio.sleep(1.5)
    assert (await batch_report(setup, "queued"))["report_id"] == queued["report_id"]
    await seeder.execute("UPDATE marketdata.batch_run SET status = 'completed' WHERE id = :r", {"r": run})
    done = await batch_report(setup, "completed")
    assert done["report_id"] == queued["report_id"]


async def test_the_report_command_writes_a_folder_and_a_dry_run_writes_nothing(setup, stress_db, tmp_path) -> None:
    out, pid = tmp_path / "reports", setup.book.portfolio_id
    kw = {"portfolio_ids": [pid, uuid.uuid4()], "as_of": AS_OF, "formats": ["md", "csv"], "out": out}
    dry = await generate_to_folder(stress_db, dry_run=True, **kw)
    assert not out.exists()
    names = [path.rsplit("/", 1)[1] for path, _ in dry[0].files]
    assert len(names) == 2 and names[0].endswith(f"_report_{AS_OF}.md") and names[1].endswith(f"_positions_{AS_OF}.csv")
    assert dry[1].files == [] and "no snapshot" in (dry[1].error or "")
    written = await generate_to_folder(stress_db, dry_run=False, **kw)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    rows = list(csv.DictReader(io.StringIO((out / names[1]).read_text())))
    assert len(rows) == 3 and written[0].files[1][1] == (out / names[1]).stat().st_size


def test_report_command_options_are_validated() -> None:
    assert parse_options([], True, "2026-11-20", "MD, pdf") == (None, AS_OF, ["md", "pdf"])
    for args in (
        ([], False, None, "md"),
        (["x"], True, None, "md"),
        ([], True, None, "docx"),
        ([], True, "11/20", "md"),
    ):
        with pytest.raises(ValueError):
            parse_options(*args)
