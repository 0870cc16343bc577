"""#29 GET /api/v1/risk/greeks and #30 POST /api/v1/risk/greeks/calculate on a real database."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from greeks_harness import ADMIN, NOBODY, PA, PB, PC, PD, SYM_NOPE_C, SYM_XYZ_C, SYM_XYZ_P, T0, U1, U2, Harness

from common.events import PricesUpdated

pytestmark = pytest.mark.integration

URL = "/api/v1/risk/greeks"
CALC = "/api/v1/risk/greeks/calculate"


def rel_ok(actual: float, expected: float, rel: float = 1e-4) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


async def computed(h: Harness) -> None:
    await h.bus.publish(PricesUpdated(as_of=T0, portfolio_ids=[PA, PB, PC]))
    await h.bus.drain()


async def test_routes_require_a_bearer_token(harness: Harness):
    assert (await harness.client.get(URL)).status_code == 401
    r = await harness.client.post(CALC, json={"portfolio_id": str(PA)})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_summary_of_the_default_portfolio(harness: Harness):
    await computed(harness)
    r = await harness.client.get(URL, headers=harness.headers(U1))
    assert r.status_code == 200, r.text
    body = r.json()
    data, meta = body["data"], body["meta"]
    assert data["portfolio_id"] == str(PA) and data["calculation_date"] == T0.isoformat()
    assert meta["as_of"] == T0.isoformat() and meta["data_source"] == "fixture"
    rows = await harness.rows(
        "SELECT * FROM greeks.position_greek WHERE portfolio_id = :p AND status IN ('ok','expired')", p=PA
    )
    assert Decimal(data["option_totals"]["dollar_delta"]) == sum(r["dollar_delta"] for r in rows)
    assert data["option_totals"]["theta"] == pytest.approx(sum(r["theta"] for r in rows), abs=1e-4)
    # Net exposure: stocks at market value plus stored option dollar exposure (Σ dollar_exposure of open positions).
    assert data["portfolio_dollar_delta"] == "95500.00"
    xyz = next(u for u in data["by_underlying"] if u["underlying"] == "XYZ")
    assert xyz["stock_shares"] == "1000"
    assert rel_ok(xyz["option_delta"], -135.161)
    assert rel_ok(xyz["net_delta_shares"], 1000 - 135.161)
    assert Decimal(xyz["dollar_delta"]) == Decimal("100000") + Decimal("-13516.10")
    assert xyz["option_positions"] == 2
    assert [u["underlying"] for u in data["by_underlying"]] == ["ABC", "NOPE", "XYZ"]
    cov = data["coverage"]
    assert (cov["option_positions"], cov["ok"], cov["expired"], cov["missing_inputs"], cov["error"]) == (4, 2, 1, 1, 0)
    assert cov["failed"] == [
        {
            "position_id": str(uuid.uuid5(PA, SYM_NOPE_C)),
            "symbol": SYM_NOPE_C,
            "status": "missing_inputs",
            "reason": "underlying_price_missing",
        }
    ]
    assert data["data_status"] == "partial" and data["note"] is None and data["positions"] is None
    assert data["expiring"] == {"within_days": 7, "positions": 0, "dollar_delta": "0.00", "dollar_gamma_1pct": "0.00"}


async def test_view_underlying_and_expiring_filters(harness: Harness):
    await computed(harness)
    h = harness.headers(U1)
    shorts = (await harness.client.get(URL, params={"view": "shorts", "portfolio_id": str(PA)}, headers=h)).json()[
        "data"
    ]
    assert shorts["coverage"]["option_positions"] == 2  # the written calls and the written (expired) puts
    assert shorts["portfolio_dollar_delta"] == "-4500.00"  # short SPY stock
    longs = (await harness.client.get(URL, params={"view": "LONGS"}, headers=h)).json()["data"]
    assert longs["coverage"]["option_positions"] == 2
    assert all(u["underlying"] != "XYZ" or u["stock_shares"] == "1000" for u in longs["by_underlying"])
    only_xyz = (
        await harness.client.get(URL, params={"underlying": "xyz", "expiring_within_days": 30}, headers=h)
    ).json()["data"]
    assert [u["underlying"] for u in only_xyz["by_underlying"]] == ["XYZ"]
    assert only_xyz["expiring"]["positions"] == 1
    assert only_xyz["expiring"]["dollar_delta"] == "-13516.10"
    for bad in ({"view": "everything"}, {"expiring_within_days": 400}, {"include_positions": "maybe"}):
        r = await harness.client.get(URL, params=bad, headers=h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_positions_carry_the_greeks_schema(harness: Harness):
    await computed(harness)
    r = await harness.client.get(URL, params={"include_positions": "true"}, headers=harness.headers(U1))
    positions = {p["symbol"]: p for p in r.json()["data"]["positions"]}
    sc = positions[SYM_XYZ_C]
    assert sc["quantity"] == "-5" and sc["option_type"] == "C" and sc["strike_price"] == "105.0000"
    g = sc["greeks"]
    assert g["status"] == "ok" and g["dollar_delta"] == "-13516.10" and g["dollar_gamma_1pct"] == "-2306.11"
    assert rel_ok(g["delta"], -135.161) and rel_ok(g["theta"], 20.7766) and rel_ok(g["vega"], -47.3858)
    assert g["inputs"]["iv_source"] == "vendor" and g["inputs"]["days_to_expiry"] == 30
    assert g["inputs"]["underlying_price"] == "100.0000" and g["inputs"]["model_price"] == "1.1444"
    assert rel_ok(g["per_share"]["gamma"], 0.0461222)
    assert positions[SYM_XYZ_P]["greeks"]["status"] == "expired" and positions[SYM_XYZ_P]["greeks"]["delta"] == 0.0
    missing = positions[SYM_NOPE_C]["greeks"]
    assert (
        missing["delta"] is None and missing["dollar_delta"] is None and missing["reason"] == "underlying_price_missing"
    )


async def test_other_users_portfolio_is_not_found_but_admin_can_read_it(harness: Harness):
    await computed(harness)
    r = await harness.client.get(URL, params={"portfolio_id": str(PC)}, headers=harness.headers(U1))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    r = await harness.client.get(URL, params={"portfolio_id": str(uuid.uuid4())}, headers=harness.headers(U1))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    r = await harness.client.get(URL, params={"portfolio_id": str(PC)}, headers=harness.headers(ADMIN, "admin"))
    assert r.status_code == 200 and r.json()["data"]["coverage"]["ok"] == 1


async def test_user_without_portfolio_gets_upload_hint(harness: Harness):
    r = await harness.client.get(URL, headers=harness.headers(NOBODY))
    err = r.json()["error"]
    assert (
        r.status_code == 404 and err["code"] == "PORTFOLIO_NOT_FOUND" and err["hint"] == "POST /api/v1/portfolio/upload"
    )


async def test_options_never_calculated_is_not_calculated(harness: Harness):
    r = await harness.client.get(URL, headers=harness.headers(U1))
    err = r.json()["error"]
    assert (
        r.status_code == 404 and err["code"] == "NOT_CALCULATED" and err["hint"] == "POST /api/v1/risk/greeks/calculate"
    )


async def test_book_without_options_gets_a_note(harness: Harness):
    r = await harness.client.get(URL, params={"portfolio_id": str(PB)}, headers=harness.headers(U1))
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["note"] == "no option positions"
    assert data["option_totals"] == {
        "dollar_delta": "0.00",
        "dollar_gamma_1pct": "0.00",
        "theta": 0.0,
        "vega": 0.0,
        "rho": 0.0,
    }
    assert data["by_underlying"] == [] and data["portfolio_dollar_delta"] == "9000.00"


async def test_onboarding_portfolio_is_reachable_only_by_id(harness: Harness):
    r = await harness.client.get(URL, params={"portfolio_id": str(PD)}, headers=harness.headers(U2))
    assert r.status_code == 200 and r.json()["data"]["note"] == "no option positions"
    r = await harness.client.get(URL, headers=harness.headers(U2))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_CALCULATED"  # default = Gamma (has an option)


# ---------------------------------------------------------------- #30 ad hoc


async def test_ad_hoc_results_equal_example_2_and_store_nothing(harness: Harness):
    body = {
        "positions": [
            {
                "underlying": "XYZ",
                "option_type": "C",
                "strike_price": 105,
                "expiration_date": "2026-12-24",
                "quantity": -5,
                "implied_volatility": 0.25,
            },
            {"symbol": "XYZ261224P00105000", "quantity": "1", "implied_volatility": 0.25},
            {
                "underlying": "NOPE",
                "option_type": "P",
                "strike_price": "5",
                "expiration_date": "2027-01-15",
                "quantity": 1,
            },
        ],
        "as_of_date": T0.isoformat(),
    }
    r = await harness.client.post(CALC, json=body, headers=harness.headers(U1))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert r.json()["meta"]["as_of"] == T0.isoformat()
    call, put, missing = (x["greeks"] for x in data["results"])
    assert [x["input_index"] for x in data["results"]] == [0, 1, 2]
    assert data["results"][0]["symbol"] == "XYZ261224C00105000"
    assert call["status"] == "ok" and call["inputs"]["iv_source"] == "override"
    assert rel_ok(call["delta"], -135.161) and rel_ok(call["gamma"], -23.0611) and rel_ok(call["rho"], -10.6388)
    assert call["dollar_delta"] == "-13516.10"
    assert rel_ok(put["per_share"]["delta"], -0.728035) and rel_ok(put["per_share"]["theta"], -0.0326991)
    assert put["inputs"]["model_price"] == "5.8780"
    assert missing["status"] == "missing_inputs" and missing["delta"] is None
    assert Decimal(data["totals"]["dollar_delta"]) == Decimal(call["dollar_delta"]) + Decimal(put["dollar_delta"])
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek") == 0


async def test_ad_hoc_defaults_as_of_to_latest_spy_close_and_resolves_aliases(harness: Harness):
    body = {
        "positions": [
            {
                "underlying": "xyz.a",
                "option_type": "c",
                "strike_price": 105,
                "expiration_date": "2026-12-24",
                "quantity": 1,
            }
        ]
    }
    r = await harness.client.post(CALC, json=body, headers=harness.headers(U1))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["as_of_date"] == T0.isoformat()
    assert data["results"][0]["underlying"] == "XYZ"
    assert data["results"][0]["greeks"]["inputs"]["iv_source"] == "vendor"  # stored vendor IV of the contract


async def test_ad_hoc_validation_errors(harness: Harness):
    h = harness.headers(U1)
    item = {
        "underlying": "XYZ",
        "option_type": "C",
        "strike_price": 105,
        "expiration_date": "2026-12-24",
        "quantity": 1,
    }
    unknown = await harness.client.post(CALC, json={"positions": [item, {**item, "underlying": "ZZZZ"}]}, headers=h)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "UNKNOWN_SYMBOL"
    assert unknown.json()["error"]["details"][0]["field"] == "body.positions.1.underlying"
    for body in (
        {"positions": [item], "portfolio_id": str(PA)},
        {},
        {"positions": [item] * 501},
        {"positions": [{**item, "strike_price": 0}]},
        {"positions": [{"symbol": "XYZ26122C105", "quantity": 1}]},
    ):
        r = await harness.client.post(CALC, json=body, headers=h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", body


# ---------------------------------------------------------------- #30 portfolio mode


async def test_portfolio_mode_runs_a_job_and_publishes_without_cascade(harness: Harness):
    r = await harness.client.post(CALC, json={"portfolio_id": str(PC)}, headers=harness.headers(U2))
    assert r.status_code == 202, r.text
    accepted = r.json()["data"]
    assert accepted["job_type"] == "greeks.calculate" and accepted["job_id"].startswith("grk_")
    assert r.headers["location"] == accepted["status_url"] and r.headers["retry-after"] == "2"
    assert accepted["result_url"] == f"/api/v1/risk/greeks?portfolio_id={PC}&as_of_date={T0.isoformat()}"
    for _ in range(100):
        job = (await harness.client.get(accepted["status_url"], headers=harness.headers(U2))).json()["data"]
        if job["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed", job
    assert job["result"]["option_positions"] == 1
    await harness.bus.drain()
    assert [(e.portfolio_id, e.cascade) for e in harness.received] == [(PC, False)]
    r = await harness.client.get(accepted["result_url"], headers=harness.headers(U2))
    assert r.status_code == 200 and r.json()["data"]["coverage"]["ok"] == 1
    other = await harness.client.get(accepted["status_url"], headers=harness.headers(U1))
    assert other.status_code == 404


async def test_portfolio_mode_with_prefer_wait_returns_the_result(harness: Harness):
    h = {**harness.headers(U1), "Prefer": "wait=8"}
    r = await harness.client.post(CALC, json={"portfolio_id": str(PA), "as_of_date": T0.isoformat()}, headers=h)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["calculation_date"] == T0.isoformat() and data["coverage"]["option_positions"] == 4


async def test_portfolio_mode_for_another_users_portfolio_is_not_found(harness: Harness):
    r = await harness.client.post(CALC, json={"portfolio_id": str(PC)}, headers=harness.headers(U1))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"


async def test_openapi_documents_both_routes(harness: Harness):
    spec = (await harness.client.get("/openapi.json")).json()
    assert "/api/v1/risk/greeks" in spec["paths"] and "/api/v1/risk/greeks/calculate" in spec["paths"]
    post = spec["paths"]["/api/v1/risk/greeks/calculate"]["post"]
    assert "202" in post["responses"] and "200" in post["responses"]


async def test_rpc_evaluate_answers_the_ad_hoc_body_for_proforma(harness: Harness):
    payload = {
        "positions": [
            {"symbol": "XYZ261224C00105000", "quantity": -5, "implied_volatility": 0.25},
        ],
        "as_of_date": T0.isoformat(),
    }
    reply = await harness.bus.request("greeks.evaluate", payload)
    (result,) = reply["results"]
    assert result["greeks"]["dollar_delta"] == "-13516.10"
    assert reply["totals"]["dollar_gamma_1pct"] == "-2306.11"
    assert await harness.scalar("SELECT count(*) FROM greeks.position_greek") == 0
