"""HTTP routes #72 (stored prices), #73 (security master) and #76 (price import)."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
import sqlalchemy as sa
from md_support import MD_ADMIN, MD_SECRET, MD_USER, md_settings

from common.auth import issue_access_token
from common.bus import InProcessBus
from marketdata.main import create_service
from marketdata.market_data import collect_market_data

pytestmark = pytest.mark.integration

AS_OF = date(2026, 11, 24)
IMPORT = "/api/v1/market-data/prices/import"


@pytest.fixture(scope="module")
async def env(md_env):
    async with md_env.db.transaction() as session:
        await session.execute(sa.text("TRUNCATE marketdata.daily_price, marketdata.rate_observation"))
    md_env.ctx.ample_history.forget()  # the prices it learnt about are gone
    await collect_market_data(md_env.ctx, as_of=AS_OF, symbols=["SPY", "BRK-B", "SPY270917C00460000"])
    return md_env


async def _outbox(env) -> list[dict]:
    rows = await env.db.fetch("SELECT routing_key, body FROM marketdata.outbox ORDER BY id")
    return [{"routing_key": r["routing_key"], **json.loads(bytes(r["body"]))} for r in rows]


def _csv(text: str) -> dict:
    return {"file": ("prices.csv", text.encode(), "text/csv")}


# ---------------------------------------------------------------- #72


async def test_prices_default_to_the_90_days_ending_at_the_latest_close(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get("/api/v1/market-data/prices/SPY")
    assert resp.status_code == 200
    body = resp.json()
    data = body["data"]
    assert (data["symbol"], data["source"], data["start_date"], data["end_date"]) == (
        "SPY", "fixture", "2026-08-26", "2026-11-24",
    )  # fmt: skip
    points = data["points"]
    assert points[0]["date"] >= "2026-08-26" and points[-1]["date"] == "2026-11-24"
    assert points[-1]["close"] == "530.0000" and points[-1]["adj_close"] == "530.0000"
    assert set(points[-1]) == {"date", "open", "high", "low", "close", "adj_close", "volume", "implied_volatility"}
    assert isinstance(points[-1]["volume"], int)
    assert body["meta"]["as_of"] == "2026-11-24" and body["meta"]["data_source"] == "fixture"


async def test_prices_resolve_aliases_and_select_fields(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get(
            "/api/v1/market-data/prices/brk.b",
            params={"start_date": "2026-11-20", "end_date": "2026-11-24", "fields": "close,volume"},
        )
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["symbol"] == "BRK-B"
    assert [p["date"] for p in data["points"]] == ["2026-11-20", "2026-11-23", "2026-11-24"]
    assert all(set(p) == {"date", "close", "volume"} for p in data["points"])
    assert data["points"][-1]["close"] == "440.0000"


async def test_option_prices_carry_the_vendor_implied_volatility(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get(
            "/api/v1/market-data/prices/SPY270917C00460000",
            params={"start_date": "2026-11-24", "fields": "close,implied_volatility"},
        )
    point = resp.json()["data"]["points"][-1]
    assert point["close"] == "7.5000" and 0.05 < point["implied_volatility"] < 0.5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "2026-11-24", "end_date": "2026-11-20"}, "query.start_date"),
        ({"start_date": "2021-11-23", "end_date": "2026-11-24"}, "query.start_date"),
        ({"start_date": "2026-02-30"}, "query.start_date"),
        ({"fields": "close,bid"}, "query.fields"),
    ],
)
async def test_bad_ranges_and_fields_are_422(env, params: dict, field: str) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get("/api/v1/market-data/prices/SPY", params=params)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == field


async def test_a_range_of_exactly_five_years_is_allowed(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get(
            "/api/v1/market-data/prices/SPY", params={"start_date": "2021-11-24", "end_date": "2026-11-24"}
        )
    assert resp.status_code == 200
    assert len(resp.json()["data"]["points"]) >= 757


async def test_unknown_symbols_are_404_and_anonymous_callers_401(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get("/api/v1/market-data/prices/NOPE")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "SYMBOL_NOT_FOUND"
    async with env.client(None) as c:
        assert (await c.get("/api/v1/market-data/prices/SPY")).status_code == 401


async def test_a_live_spy_close_makes_the_data_source_live(env) -> None:
    async with env.client() as c:
        resp = await c.post(IMPORT, files=_csv("symbol,date,close\nSPY,2026-11-25,531.10\n"), data={"source": "vendor"})
        assert resp.status_code == 200
        prices = await c.get(
            "/api/v1/market-data/prices/SPY", params={"start_date": "2026-11-25", "end_date": "2026-11-25"}
        )
    try:
        assert prices.json()["meta"]["data_source"] == "live" and prices.json()["data"]["source"] == "vendor"
    finally:
        async with env.db.transaction() as session:
            await session.execute(sa.text("DELETE FROM marketdata.daily_price WHERE price_date = '2026-11-25'"))


# ---------------------------------------------------------------- #73


async def test_security_record_resolves_brk_dot_b(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get("/api/v1/securities/BRK.B")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["symbol"] == "BRK-B" and data["aliases"] == ["BRK.B"]
    assert (data["security_type"], data["sector"], data["industry"], data["country"]) == (
        "stock", "Financial Services", "Insurance - Diversified", "US",
    )  # fmt: skip
    assert data["option"] is None and data["enrichment_status"] == "ok"
    assert data["market_cap"] == "950000000000.00"


async def test_option_records_have_an_option_block(env) -> None:
    async with env.client(MD_USER) as c:
        resp = await c.get("/api/v1/securities/META270917P00450000")
    data = resp.json()["data"]
    assert data["option"] == {
        "underlying_symbol": "META", "option_type": "P", "strike_price": "450.0000",
        "expiration_date": "2027-09-17", "multiplier": 100,
    }  # fmt: skip
    assert data["sector"] == "Communication Services"  # classified like its underlying


async def test_vix_is_an_index_and_unknown_symbols_404(env) -> None:
    async with env.client(MD_USER) as c:
        vix = await c.get("/api/v1/securities/vix")
        missing = await c.get("/api/v1/securities/NOPE")
    assert vix.json()["data"]["security_type"] == "index"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SYMBOL_NOT_FOUND"


# ---------------------------------------------------------------- #76


async def test_import_is_admin_only_and_needs_multipart(env) -> None:
    async with env.client(MD_USER) as c:
        assert (await c.post(IMPORT, files=_csv("symbol,date,close\nSPY,2026-11-20,1\n"))).status_code == 403
    async with env.client() as c:
        resp = await c.post(IMPORT, content=b"symbol,date,close\n", headers={"content-type": "text/csv"})
        assert resp.status_code == 415 and resp.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
        resp = await c.post(IMPORT, data={"source": "x"}, files={"other": ("a.txt", b"x", "text/plain")})
        assert resp.status_code == 422 and resp.json()["error"]["details"][0]["field"] == "body.file"
        resp = await c.post(IMPORT, files=_csv("symbol,date,close\nSPY,2026-11-20,1\n"), data={"source": "fixture"})
        assert resp.status_code == 422 and resp.json()["error"]["details"][0]["field"] == "body.source"


async def test_a_bad_file_is_rejected_whole_with_a_row_report(env) -> None:
    before = await env.scalar("SELECT count(*) FROM marketdata.daily_price")
    text = "symbol,date,close,colour\nNEWCO,2026-11-20,10,x\nNEWCO,2026-11-21,-2,x\nNEWCO,2099-01-01,3,x\n"
    async with env.client() as c:
        resp = await c.post(IMPORT, files=_csv(text))
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {(d["row"], d["field"]) for d in error["details"]} == {(1, "colour"), (3, "close"), (4, "date")}
    assert await env.scalar("SELECT count(*) FROM marketdata.daily_price") == before
    assert await env.scalar("SELECT count(*) FROM marketdata.security WHERE symbol = 'NEWCO'") == 0


async def test_a_good_file_upserts_creates_pending_securities_and_publishes_prices_updated(env) -> None:
    text = (
        "Symbol,Date,Open,High,Low,Close,Volume,Dividend\n"
        "ACME,2026-11-20,10.00,10.50,9.90,10.25,1200,\n"
        "ACME,2026-11-23,10.30,10.80,10.20,10.75,900,0.20\n"
        "ACME271217C00012000,2026-11-23,,,,0.85,10,\n"
        "brk.b,2026-11-24,,,,441.00,,\n"
    )
    async with env.client() as c:
        resp = await c.post(IMPORT, files=_csv(text), data={"source": "broker_eod"})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data == {
        "rows_imported": 4,
        "symbols": ["ACME", "ACME271217C00012000", "BRK-B"],
        "first_date": "2026-11-20",
        "last_date": "2026-11-24",
        "source": "broker_eod",
        "securities_created": ["ACME", "ACME271217C00012000"],
    }
    acme = await env.db.fetchrow("SELECT * FROM marketdata.security WHERE symbol = 'ACME'")
    assert (acme["security_type"], acme["enrichment_status"]) == ("stock", "pending")
    assert acme["dividend_yield"] == pytest.approx(0.20 / 10.75)
    option = await env.db.fetchrow("SELECT * FROM marketdata.security WHERE symbol = 'ACME271217C00012000'")
    assert (option["security_type"], option["underlying_symbol"], option["multiplier"]) == ("option", "ACME", 100)
    brk = await env.db.fetchrow(
        "SELECT close, source FROM marketdata.daily_price WHERE symbol = 'BRK-B' AND price_date = '2026-11-24'"
    )
    assert (str(brk["close"]), brk["source"]) == ("441.0000", "broker_eod")  # replaced, not duplicated
    assert (
        await env.scalar(
            "SELECT count(*) FROM marketdata.daily_price WHERE symbol = 'BRK-B' AND price_date = '2026-11-24'"
        )
        == 1
    )
    event = (await _outbox(env))[-1]
    assert event["routing_key"] == "prices.updated" and event["cascade"] is False
    assert event["symbols"] == ["ACME", "ACME271217C00012000", "BRK-B"] and event["as_of"] == "2026-11-24"

    async with env.client() as c:
        again = await c.post(IMPORT + "?cascade=true", files=_csv("symbol,date,close\nACME,2026-11-20,10.40\n"))
    assert again.status_code == 200 and again.json()["data"]["securities_created"] == []
    assert (await _outbox(env))[-1]["cascade"] is True
    assert (
        str(
            await env.scalar(
                "SELECT close FROM marketdata.daily_price WHERE symbol = 'ACME' AND price_date = '2026-11-20'"
            )
        )
        == "10.4000"
    )


async def test_oversized_uploads_are_413(env) -> None:
    service = create_service(md_settings(env.url, import_max_bytes=64), env.db, InProcessBus())
    big = "symbol,date,close\n" + "SPY,2026-11-20,530\n" * 10
    headers = {"Authorization": f"Bearer {issue_access_token(MD_ADMIN, MD_SECRET, 60)}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url="http://t", headers=headers
    ) as c:
        resp = await c.post(IMPORT, files=_csv(big))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_openapi_documents_the_three_routes(env) -> None:
    async with env.client(None) as c:
        spec = (await c.get("/openapi.json")).json()
    assert "multipart/form-data" in spec["paths"][IMPORT]["post"]["requestBody"]["content"]
    for path in ("/api/v1/market-data/prices/{symbol}", "/api/v1/securities/{symbol}"):
        operation = spec["paths"][path]["get"]
        assert operation["summary"] and operation["description"]
        assert "200" in operation["responses"]


async def test_fields_accept_date_and_are_case_insensitive(env) -> None:
    async with env.client(MD_USER) as c:
        only_dates = await c.get(
            "/api/v1/market-data/prices/SPY", params={"start_date": "2026-11-24", "fields": "date"}
        )
        upper = await c.get("/api/v1/market-data/prices/SPY", params={"start_date": "2026-11-24", "fields": "CLOSE"})
    assert only_dates.json()["data"]["points"] == [{"date": "2026-11-24"}]
    assert upper.json()["data"]["points"] == [{"date": "2026-11-24", "close": "530.0000"}]
