"""Reports and exports through the gateway in both running modes (api.md §4.10, users.md §4, demo.md §10.12
steps 1–4 and §10.11 step 6).

Each demo user generates a report (md, json, csv), sees it complete within 30 s, downloads the three files
(names, media types, the fixture statement on the first line, 16/17/30 CSV rows, exposures equal to
GET /api/v1/portfolio to the cent, the fixture sums of R-AC5; for the hedge-fund book, correlation clusters
and matrix equal to the factors routes #41/#42) and finds it listed newest first next to the daily report
the cycle made after its snapshot. The hedge-fund user exports a modelling session's trades
(SELL_SHORT 595 QQQ, BUY_TO_COVER 300 NFLX) as csv, json and FIX (parsed back with simplefix), sees them in
the export history, and round-trips an `upload_csv` export through the upload API to the same positions.
All-in-one mode uses the session `system` (a demo reset at the end removes what the module made);
distributed mode runs the same flows on six `sigmasight serve` processes.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pypdf
import pytest
import simplefix
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import DEMO_EMAILS, FIXTURE_AS_OF, System
from tests.e2e.surface_support import (
    assert_error,
    bearer,
    demo_reset_and_settle,
    roomy_rate_limit,
    token,
    unique,
    wait_job,
)
from tests.e2e.test_risk_routes import _login, cycled_cluster  # noqa: F401 - the distributed fixture

from stress.reports.markdown import FIXTURE_LINE, HEADINGS

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AS_OF = FIXTURE_AS_OF.isoformat()
ROWS = {"individual": 16, "hnw": 17, "hedgefund": 30}
# users.md R-AC5: fixture sums of the CSV columns.
CSV_SUMS = {
    "individual": {"market_value": Decimal("485000.00")},
    "hedgefund": {"market_value": Decimal("2366200.00"), "unrealized_pnl": Decimal("301500.00")},
}
MEDIA = {"md": "text/markdown", "json": "application/json", "csv": "text/csv", "pdf": "application/pdf"}
SESSIONS = "/api/v1/modeling/sessions"


async def call(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], status: int, **kw: Any
) -> Any:
    resp = await client.request(method, url, headers=headers, **kw)
    assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text[:800]}"
    return resp.json()["data"]


def usd(value: str) -> str:
    d = Decimal(value)
    return f"{'-' if d < 0 else ''}${abs(d):,.2f}"


async def report_flow(client: httpx.AsyncClient, headers: dict[str, str], who: str, formats: list[str]) -> dict:
    """demo.md §10.12 steps 1–4 for one user; returns the report's JSON document."""
    me = await call(client, "GET", "/api/v1/auth/me", headers, 200)
    pid = next(p["id"] for p in me["portfolios"] if p["is_default"])
    live = await call(client, "GET", "/api/v1/portfolio", headers, 200)
    # 1. 202 with the report id; the job id carries it.
    accepted = await call(
        client, "POST", "/api/v1/reports/generate", headers, 202, json={"portfolio_id": pid, "formats": formats}
    )
    rid = accepted["report_id"]
    assert accepted["job_type"] == "report.generate" and accepted["job_id"] == f"str_{rid}"
    assert accepted["status_url"] == f"/api/v1/reports/{rid}/status"
    # 2. completed within 30 seconds.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        status = await call(client, "GET", accepted["status_url"], headers, 200)
        if status["status"] in ("completed", "failed"):
            break
        assert loop.time() < deadline, status
        await asyncio.sleep(0.5)
    assert status["status"] == "completed", status
    assert status["as_of_date"] == AS_OF and status["data_source"] == "fixture" and status["expires_at"]
    job = await call(client, "GET", f"/api/v1/jobs/{accepted['job_id']}", headers, 200)
    assert job["status"] == "completed" and job["job_type"] == "report.generate"
    # 3. the files.
    got: dict[str, bytes] = {}
    for f in status["files"]:
        resp = await client.get(f["download_url"], headers=headers)
        assert resp.status_code == 200, resp.text[:300]
        assert resp.headers["content-type"].startswith(MEDIA[f["format"]])
        assert f'filename="{f["file_name"]}"' in resp.headers["content-disposition"]
        assert len(resp.content) == f["size_bytes"]
        got[f["format"]] = resp.content
    slug = live["portfolio"]["name"].lower().replace(" ", "-")
    assert {f["file_name"] for f in status["files"]} >= {
        f"{slug}_report_{AS_OF}.md",
        f"{slug}_data_{AS_OF}.json",
        f"{slug}_positions_{AS_OF}.csv",
    }
    doc = orjson.loads(got["json"])
    text = got["md"].decode()
    assert text.splitlines()[0] == FIXTURE_LINE  # a fixture report says so on its first line
    at = [text.index(f"\n## {h}\n") for h in HEADINGS]
    assert at == sorted(at)
    # R-AC3: exposures equal GET /api/v1/portfolio to the cent; the Markdown opens with them.
    assert live["as_of"] == AS_OF and doc["report"]["as_of_date"] == AS_OF
    for view in ("market_value", "exposure"):
        assert {k: doc["exposures"][view][k] for k in live[view]} == live[view], view
    assert doc["exposures"]["notional"] == live["notional"] and doc["portfolio"]["equity"] == live["equity"]
    summary = text[text.index("## Executive summary") : text.index("## Portfolio snapshot")]
    assert f"- Equity: {usd(live['equity'])}" in summary and usd(live["exposure"]["gross"]) in summary
    assert f"Portfolio beta vs SPY: {doc['risk_metrics']['portfolio_beta']:.4f}" in summary
    # R-AC2 / R-AC5: one CSV row per position; fixture sums.
    rows = list(csv.DictReader(io.StringIO(got["csv"].decode())))
    assert len(rows) == ROWS[who] == doc["portfolio"]["position_count"]
    for column, total in CSV_SUMS.get(who, {}).items():
        assert sum(Decimal(r[column]) for r in rows) == total, column
    assert sum(abs(Decimal(r["dollar_exposure"])) for r in rows) == Decimal(live["exposure"]["gross"])
    if "pdf" in got:
        pdf_text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(got["pdf"])).pages)
        for value in (live["equity"], live["exposure"]["gross"], live["exposure"]["net"]):
            assert usd(value) in pdf_text, value
    # 4. listed newest first, with the daily report made after the run's snapshots (R-AC7; it is queued
    # once the run has finished and built in the background, so it may take a moment to appear and to
    # finish: wait for a terminal status, not only for the row).
    deadline = loop.time() + 30
    while True:
        listed = await call(client, "GET", "/api/v1/reports", headers, 200, params={"portfolio_id": pid})
        daily = [r for r in listed if r["trigger"] == "batch" and r["as_of_date"] == AS_OF]
        if any(r["status"] in ("completed", "failed") for r in daily) or loop.time() > deadline:
            break
        await asyncio.sleep(1)
    assert len(daily) == 1 and daily[0]["status"] == "completed", listed
    api = [r for r in listed if r["trigger"] == "api"]
    assert api[0]["report_id"] == rid
    assert [r["created_at"] for r in listed] == sorted((r["created_at"] for r in listed), reverse=True)
    history = await call(client, "GET", "/api/v1/export/history", headers, 200, params={"export_type": "report"})
    assert {h["format"] for h in history if h["report_id"] == rid} == set(formats)
    if who == "hedgefund":
        await correlations_flow(client, headers, pid, doc, text)
    return dict(doc)


CLUSTER_KEYS = ("cluster_number", "nickname", "nickname_source", "avg_correlation", "gross", "net")
MEMBER_KEYS = ("symbol", "exposure", "correlation_to_cluster")


async def correlations_flow(client: httpx.AsyncClient, headers: dict[str, str], pid: str, doc: dict, text: str) -> None:
    """The report's clusters are GET …/positions/metrics's (#41) and its matrix is …/matrix's (#42) for the
    report date; the Markdown lists the top clusters with their members."""
    c = doc["correlations"]
    assert c["calculation_date"] == AS_OF and c["clusters"], c  # the hedge-fund demo book has clusters
    params = {"portfolio_id": pid, "as_of_date": AS_OF}
    metrics = await call(client, "GET", "/api/v1/risk/correlations/positions/metrics", headers, 200, params=params)
    matrix = await call(client, "GET", "/api/v1/risk/correlations/positions/matrix", headers, 200, params=params)
    served = metrics["clusters"]
    assert [{k: x[k] for k in CLUSTER_KEYS} for x in c["clusters"]] == [{k: x[k] for k in CLUSTER_KEYS} for x in served]
    assert [[{k: m[k] for k in MEMBER_KEYS} for m in x["members"]] for x in c["clusters"]] == [
        [{k: m[k] for k in MEMBER_KEYS} for m in x["members"]] for x in served
    ]
    for mine, theirs in zip(c["clusters"], served, strict=True):  # the report writes shares to 4 dp
        assert mine["share_of_gross"] == pytest.approx(theirs["share_of_gross"], abs=5.1e-5)
    assert c["matrix"] == {"symbols": [n["symbol"] for n in matrix["nodes"]], "values": matrix["correlations"]}
    top = c["clusters"][0]
    members = ", ".join(m["symbol"] for m in top["members"])
    assert f"| 1 | {top['nickname']} | {members} | {usd(top['gross'])} | {usd(top['net'])} |" in text


async def session_export_flow(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """demo.md §10.11 step 6: the session's trades as csv, json and FIX; the history lists them."""
    session = await call(client, "POST", SESSIONS, headers, 201, json={"name": unique("Export the hedge")})
    sid = session["session_id"]
    await call(
        client,
        "POST",
        f"{SESSIONS}/{sid}/trades",
        headers,
        201,
        json={"ticker": "QQQ", "side": "short", "amount": 250000},
    )
    positions = await call(client, "GET", "/api/v1/positions", headers, 200, params={"limit": "100"})
    nflx = next(p["id"] for p in positions if p["symbol"] == "NFLX")
    await call(
        client,
        "POST",
        f"{SESSIONS}/{sid}/trades",
        headers,
        201,
        json={"position_id": nflx, "action": "reduce", "quantity": 300},
    )
    expected = ["SELL_SHORT 595 QQQ", "BUY_TO_COVER 300 NFLX"]
    made = []
    for fmt in ("csv", "json", "fix"):
        out = await call(
            client,
            "POST",
            "/api/v1/export/trades",
            headers,
            201,
            json={"session_id": sid, "format": fmt, "fix_delimiter": "pipe"},
        )
        assert [t["summary"] for t in out["trades"]] == expected and out["session_id"] == sid
        resp = await client.get(out["download_url"], headers=headers)
        assert resp.status_code == 200 and len(resp.content) == out["size_bytes"]
        made.append(out["export_id"])
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(resp.text)))
            assert [(r["side"], r["quantity"], r["symbol"]) for r in rows] == [
                ("SELL_SHORT", "595", "QQQ"),
                ("BUY_TO_COVER", "300", "NFLX"),
            ]
        if fmt == "fix":
            sides = []
            for line in resp.content.splitlines():
                parser = simplefix.FixParser()
                parser.append_buffer(line.replace(b"|", b"\x01"))
                message = parser.get_message()  # simplefix checks nothing; the framing is asserted below
                raw = line.replace(b"|", b"\x01")
                at = raw.rindex(b"10=")
                assert int(message.get(10)) == sum(raw[:at]) % 256
                head = raw.index(b"\x01", raw.index(b"9=")) + 1
                assert int(message.get(9)) == at - head
                sides.append((message.get(54), message.get(55), message.get(38)))
            assert sides == [(b"5", b"QQQ", b"595"), (b"1", b"NFLX", b"300")]
    history = await call(client, "GET", "/api/v1/export/history", headers, 200, params={"export_type": "trades"})
    listed = {h["export_id"]: h for h in history}
    assert all(listed[e]["session_id"] == sid and listed[e]["trade_count"] == 2 for e in made)
    closing = await client.post(
        "/api/v1/export/trades", headers=headers, json={"session_id": sid, "format": "upload_csv"}
    )
    assert_error(closing, 422, "VALIDATION_ERROR")


async def reimport_flow(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """An `upload_csv` export uploaded through #24 becomes a portfolio with exactly those positions."""
    trades = [
        {"side": "BUY", "symbol": "AAPL", "quantity": 10, "order_type": "LIMIT", "limit_price": "150.25"},
        {"side": "SELL_SHORT", "symbol": "MSFT", "quantity": 7},
    ]
    out = await call(
        client, "POST", "/api/v1/export/trades", headers, 201, json={"trades": trades, "format": "upload_csv"}
    )
    file = await client.get(out["download_url"], headers=headers)
    exported = list(csv.DictReader(io.StringIO(file.text)))
    assert [(r["ticker"], r["quantity"]) for r in exported] == [("AAPL", "10"), ("MSFT", "-7")]
    resp = await client.post(
        "/api/v1/portfolio/upload",
        headers=headers,
        files={"file": (out["file_name"], file.content, "text/csv")},
        data={"portfolio_name": unique("re-imported trades")},
    )
    assert resp.status_code == 202, resp.text
    accepted = resp.json()["data"]
    job = await wait_job(client, headers, accepted["status_url"], timeout=120)
    assert job["status"] == "completed", job
    upload = await call(client, "GET", f"/api/v1/portfolio/upload/{accepted['upload_id']}/status", headers, 200)
    assert upload["status"] == "completed", upload
    positions = await call(
        client, "GET", "/api/v1/positions", headers, 200, params={"portfolio_id": upload["portfolio_id"]}
    )
    got = sorted((p["symbol"], Decimal(p["quantity"]), Decimal(p["entry_price"]), p["entry_date"]) for p in positions)
    want = sorted((r["ticker"], Decimal(r["quantity"]), Decimal(r["entry_price"]), r["entry_date"]) for r in exported)
    assert got == want


# --------------------------------------------------------------------------------------- all-in-one


@pytest.fixture(scope="module")
async def reset_after(system: System) -> AsyncIterator[None]:
    """Remove the portfolios, sessions, reports and exports this module makes (demo reset, api.md #74)."""
    yield
    async with roomy_rate_limit(system), system.client() as client:
        await demo_reset_and_settle(system, client)


async def test_report_demo_script_for_every_demo_user_all_in_one(system: System, reset_after: None) -> None:
    async with roomy_rate_limit(system), system.client() as client:
        for who, email in DEMO_EMAILS.items():
            formats = ["md", "json", "csv", "pdf"] if who == "hedgefund" else ["md", "json", "csv"]
            await report_flow(client, bearer(await token(system, email)), who, formats)
        other = bearer(await token(system, DEMO_EMAILS["individual"]))
        mine = bearer(await token(system, DEMO_EMAILS["hedgefund"]))
        rid = (await call(client, "GET", "/api/v1/reports", mine, 200))[0]["report_id"]
        assert_error(await client.get(f"/api/v1/reports/{rid}/status", headers=other), 404, "REPORT_NOT_FOUND")
        assert_error(
            await client.get(f"/api/v1/reports/{rid}/download?format=md", headers=other), 404, "REPORT_NOT_FOUND"
        )


async def test_trade_exports_and_reimport_all_in_one(system: System, reset_after: None) -> None:
    async with roomy_rate_limit(system), system.client() as client:
        headers = bearer(await token(system, DEMO_EMAILS["hedgefund"]))
        await session_export_flow(client, headers)
        await reimport_flow(client, headers)


# --------------------------------------------------------------------------------------- distributed


@pytest.mark.slow
async def test_report_demo_script_and_exports_distributed(cycled_cluster: Cluster) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=cycled_cluster.gateway_url, timeout=60) as client:
        individual, hedgefund = await asyncio.gather(
            _login(client, DEMO_EMAILS["individual"], "demo12345"),
            _login(client, DEMO_EMAILS["hedgefund"], "demo12345"),
        )
        await report_flow(client, bearer(individual), "individual", ["md", "json", "csv"])
        await report_flow(client, bearer(hedgefund), "hedgefund", ["md", "json", "csv", "pdf"])
        await session_export_flow(client, bearer(hedgefund))
        await reimport_flow(client, bearer(hedgefund))
