"""Every route of the merged OpenAPI document works (api.md §1-§2), called through the gateway.

`ROUTES` says how to call each operation of `/api/v1/openapi.json`: real path and query values,
minimal valid bodies, malformed variants. `test_call_table_covers_exactly_the_documented_operations`
fails as soon as a route appears that the table does not know how to call (or one disappears).
For each operation:
* without a token → 401 UNAUTHENTICATED (except login, refresh, /health, /openapi.json);
* admin routes with a user token → 403 FORBIDDEN, and nothing starts;
* GET with a demo token and real ids/symbols → its success status (never 5xx, never 405);
* POST/PUT/DELETE with a minimal valid body → the documented success status (async jobs are followed
  to completion), and with a malformed body/parameter → 422 VALIDATION_ERROR (400 BAD_REQUEST for
  unparseable JSON or multipart), always in the error envelope.
Plus spot checks of the conventions (request ids, envelopes, money/timestamp formats, paging, sort).

Shared state: the module works on its own uploaded portfolios and tags; the last test runs the
admin demo reset (#74), which removes them, and proves the demo books are exactly as they were.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ADMIN_EMAIL, DEMO_EMAILS, System
from tests.e2e.surface_support import (
    AS_OF,
    MONEY_RE,
    REQUEST_ID_RE,
    UTC_TIMESTAMP_RE,
    assert_correlation_matrix,
    assert_error,
    bearer,
    complete_onboarding,
    create_tag,
    demo_books,
    demo_reset_and_settle,
    first_difference,
    import_prices,
    positions_csv,
    roomy_rate_limit,
    token,
    unique,
    upload,
    wait_job,
)

from common.auth import Principal, issue_access_token

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# A symbol that only this module uses: priced on one day only, so its price history is too short (< 60 days).
SHORT_HISTORY_SYMBOL = "ZZSURF"
PRICE_ROW = f"symbol,date,close\n{SHORT_HISTORY_SYMBOL},{AS_OF},12.50\n".encode()


# --------------------------------------------------------------------------------------- world


@dataclass
class World:
    """The running system, tokens and real ids the calls of `ROUTES` are filled with."""

    system: System
    client: httpx.AsyncClient
    headers: dict[str, dict[str, str]]
    values: dict[str, str]
    before: dict[str, Any]
    doc: dict[str, Any]


@pytest.fixture(scope="module")
async def world(system: System) -> AsyncIterator[World]:
    async with roomy_rate_limit(system), system.client() as client:
        owner = bearer(await token(system, DEMO_EMAILS["hedgefund"]))
        headers = {
            "owner": owner,
            "other": bearer(await token(system, DEMO_EMAILS["individual"])),
            "admin": bearer(await token(system, ADMIN_EMAIL)),
            "none": {},
        }
        before = await demo_books(client, system)
        v: dict[str, str] = {"as_of": AS_OF}
        try:
            doc = (await client.get("/api/v1/openapi.json")).json()

            me = (await client.get("/api/v1/auth/me", headers=owner)).json()["data"]
            v["hf_portfolio"] = next(p["id"] for p in me["portfolios"] if p["is_default"])
            positions = (await client.get("/api/v1/positions?limit=100", headers=owner)).json()["data"]
            v["hf_position"] = next(p["id"] for p in positions if p["symbol"] == "AAPL")
            v["hf_option_position"] = next(p["id"] for p in positions if p["instrument_type"] == "option")
            tags = (await client.get("/api/v1/tags", headers=owner)).json()["data"]
            v["hf_tag"] = next(t["id"] for t in tags if t["name"] == "Long Momentum")

            await import_prices(client, headers["admin"], PRICE_ROW)
            # C: an active portfolio of the owner's own (batch triggers and tag writes act on it).
            _, c = await upload(
                client,
                owner,
                positions_csv([("AAPL", "10", "150.00", "2026-01-05"), ("MSFT", "5", "300.00", "2026-01-05")]),
                portfolio_name=unique("surface active"),
            )
            v["mine"] = c["portfolio_id"]
            await complete_onboarding(client, owner, v["mine"])
            mine = (await client.get(f"/api/v1/positions?portfolio_id={v['mine']}", headers=owner)).json()["data"]
            v["mine_pos_1"], v["mine_pos_2"] = (p["id"] for p in mine)
            # B: in onboarding with a failed data-collection step (price history of SHORT_HISTORY_SYMBOL).
            accepted, b = await upload(
                client,
                owner,
                positions_csv([("AAPL", "3", "150.00", "2026-01-05"), (SHORT_HISTORY_SYMBOL, "100", "12.00", AS_OF)]),
                portfolio_name=unique("surface onboarding"),
            )
            v["onboarding"], v["upload"], v["upload_job"] = b["portfolio_id"], b["upload_id"], accepted["job_id"]
            preview = (
                await client.get(f"/api/v1/portfolio/onboarding/{v['onboarding']}/preview", headers=owner)
            ).json()
            assert {"step": "price_history", "status": "failed"}.items() <= next(
                s for s in preview["data"]["collection"] if s["step"] == "price_history"
            ).items(), preview["data"]["collection"]
            # A: in onboarding and ready to complete.
            _, a = await upload(
                client,
                owner,
                positions_csv([("MSFT", "2", "300.00", "2026-01-05")]),
                portfolio_name=unique("surface ready"),
            )
            v["ready"] = a["portfolio_id"]
            v["mine_tag"] = (await create_tag(client, owner, unique("surface")))["id"]

            resp = await client.post("/api/v1/risk/greeks/calculate", headers=owner, json={"portfolio_id": v["mine"]})
            assert resp.status_code == 202, resp.text
            v["greeks_job"] = resp.json()["data"]["job_id"]
            assert (await wait_job(client, owner, resp.json()["data"]["status_url"]))["status"] == "completed"
            resp = await client.post(
                "/api/v1/admin/batch/aggregations", headers=headers["admin"], json={"portfolio_ids": [v["mine"]]}
            )
            assert resp.status_code == 202, resp.text
            v["batch_job"], v["batch_run"] = resp.json()["data"]["job_id"], resp.json()["data"]["run_id"]
            assert (await wait_job(client, headers["admin"], resp.json()["data"]["status_url"]))[
                "status"
            ] == "completed"

            world = World(system, client, headers, v, before, doc)
            yield world
        finally:
            if "reset_done" not in v:  # setup failed, or the last test did not run (deselected, stopped early)
                await demo_reset_and_settle(system, client)


# --------------------------------------------------------------------------------------- call table

NO_BODY = object()
Setup = Callable[[World], Awaitable[dict[str, Any]]]
Check = Callable[[World, httpx.Response, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Req:
    """One request: `{key}` placeholders in path, params and body are filled from the world's values."""

    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = NO_BODY
    raw: bytes | None = None
    content_type: str | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    as_: str = "owner"  # owner | other | admin | none | setup (token from setup()["access_token"])
    status: int = 200
    code: str | None = None  # error code when `status` is an error
    media: str = "application/json"
    setup: Setup | None = None
    check: Check | None = None


@dataclass(frozen=True)
class Route:
    access: str  # public | user | admin | metrics (internal network or admin token)
    ok: tuple[Req, ...]
    bad: tuple[Req, ...] = ()
    no_input: str | None = None  # why the operation has nothing to malform


class _Values(dict[str, Any]):
    """Placeholder values; a key no setup provided (401/403 probes) becomes a random UUID."""

    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(_Values(values))
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


async def send(w: World, method: str, req: Req, extra: dict[str, Any] | None = None) -> httpx.Response:
    values = {**w.values, **(extra or {})}
    headers = bearer(values["access_token"]) if req.as_ == "setup" else dict(w.headers[req.as_])
    headers.update(fill(req.headers, values))
    kwargs: dict[str, Any] = {"params": fill(req.params, values), "headers": headers}
    if req.json is not NO_BODY:
        kwargs["json"] = fill(req.json, values)
    elif req.raw is not None:
        kwargs["content"] = req.raw
        headers["content-type"] = req.content_type or "application/json"
    elif req.files is not None or req.form is not None:
        kwargs["files"] = req.files
        kwargs["data"] = fill(req.form or {}, values)
    return await w.client.request(method, fill(req.path, values), **kwargs)


# ---- setups and checks ------------------------------------------------------------------------


async def fresh_login(w: World) -> dict[str, Any]:
    resp = await w.client.post("/api/v1/auth/login", json={"email": DEMO_EMAILS["hnw"], "password": "demo12345"})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    return {"access_token": data["access_token"], "refresh_token": data["refresh_token"]}


async def fresh_tag(w: World) -> dict[str, Any]:
    return {"fresh_tag": (await create_tag(w.client, w.headers["owner"], unique("doomed")))["id"]}


async def check_tokens(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["token_type"] == "bearer" and data["expires_in"] > 0 and data["refresh_expires_in"] > 0
    me = await w.client.get("/api/v1/auth/me", headers=bearer(data["access_token"]))
    assert me.status_code == 200 and me.json()["data"]["email"] == DEMO_EMAILS["hnw"]
    assert data["refresh_token"] != values.get("refresh_token")
    assert resp.headers["cache-control"] == "no-store"


async def check_logged_out(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    again = await w.client.post("/api/v1/auth/refresh", json={"refresh_token": values["refresh_token"]})
    assert_error(again, 401, "INVALID_REFRESH_TOKEN")


async def check_tag_created(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    tag = resp.json()["data"]
    assert resp.headers["location"] == f"/api/v1/tags/{tag['id']}"
    assert tag["tag_type"] == "regular" and tag["color"] == "#6B7280" and tag["position_count"] == 0
    gone = await w.client.delete(f"/api/v1/tags/{tag['id']}", headers=w.headers["owner"])
    assert gone.status_code == 204, gone.text


async def check_tag_deleted(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    assert resp.content == b""
    listed = (await w.client.get("/api/v1/tags?limit=500", headers=w.headers["owner"])).json()["data"]
    assert values["fresh_tag"] not in {t["id"] for t in listed}


async def own_notification(w: World) -> dict[str, Any]:
    """The owner's notification for the onboarded portfolio `mine` (made when its first snapshot was stored)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        resp = await w.client.get("/api/v1/notifications", headers=w.headers["owner"])
        found = [n for n in resp.json()["data"] if n["portfolio_id"] == w.values["mine"]]
        if found:
            return {"notification": found[0]["id"]}
        assert loop.time() < deadline, resp.text
        await asyncio.sleep(0.1)


async def check_notification_read(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["id"] == values["notification"] and data["read"] is True and data["read_at"]
    unread = (await w.client.get("/api/v1/notifications?unread=true", headers=w.headers["owner"])).json()
    assert values["notification"] not in {n["id"] for n in unread["data"]}


async def check_all_read(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    assert resp.json()["data"]["marked_read"] >= 0
    unread = (await w.client.get("/api/v1/notifications?unread=true", headers=w.headers["owner"])).json()
    assert unread["data"] == [] and unread["meta"]["unread_count"] == 0


async def check_position_tags(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["position_id"] == values["mine_pos_1"]
    assert [t["id"] for t in data["tags"]] == [values["mine_tag"]]
    pos = (await w.client.get(f"/api/v1/positions/{values['mine_pos_1']}", headers=w.headers["owner"])).json()
    assert [t["id"] for t in pos["data"]["tags"]] == [values["mine_tag"]]


async def check_bulk(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["updated_positions"] + len(data["skipped"]) == 2
    listed = await w.client.get(
        "/api/v1/positions",
        params={"portfolio_id": values["mine"], "tags": values["mine_tag"]},
        headers=w.headers["owner"],
    )
    assert {p["id"] for p in listed.json()["data"]} == {values["mine_pos_1"], values["mine_pos_2"]}


async def check_adhoc_greeks(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["as_of_date"] == AS_OF
    assert data["results"][0]["greeks"]["status"] == "ok"
    assert MONEY_RE.match(data["results"][0]["greeks"]["dollar_delta"])


async def check_import(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["rows_imported"] == 1 and data["symbols"] == [SHORT_HISTORY_SYMBOL]
    assert data["first_date"] == data["last_date"] == AS_OF


async def check_validation(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    checks = {c["check"]: c for c in data["checks"]}
    assert data["portfolio_id"] == values["onboarding"]
    assert checks["price_history"]["status"] in ("fail", "warn")
    assert set(checks) >= {"positions", "security_master", "current_prices", "price_history", "factor_definitions"}


async def check_csv_template(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    assert resp.text.splitlines()[0] == "ticker,quantity,entry_price,entry_date,tags"
    assert 'filename="sigmasight_basic_template.csv"' in resp.headers["content-disposition"]


async def check_metrics(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    assert "sigmasight_gateway_http_requests_total" in resp.text


async def check_brk(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    assert resp.json()["data"]["symbol"] == "BRK-B"


async def check_became_active(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    summary = await w.client.get(
        "/api/v1/portfolio", params={"portfolio_id": values["ready"]}, headers=w.headers["owner"]
    )
    assert summary.json()["data"]["portfolio"]["status"] == "active"


async def check_scenarios(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    body = resp.json()
    assert body["page"]["total"] == 18 and len(body["data"]) == 18, body["page"]
    assert {s["category"] for s in body["data"]} == {"market", "rates", "rotation", "volatility", "historical"}
    assert "short_interest" not in {code for s in body["data"] for code in s["shocks"]}


async def check_factor_matrix(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
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
    assert_correlation_matrix(data["correlations"], 8)
    assert data["window"]["observations"] >= 60 and data["calculation_date"] == AS_OF


async def check_exposures(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    factors = {f["code"]: f for f in data["factors"]}
    assert len(factors) == 9, list(factors)
    assert factors["short_interest"]["status"] == "not_calculated" and factors["short_interest"]["beta"] is None
    assert factors["market"]["status"] == "ok" and MONEY_RE.match(factors["market"]["exposure_dollar"])


async def check_results(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["run"]["scenarios"] == len(data["results"]) == 18, data["run"]
    pnls = [float(r["correlated_pnl"]) for r in data["results"]]
    assert pnls == sorted(pnls) and data["summary"]["worst_scenario"] == data["results"][0]["scenario_id"]


async def check_position_matrix(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert len(data["nodes"]) >= 2
    assert_correlation_matrix(data["correlations"], len(data["nodes"]))


async def a_report(w: World) -> dict[str, Any]:
    """A completed md + json report of the hedge-fund portfolio, made once for the module."""
    if "report" not in w.values:
        body = {"portfolio_id": w.values["hf_portfolio"], "formats": ["md", "json"]}
        resp = await w.client.post(
            "/api/v1/reports/generate", headers={**w.headers["owner"], "Prefer": "wait=10"}, json=body
        )
        assert resp.status_code in (200, 202), resp.text
        data = resp.json()["data"]
        if resp.status_code == 202:
            data = await wait_job(w.client, w.headers["owner"], data["status_url"])
        assert data["status"] == "completed", data
        w.values["report"] = data["report_id"]
    return {"report": w.values["report"]}


async def check_report_status(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["report_id"] == values["report"] and data["status"] == "completed"
    assert [f["format"] for f in data["files"]] == ["md", "json"] and all(f["download_url"] for f in data["files"])


async def an_export(w: World) -> dict[str, Any]:
    """A CSV trade export of the owner, made once for the module."""
    if "export" not in w.values:
        body = {"trades": [{"side": "BUY", "symbol": "AAPL", "quantity": 1}], "format": "csv"}
        resp = await w.client.post("/api/v1/export/trades", headers=w.headers["owner"], json=body)
        assert resp.status_code == 201, resp.text
        w.values["export"] = resp.json()["data"]["export_id"]
    return {"export": w.values["export"]}


async def ensure_exposures_of_mine(w: World) -> dict[str, Any]:
    """Factor exposures of the module's own portfolio (stress runs need them), computed once."""
    if "mine_exposures" not in w.values:
        resp = await w.client.post(
            "/api/v1/factors/calculate",
            headers={**w.headers["owner"], "Prefer": "wait=10"},
            json={"portfolio_id": w.values["mine"]},
        )
        if resp.status_code == 202:
            job = await wait_job(w.client, w.headers["owner"], resp.json()["data"]["status_url"])
            assert job["status"] == "completed", job
        else:
            assert resp.status_code == 200, resp.text
        w.values["mine_exposures"] = "yes"
    return {}


async def modeling_session(w: World) -> dict[str, Any]:
    """One ProForma session of the owner with a trade and calculated impacts, made once for the module."""
    if "session" not in w.values:
        w.values["session"] = await calculated_session(w, "surface modelling")
    return {"session": w.values["session"]}


async def calculated_session(w: World, name: str) -> str:
    owner = w.headers["owner"]
    resp = await w.client.post("/api/v1/modeling/sessions", headers=owner, json={"name": unique(name)})
    assert resp.status_code == 201, resp.text
    sid = resp.json()["data"]["session_id"]
    trade = {"ticker": "SPY", "side": "buy", "quantity": 10}
    resp = await w.client.post(f"/api/v1/modeling/sessions/{sid}/trades", headers=owner, json=trade)
    assert resp.status_code == 201, resp.text
    resp = await w.client.post(f"/api/v1/modeling/sessions/{sid}/calculate", headers={**owner, "Prefer": "wait=10"})
    assert resp.status_code == 200, resp.text
    return str(sid)


async def session_to_save(w: World) -> dict[str, Any]:
    return {"save_session": await calculated_session(w, "surface save")}


async def session_to_cancel(w: World) -> dict[str, Any]:
    resp = await w.client.post("/api/v1/modeling/sessions", headers=w.headers["owner"], json={"name": unique("doomed")})
    assert resp.status_code == 201, resp.text
    return {"doomed_session": resp.json()["data"]["session_id"]}


async def fresh_trade(w: World) -> dict[str, Any]:
    """A trade added last to the module's session (removing the last trade is always allowed)."""
    sid = (await modeling_session(w))["session"]
    resp = await w.client.post(
        f"/api/v1/modeling/sessions/{sid}/trades",
        headers=w.headers["owner"],
        json={"ticker": "QQQ", "side": "short", "quantity": 1},
    )
    assert resp.status_code == 201, resp.text
    return {"session": sid, "fresh_trade": resp.json()["data"]["trades"][0]["trade_id"]}


async def check_saved(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert data["status"] == "saved" and data["trade_count"] == 1 and MONEY_RE.match(data["after"]["equity"])


async def check_impacts(w: World, resp: httpx.Response, values: dict[str, Any]) -> None:
    data = resp.json()["data"]
    assert {"before", "after", "change", "changes_summary", "stale", "warnings"} <= set(data)
    assert data["changes_summary"][0] == "BUY 10 SPY @ 530.00", data["changes_summary"]


# ---- the table ----------------------------------------------------------------------------------

BATCH_BODY = {"portfolio_ids": ["{mine}"], "as_of_date": "{as_of}"}
BATCH_BAD = (
    Req("", json={"as_of_date": "someday"}, as_="admin", status=422),
    Req("", json={"as_of_date": "2030-01-02"}, as_="admin", status=422),
    Req("", json={"portfolio_ids": ["not-a-uuid"]}, as_="admin", status=422),
    Req("", json={"unknown_field": True}, as_="admin", status=422),
)


def batch_route(path: str, body: dict[str, Any] = BATCH_BODY, extra_bad: tuple[Req, ...] = ()) -> Route:
    return Route(
        "admin",
        ok=(Req(path, json=body, as_="admin", status=202),),
        bad=tuple(Req(path, json=r.json, as_="admin", status=422) for r in BATCH_BAD) + extra_bad,
    )


# Position-correlation filters wide open, so the module's two-stock portfolio has two nodes.
OPEN_FILTERS = {"min_position_value": 0, "min_portfolio_weight": 0, "filter_mode": "either"}
CUSTOM_SHOCKS = {"market": -0.08, "growth": -0.05}


def impact_bad(path: str) -> tuple[Req, ...]:
    """Malformed direct/correlated impact bodies (api.md #37 errors)."""
    return (
        Req(path, json={}, status=422),
        Req(
            path,
            json={"scenario_id": "market_down_10", "scenario": {"name": "x", "shocks": {"market": -0.1}}},
            status=422,
        ),
        Req(path, json={"scenario": {"name": "x", "shocks": {"market": -1.5}}}, status=422),
        Req(
            path, json={"scenario": {"name": "x", "shocks": {"short_interest": 0.1}}}, status=422, code="UNKNOWN_FACTOR"
        ),
        Req(path, json={"scenario": {"name": "x", "shocks": {"interest_rate": 0.2}}}, status=422),
        Req(path, json={"scenario_id": "market_down_99"}, status=404, code="SCENARIO_NOT_FOUND"),
        Req(
            path, json={"scenario_id": "market_down_10", "as_of_date": "2020-01-02"}, status=404, code="NOT_CALCULATED"
        ),
    )


UPLOAD_FILE = {"file": ("positions.csv", positions_csv([("AAPL", "1", "150.00", "2026-01-05")]), "text/csv")}

ROUTES: dict[tuple[str, str], Route] = {
    # -------- gateway: auth, platform
    ("POST", "/api/v1/auth/login"): Route(
        "public",
        ok=(
            Req(
                "/api/v1/auth/login",
                json={"email": DEMO_EMAILS["hnw"].upper(), "password": "demo12345"},
                as_="none",
                check=check_tokens,
            ),
        ),
        bad=(
            Req("/api/v1/auth/login", json={"email": DEMO_EMAILS["hnw"]}, as_="none", status=422),
            Req("/api/v1/auth/login", json={"email": "a@b.c", "password": "x", "otp": "1"}, as_="none", status=422),
        ),
    ),
    ("POST", "/api/v1/auth/refresh"): Route(
        "public",
        ok=(
            Req(
                "/api/v1/auth/refresh",
                json={"refresh_token": "{refresh_token}"},
                as_="none",
                setup=fresh_login,
                check=check_tokens,
            ),
        ),
        bad=(
            Req("/api/v1/auth/refresh", json={}, as_="none", status=422),
            Req("/api/v1/auth/refresh", json={"refresh_token": ""}, as_="none", status=422),
        ),
    ),
    ("POST", "/api/v1/auth/logout"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/auth/logout",
                json={"refresh_token": "{refresh_token}"},
                as_="setup",
                status=204,
                media="",
                setup=fresh_login,
                check=check_logged_out,
            ),
        ),
        bad=(
            Req("/api/v1/auth/logout", json={"refresh_token": 5}, status=422),
            Req("/api/v1/auth/logout", json={"everything": True}, status=422),
        ),
    ),
    ("GET", "/api/v1/auth/me"): Route("user", ok=(Req("/api/v1/auth/me"),), no_input="takes no parameters"),
    ("GET", "/health"): Route(
        "public",
        ok=(Req("/health", as_="none"), Req("/health", params={"scope": "gateway"}, as_="none")),
        bad=(Req("/health", params={"scope": "everything"}, as_="none", status=422),),
    ),
    ("GET", "/metrics"): Route(
        "metrics",
        ok=(
            Req("/metrics", as_="admin", media="text/plain", check=check_metrics),
            Req("/metrics", as_="none", media="text/plain", check=check_metrics),  # loopback peer: internal
        ),
        no_input="takes no parameters",
    ),
    ("GET", "/api/v1/openapi.json"): Route(
        "public", ok=(Req("/api/v1/openapi.json", as_="none"),), no_input="takes no parameters"
    ),
    ("GET", "/api/v1/jobs/{job_id}"): Route(
        "user",
        ok=(
            Req("/api/v1/jobs/{upload_job}"),
            Req("/api/v1/jobs/{greeks_job}"),
            Req("/api/v1/jobs/{batch_job}", as_="admin"),
        ),
        bad=(
            Req("/api/v1/jobs/ing_not-a-uuid", status=404, code="JOB_NOT_FOUND"),
            Req("/api/v1/jobs/zzz_0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11", status=404, code="JOB_NOT_FOUND"),
        ),
    ),
    # -------- marketdata: batch admin
    ("POST", "/api/v1/admin/batch/run-all"): batch_route("/api/v1/admin/batch/run-all"),
    ("POST", "/api/v1/admin/batch/market-data"): batch_route(
        "/api/v1/admin/batch/market-data",
        {"symbols": ["AAPL"], "lookback_days": 1},
        (
            Req("/api/v1/admin/batch/market-data", json={"lookback_days": 0}, as_="admin", status=422),
            Req("/api/v1/admin/batch/market-data", json={"symbols": ["no spaces"]}, as_="admin", status=422),
        ),
    ),
    ("POST", "/api/v1/admin/batch/aggregations"): batch_route("/api/v1/admin/batch/aggregations"),
    ("POST", "/api/v1/admin/batch/greeks"): batch_route("/api/v1/admin/batch/greeks"),
    ("POST", "/api/v1/admin/batch/snapshots"): batch_route("/api/v1/admin/batch/snapshots"),
    ("POST", "/api/v1/admin/batch/factors"): batch_route("/api/v1/admin/batch/factors"),
    ("POST", "/api/v1/admin/batch/risk-scenarios"): batch_route("/api/v1/admin/batch/risk-scenarios"),
    ("POST", "/api/v1/admin/batch/stress-tests"): batch_route(
        "/api/v1/admin/batch/stress-tests",
        {**BATCH_BODY, "categories": ["rates"]},
        extra_bad=(
            Req("/api/v1/admin/batch/stress-tests", json={"categories": ["crypto"]}, as_="admin", status=422),
            Req("/api/v1/admin/batch/stress-tests", json={"categories": []}, as_="admin", status=422),
        ),
    ),
    ("POST", "/api/v1/admin/batch/correlations"): batch_route(
        "/api/v1/admin/batch/correlations",
        {**BATCH_BODY, "duration_days": 60},
        extra_bad=(
            Req("/api/v1/admin/batch/correlations", json={"duration_days": 29}, as_="admin", status=422),
            Req("/api/v1/admin/batch/correlations", json={"duration_days": 253}, as_="admin", status=422),
        ),
    ),
    ("GET", "/api/v1/admin/batch/status"): Route(
        "admin",
        ok=(
            Req("/api/v1/admin/batch/status", as_="admin"),
            Req("/api/v1/admin/batch/status", params={"run_id": "{batch_job}"}, as_="admin"),
            Req("/api/v1/admin/batch/status", params={"run_id": "{batch_run}", "portfolio_id": "{mine}"}, as_="admin"),
        ),
        bad=(
            Req("/api/v1/admin/batch/status", params={"run_id": "yesterday"}, as_="admin", status=422),
            Req("/api/v1/admin/batch/status", params={"portfolio_id": "nope"}, as_="admin", status=422),
            Req(
                "/api/v1/admin/batch/status",
                params={"run_id": "0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11"},
                as_="admin",
                status=404,
                code="JOB_NOT_FOUND",
            ),
        ),
    ),
    ("GET", "/api/v1/admin/batch/history"): Route(
        "admin",
        ok=(
            Req("/api/v1/admin/batch/history", params={"limit": "5"}, as_="admin"),
            Req(
                "/api/v1/admin/batch/history",
                params={"portfolio_id": "{mine}", "run_id": "{batch_run}", "include_summary": "true"},
                as_="admin",
            ),
            Req(
                "/api/v1/admin/batch/history",
                params={"job": "greeks,aggregations", "status": "completed", "sort": "-duration_ms", "trigger": "api"},
                as_="admin",
            ),
        ),
        bad=(
            Req("/api/v1/admin/batch/history", params={"sort": "-colour"}, as_="admin", status=422),
            Req("/api/v1/admin/batch/history", params={"status": "sleeping"}, as_="admin", status=422),
            Req("/api/v1/admin/batch/history", params={"limit": "0"}, as_="admin", status=422),
            Req("/api/v1/admin/batch/history", params={"since": "last week"}, as_="admin", status=422),
        ),
    ),
    ("GET", "/api/v1/admin/batch/schedule"): Route(
        "admin",
        ok=(Req("/api/v1/admin/batch/schedule", as_="admin"),),
        bad=(Req("/api/v1/admin/batch/schedule", params={"limit": "0"}, as_="admin", status=422),),
    ),
    # -------- marketdata: prices and securities
    ("GET", "/api/v1/market-data/prices/{symbol}"): Route(
        "user",
        ok=(
            Req("/api/v1/market-data/prices/AAPL"),
            Req("/api/v1/market-data/prices/BRK.B", check=check_brk),
            Req(
                "/api/v1/market-data/prices/SPY",
                params={"start_date": "2026-11-19", "end_date": "{as_of}", "fields": "close,adj_close"},
            ),
        ),
        bad=(
            Req("/api/v1/market-data/prices/AAPL", params={"start_date": "soon"}, status=422),
            Req(
                "/api/v1/market-data/prices/AAPL",
                params={"start_date": "{as_of}", "end_date": "2026-11-02"},
                status=422,
            ),
            Req("/api/v1/market-data/prices/AAPL", params={"fields": "colour"}, status=422),
            Req("/api/v1/market-data/prices/NOPEZZ", status=404, code="SYMBOL_NOT_FOUND"),
        ),
    ),
    ("GET", "/api/v1/securities/{symbol}"): Route(
        "user",
        ok=(Req("/api/v1/securities/AAPL"), Req("/api/v1/securities/BRK.B", check=check_brk)),
        bad=(Req("/api/v1/securities/NOPEZZ", status=404, code="SYMBOL_NOT_FOUND"),),
    ),
    ("POST", "/api/v1/market-data/prices/import"): Route(
        "admin",
        ok=(
            Req(
                "/api/v1/market-data/prices/import",
                files={"file": ("prices.csv", PRICE_ROW, "text/csv")},
                as_="admin",
                check=check_import,
            ),
        ),
        bad=(
            Req(
                "/api/v1/market-data/prices/import",
                files={
                    "file": (
                        "prices.csv",
                        f"symbol,date,close\n{SHORT_HISTORY_SYMBOL},{AS_OF},-3\n".encode(),
                        "text/csv",
                    )
                },
                as_="admin",
                status=422,
            ),
            Req(
                "/api/v1/market-data/prices/import",
                params={"cascade": "perhaps"},
                files={"file": ("p.csv", PRICE_ROW, "text/csv")},
                as_="admin",
                status=422,
            ),
            Req(
                "/api/v1/market-data/prices/import",
                json={"symbol": "AAPL"},
                as_="admin",
                status=415,
                code="UNSUPPORTED_MEDIA_TYPE",
            ),
        ),
    ),
    # -------- ingest: portfolio and positions
    ("GET", "/api/v1/portfolio"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio"),
            Req("/api/v1/portfolio", params={"portfolio_id": "{hf_portfolio}"}),
            Req("/api/v1/portfolio", params={"portfolio_id": "{mine}"}),
        ),
        bad=(Req("/api/v1/portfolio", params={"portfolio_id": "mine"}, status=422),),
    ),
    ("GET", "/api/v1/positions"): Route(
        "user",
        ok=(
            Req("/api/v1/positions"),
            Req(
                "/api/v1/positions", params={"portfolio_id": "{hf_portfolio}", "type": "LC,SC", "sort": "-market_value"}
            ),
            Req("/api/v1/positions", params={"tags": "{hf_tag}", "include": "greeks,factors", "view": "longs"}),
            Req("/api/v1/positions", params={"underlying": "AAPL,BRK.B", "include_closed": "true", "q": "a"}),
        ),
        bad=(
            Req("/api/v1/positions", params={"type": "LONGISH"}, status=422),
            Req("/api/v1/positions", params={"sort": "colour"}, status=422),
            Req("/api/v1/positions", params={"limit": "0"}, status=422),
            Req("/api/v1/positions", params={"min_market_value": "lots"}, status=422),
            Req("/api/v1/positions", params={"portfolio_id": "nope"}, status=422),
        ),
    ),
    ("GET", "/api/v1/positions/grouped"): Route(
        "user",
        ok=(
            Req("/api/v1/positions/grouped"),
            Req("/api/v1/positions/grouped", params={"by": "strategy", "portfolio_id": "{hf_portfolio}"}),
            Req("/api/v1/positions/grouped", params={"by": "tag", "include_positions": "false"}),
            Req("/api/v1/positions/grouped", params={"by": "sector", "sort": "count"}),
        ),
        bad=(
            Req("/api/v1/positions/grouped", params={"by": "colour"}, status=422),
            Req("/api/v1/positions/grouped", params={"sort": "colour"}, status=422),
        ),
    ),
    ("GET", "/api/v1/positions/{id}"): Route(
        "user",
        ok=(
            Req("/api/v1/positions/{hf_position}"),
            Req("/api/v1/positions/{hf_option_position}", params={"include": "greeks,factors,history"}),
        ),
        bad=(
            Req("/api/v1/positions/not-a-uuid", status=422),
            Req("/api/v1/positions/{hf_position}", params={"include": "gossip"}, status=422),
            Req("/api/v1/positions/0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11", status=404, code="POSITION_NOT_FOUND"),
        ),
    ),
    ("GET", "/api/v1/strategies"): Route(
        "user",
        ok=(
            Req("/api/v1/strategies"),
            Req(
                "/api/v1/strategies", params={"portfolio_id": "{hf_portfolio}", "q": "Long", "sort": "-gross_exposure"}
            ),
        ),
        bad=(
            Req("/api/v1/strategies", params={"sort": "colour"}, status=422),
            Req("/api/v1/strategies", params={"limit": "501"}, status=422),
        ),
    ),
    ("GET", "/api/v1/tags"): Route(
        "user",
        ok=(
            Req("/api/v1/tags"),
            Req(
                "/api/v1/tags",
                params={"portfolio_id": "{hf_portfolio}", "tag_type": "strategy", "sort": "-position_count"},
            ),
        ),
        bad=(
            Req("/api/v1/tags", params={"tag_type": "secret"}, status=422),
            Req("/api/v1/tags", params={"sort": "colour"}, status=422),
        ),
    ),
    ("POST", "/api/v1/tags"): Route(
        "user",
        ok=(Req("/api/v1/tags", json={"name": "surface {tag_suffix}"}, status=201, check=check_tag_created),),
        bad=(
            Req("/api/v1/tags", json={"name": ""}, status=422),
            Req("/api/v1/tags", json={"name": "has,comma"}, status=422),
            Req("/api/v1/tags", json={"name": "colourful", "color": "red"}, status=422),
            Req("/api/v1/tags", json={"name": "x", "owner": "someone"}, status=422),
        ),
    ),
    ("PUT", "/api/v1/positions/{id}/tags"): Route(
        "user",
        ok=(Req("/api/v1/positions/{mine_pos_1}/tags", json={"tag_ids": ["{mine_tag}"]}, check=check_position_tags),),
        bad=(
            Req("/api/v1/positions/{mine_pos_1}/tags", json={"tag_ids": "{mine_tag}"}, status=422),
            Req("/api/v1/positions/{mine_pos_1}/tags", json={}, status=422),
            Req("/api/v1/positions/{mine_pos_1}/tags", json={"tag_ids": ["not-a-uuid"]}, status=422),
            Req("/api/v1/positions/not-a-uuid/tags", json={"tag_ids": []}, status=422),
        ),
    ),
    ("DELETE", "/api/v1/tags/{id}"): Route(
        "user",
        ok=(Req("/api/v1/tags/{fresh_tag}", status=204, media="", setup=fresh_tag, check=check_tag_deleted),),
        bad=(
            Req("/api/v1/tags/not-a-uuid", status=422),
            Req("/api/v1/tags/{mine_tag}", params={"force": "perhaps"}, status=422),
        ),
    ),
    ("POST", "/api/v1/tags/bulk-assign"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/tags/bulk-assign",
                json={"tag_ids": ["{mine_tag}"], "position_ids": ["{mine_pos_1}", "{mine_pos_2}"]},
                check=check_bulk,
            ),
        ),
        bad=(
            Req("/api/v1/tags/bulk-assign", json={"tag_ids": [], "position_ids": ["{mine_pos_1}"]}, status=422),
            Req(
                "/api/v1/tags/bulk-assign",
                json={"tag_ids": ["{mine_tag}"], "position_ids": ["{mine_pos_1}"], "action": "toggle"},
                status=422,
            ),
            Req("/api/v1/tags/bulk-assign", json={"tag_ids": ["nope"], "position_ids": ["{mine_pos_1}"]}, status=422),
        ),
    ),
    # -------- ingest: upload and onboarding
    ("POST", "/api/v1/portfolio/upload"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/portfolio/upload",
                files=UPLOAD_FILE,
                form={"portfolio_name": "surface {tag_suffix}"},
                status=202,
            ),
            Req(
                "/api/v1/portfolio/upload",
                files=UPLOAD_FILE,
                form={"portfolio_id": "{mine}", "mode": "append"},
                headers={"Prefer": "wait=10"},
                status=200,
            ),
        ),
        bad=(
            Req("/api/v1/portfolio/upload", files=UPLOAD_FILE, form={"mode": "replace"}, status=422),
            Req("/api/v1/portfolio/upload", files=UPLOAD_FILE, form={"portfolio_id": "mine"}, status=422),
            Req("/api/v1/portfolio/upload", files=UPLOAD_FILE, form={"cash_balance": "-5"}, status=422),
            Req(
                "/api/v1/portfolio/upload",
                files={"portfolio_name": (None, b"no file part", "text/plain")},  # type: ignore[dict-item]
                status=400,
                code="BAD_REQUEST",
            ),
            Req("/api/v1/portfolio/upload", json={"rows": []}, status=415, code="UNSUPPORTED_MEDIA_TYPE"),
        ),
    ),
    ("GET", "/api/v1/portfolio/upload/{upload_id}/status"): Route(
        "user",
        ok=(Req("/api/v1/portfolio/upload/{upload}/status"),),
        bad=(
            Req("/api/v1/portfolio/upload/not-a-uuid/status", status=422),
            Req(
                "/api/v1/portfolio/upload/0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11/status",
                status=404,
                code="UPLOAD_NOT_FOUND",
            ),
        ),
    ),
    ("GET", "/api/v1/portfolio/upload/{upload_id}/results"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/upload/{upload}/results"),
            Req("/api/v1/portfolio/upload/{upload}/results", params={"severity": "warning", "limit": "10"}),
        ),
        bad=(
            Req("/api/v1/portfolio/upload/{upload}/results", params={"severity": "fatal"}, status=422),
            Req("/api/v1/portfolio/upload/{upload}/results", params={"limit": "1001"}, status=422),
        ),
    ),
    ("GET", "/api/v1/portfolio/templates"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/templates"),
            Req("/api/v1/portfolio/templates", params={"name": "basic"}, media="text/csv", check=check_csv_template),
        ),
        bad=(Req("/api/v1/portfolio/templates", params={"name": "fancy"}, status=404, code="TEMPLATE_NOT_FOUND"),),
    ),
    ("GET", "/api/v1/portfolio/onboarding/{portfolio_id}/preview"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/onboarding/{onboarding}/preview"),
            Req("/api/v1/portfolio/onboarding/{onboarding}/preview", params={"sort": "-market_value", "limit": "1"}),
        ),
        bad=(
            Req("/api/v1/portfolio/onboarding/{onboarding}/preview", params={"sort": "colour"}, status=422),
            Req("/api/v1/portfolio/onboarding/not-a-uuid/preview", status=422),
            Req("/api/v1/portfolio/onboarding/{mine}/preview", status=409, code="INVALID_STATE"),
        ),
    ),
    ("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/validate"): Route(
        "user",
        ok=(Req("/api/v1/portfolio/onboarding/{onboarding}/validate", check=check_validation),),
        bad=(Req("/api/v1/portfolio/onboarding/not-a-uuid/validate", status=422),),
    ),
    ("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/complete"): Route(
        "user",
        ok=(Req("/api/v1/portfolio/onboarding/{ready}/complete", status=202, check=check_became_active),),
        bad=(Req("/api/v1/portfolio/onboarding/not-a-uuid/complete", status=422),),
    ),
    ("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/retry"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/onboarding/{onboarding}/retry", json={}, status=202),
            Req("/api/v1/portfolio/onboarding/{onboarding}/retry", json={"steps": ["price_history"]}, status=202),
        ),
        bad=(
            Req("/api/v1/portfolio/onboarding/{onboarding}/retry", json={"steps": ["astrology"]}, status=422),
            Req("/api/v1/portfolio/onboarding/{onboarding}/retry", json={"symbols": []}, status=422),
            Req("/api/v1/portfolio/onboarding/not-a-uuid/retry", json={}, status=422),
        ),
    ),
    ("POST", "/api/v1/admin/demo/reset"): Route(
        "admin",
        ok=(),  # exercised last, by test_demo_reset_restores_the_books_and_removes_what_this_module_made
        no_input="takes no body and no parameters",
    ),
    # -------- ingest: notifications
    ("GET", "/api/v1/notifications"): Route(
        "user",
        ok=(
            Req("/api/v1/notifications"),
            Req("/api/v1/notifications", params={"unread": "true", "kind": "onboarding_completed,run_failed"}),
        ),
        bad=(
            Req("/api/v1/notifications", params={"kind": "gossip"}, status=422),
            Req("/api/v1/notifications", params={"unread": "perhaps"}, status=422),
            Req("/api/v1/notifications", params={"limit": "501"}, status=422),
        ),
    ),
    ("POST", "/api/v1/notifications/{id}/read"): Route(
        "user",
        ok=(Req("/api/v1/notifications/{notification}/read", setup=own_notification, check=check_notification_read),),
        bad=(
            Req("/api/v1/notifications/not-a-uuid/read", status=422),
            Req("/api/v1/notifications/{no_such_notification}/read", status=404, code="NOTIFICATION_NOT_FOUND"),
        ),
    ),
    ("POST", "/api/v1/notifications/read-all"): Route(
        "user",
        ok=(Req("/api/v1/notifications/read-all", check=check_all_read),),
        no_input="takes no body and no parameters",
    ),
    # -------- ingest: ProForma modelling
    ("POST", "/api/v1/modeling/sessions"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions", json={"portfolio_id": "{hf_portfolio}", "name": "surface"}, status=201),),
        bad=(
            Req("/api/v1/modeling/sessions", json={}, status=422),
            Req("/api/v1/modeling/sessions", json={"name": ""}, status=422),
            Req("/api/v1/modeling/sessions", json={"name": "x", "portfolio_id": "not-a-uuid"}, status=422),
            Req("/api/v1/modeling/sessions", json={"name": "x", "colour": "red"}, status=422),
        ),
    ),
    ("GET", "/api/v1/modeling/sessions"): Route(
        "user",
        ok=(
            Req("/api/v1/modeling/sessions"),
            Req("/api/v1/modeling/sessions", params={"status": "active,saved", "portfolio_id": "{hf_portfolio}"}),
        ),
        bad=(
            Req("/api/v1/modeling/sessions", params={"status": "dreaming"}, status=422),
            Req("/api/v1/modeling/sessions", params={"portfolio_id": "not-a-uuid"}, status=422),
            Req("/api/v1/modeling/sessions", params={"limit": "501"}, status=422),
        ),
    ),
    ("DELETE", "/api/v1/modeling/sessions/{session_id}"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions/{doomed_session}", status=204, media="", setup=session_to_cancel),),
        bad=(Req("/api/v1/modeling/sessions/not-a-uuid", status=422),),
    ),
    ("GET", "/api/v1/modeling/sessions/{session_id}"): Route(
        "user",
        ok=(
            Req("/api/v1/modeling/sessions/{session}", setup=modeling_session),
            Req("/api/v1/modeling/sessions/{session}", params={"include": "positions"}, setup=modeling_session),
        ),
        bad=(
            Req("/api/v1/modeling/sessions/not-a-uuid", status=422),
            Req("/api/v1/modeling/sessions/{session}", params={"include": "gossip"}, status=422),
            Req("/api/v1/modeling/sessions/{no_such_session}", status=404, code="SESSION_NOT_FOUND"),
        ),
    ),
    ("POST", "/api/v1/modeling/sessions/{session_id}/trades"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/modeling/sessions/{session}/trades",
                json={"trades": [{"ticker": "QQQ", "side": "short", "amount": 1000}]},
                status=201,
                setup=modeling_session,
            ),
        ),
        bad=(
            Req("/api/v1/modeling/sessions/{session}/trades", json={}, status=422),
            Req("/api/v1/modeling/sessions/{session}/trades", json={"ticker": "SPY", "side": "buy"}, status=422),
            Req(
                "/api/v1/modeling/sessions/{session}/trades",
                json={"ticker": "SPY", "side": "sideways", "quantity": 1},
                status=422,
            ),
            Req("/api/v1/modeling/sessions/{session}/trades", json={"trades": []}, status=422),
        ),
    ),
    ("DELETE", "/api/v1/modeling/sessions/{session_id}/trades/{trade_id}"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions/{session}/trades/{fresh_trade}", setup=fresh_trade),),
        bad=(Req("/api/v1/modeling/sessions/{session}/trades/not-a-uuid", status=422),),
    ),
    ("POST", "/api/v1/modeling/sessions/{session_id}/calculate"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions/{session}/calculate", status=202, setup=modeling_session),),
        bad=(
            Req("/api/v1/modeling/sessions/{session}/calculate", json={"as_of_date": "someday"}, status=422),
            Req("/api/v1/modeling/sessions/{session}/calculate", json={"force": True}, status=422),
        ),
    ),
    ("GET", "/api/v1/modeling/sessions/{session_id}/impacts"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions/{session}/impacts", setup=modeling_session, check=check_impacts),),
        bad=(Req("/api/v1/modeling/sessions/not-a-uuid/impacts", status=422),),
    ),
    ("POST", "/api/v1/modeling/sessions/{session_id}/save"): Route(
        "user",
        ok=(Req("/api/v1/modeling/sessions/{save_session}/save", json={}, setup=session_to_save, check=check_saved),),
        bad=(Req("/api/v1/modeling/sessions/{session}/save", json={"name": ""}, status=422),),
    ),
    ("POST", "/api/v1/modeling/sessions/{session_id}/suggestions"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/modeling/sessions/{session}/suggestions",
                json={"goal": "neutralize_beta"},
                setup=modeling_session,
            ),
        ),
        bad=(
            Req("/api/v1/modeling/sessions/{session}/suggestions", json={"goal": "world_peace"}, status=422),
            Req("/api/v1/modeling/sessions/{session}/suggestions", json={"goal": "neutralize_factor"}, status=422),
            Req(
                "/api/v1/modeling/sessions/{session}/suggestions",
                json={"goal": "reduce_stress_loss", "target_pct": 2},
                status=422,
            ),
        ),
    ),
    # -------- stress: time series
    ("GET", "/api/v1/portfolio/exposures"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/exposures"),
            Req(
                "/api/v1/portfolio/exposures",
                params={"portfolio_id": "{hf_portfolio}", "period": "week", "interval": "weekly"},
            ),
            Req("/api/v1/portfolio/exposures", params={"start_date": "2026-11-19", "end_date": "{as_of}"}),
        ),
        bad=(
            Req("/api/v1/portfolio/exposures", params={"period": "fortnight"}, status=422),
            Req("/api/v1/portfolio/exposures", params={"start_date": "{as_of}", "end_date": "2026-11-02"}, status=422),
            Req("/api/v1/portfolio/exposures", params={"interval": "hourly"}, status=422),
        ),
    ),
    ("GET", "/api/v1/portfolio/performance"): Route(
        "user",
        ok=(
            Req("/api/v1/portfolio/performance"),
            Req(
                "/api/v1/portfolio/performance",
                params={
                    "portfolio_id": "{hf_portfolio}",
                    "period": "inception",
                    "benchmark": "SPY",
                    "include": "series",
                },
            ),
            Req("/api/v1/portfolio/performance", params={"benchmark": "none", "period": "day"}),
        ),
        bad=(
            Req("/api/v1/portfolio/performance", params={"period": "fortnight"}, status=422),
            Req("/api/v1/portfolio/performance", params={"include": "gossip"}, status=422),
            Req("/api/v1/portfolio/performance", params={"benchmark": "NOPEZZ"}, status=404, code="SYMBOL_NOT_FOUND"),
        ),
    ),
    # -------- greeks
    ("GET", "/api/v1/risk/greeks"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/greeks"),
            Req(
                "/api/v1/risk/greeks",
                params={"portfolio_id": "{hf_portfolio}", "underlying": "AAPL", "include_positions": "true"},
            ),
            Req("/api/v1/risk/greeks", params={"portfolio_id": "{mine}", "view": "longs"}),
        ),
        bad=(
            Req("/api/v1/risk/greeks", params={"view": "sideways"}, status=422),
            Req("/api/v1/risk/greeks", params={"expiring_within_days": "-1"}, status=422),
        ),
    ),
    ("POST", "/api/v1/risk/greeks/calculate"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/risk/greeks/calculate",
                json={"positions": [{"symbol": "AAPL261218C00250000", "quantity": 1}]},
                check=check_adhoc_greeks,
            ),
            Req("/api/v1/risk/greeks/calculate", json={"portfolio_id": "{mine}"}, status=202),
            Req(
                "/api/v1/risk/greeks/calculate",
                json={"portfolio_id": "{mine}", "as_of_date": "{as_of}"},
                headers={"Prefer": "wait=10"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/greeks/calculate", json={}, status=422),
            Req("/api/v1/risk/greeks/calculate", json={"positions": []}, status=422),
            Req(
                "/api/v1/risk/greeks/calculate",
                json={"positions": [{"symbol": "AAPL261218C00250000", "quantity": 1}], "portfolio_id": "{mine}"},
                status=422,
            ),
            Req(
                "/api/v1/risk/greeks/calculate",
                json={
                    "positions": [
                        {
                            "underlying": "AAPL",
                            "option_type": "C",
                            "strike_price": -5,
                            "expiration_date": "2026-12-18",
                            "quantity": 1,
                        }
                    ]
                },
                status=422,
            ),
        ),
    ),
    # -------- factors
    ("GET", "/api/v1/factors/definitions"): Route(
        "user",
        ok=(
            Req("/api/v1/factors/definitions"),
            Req("/api/v1/factors/definitions", params={"include_inactive": "false"}),
        ),
        bad=(Req("/api/v1/factors/definitions", params={"include_inactive": "perhaps"}, status=422),),
    ),
    # -------- factors: exposures and the factor matrix (#31, #32, #34, #35, #45, #46, #47)
    ("GET", "/api/v1/risk/factors"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/factors", check=check_exposures),
            Req(
                "/api/v1/risk/factors",
                params={"portfolio_id": "{hf_portfolio}", "include": "attribution", "attribution_days": "5"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/factors", params={"include": "gossip"}, status=422),
            Req("/api/v1/risk/factors", params={"attribution_days": "0"}, status=422),
            Req("/api/v1/risk/factors", params={"portfolio_id": "mine"}, status=422),
            Req("/api/v1/risk/factors", params={"as_of_date": "2020-01-02"}, status=404, code="NOT_CALCULATED"),
        ),
    ),
    ("GET", "/api/v1/risk/factors/positions"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/factors/positions"),
            Req(
                "/api/v1/risk/factors/positions",
                params={"portfolio_id": "{hf_portfolio}", "factors": "market,growth", "sort": "-beta.market"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/factors/positions", params={"sort": "colour"}, status=422),
            Req("/api/v1/risk/factors/positions", params={"limit": "1001"}, status=422),
            Req("/api/v1/risk/factors/positions", params={"factors": "astrology"}, status=422),
            Req("/api/v1/risk/factors/positions", params={"quality": "great"}, status=422),
        ),
    ),
    ("GET", "/api/v1/risk/correlations/factors/matrix"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/correlations/factors/matrix", check=check_factor_matrix),
            Req("/api/v1/risk/correlations/factors/matrix", params={"basis": "raw", "as_of_date": "{as_of}"}),
        ),
        bad=(
            Req("/api/v1/risk/correlations/factors/matrix", params={"basis": "cooked"}, status=422),
            Req("/api/v1/risk/correlations/factors/matrix", params={"lookback_days": "59"}, status=422),
            Req(
                "/api/v1/risk/correlations/factors/matrix",
                params={"as_of_date": "2020-01-02"},
                status=404,
                code="NOT_CALCULATED",
            ),
        ),
    ),
    ("POST", "/api/v1/risk/correlations/factors/calculate"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/correlations/factors/calculate", json={}, check=check_factor_matrix),
            Req("/api/v1/risk/correlations/factors/calculate", json={"as_of_date": "{as_of}", "lookback_days": 252}),
        ),
        bad=(
            Req("/api/v1/risk/correlations/factors/calculate", json={"lookback_days": 59}, status=422),
            Req("/api/v1/risk/correlations/factors/calculate", json={"as_of_date": "someday"}, status=422),
            Req("/api/v1/risk/correlations/factors/calculate", json={"basis": "raw"}, status=422),
        ),
    ),
    ("GET", "/api/v1/factors/exposures/{portfolio_id}"): Route(
        "user",
        ok=(
            Req("/api/v1/factors/exposures/{hf_portfolio}", check=check_exposures),
            Req("/api/v1/factors/exposures/{hf_portfolio}", params={"as_of_date": "{as_of}", "include": "attribution"}),
        ),
        bad=(
            Req("/api/v1/factors/exposures/not-a-uuid", status=422),
            Req("/api/v1/factors/exposures/{hf_portfolio}", params={"attribution_days": "253"}, status=422),
            Req("/api/v1/factors/exposures/{hf_portfolio}", params={"include": "gossip"}, status=422),
            Req(
                "/api/v1/factors/exposures/0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11", status=404, code="PORTFOLIO_NOT_FOUND"
            ),
        ),
    ),
    ("GET", "/api/v1/factors/exposures/{portfolio_id}/positions"): Route(
        "user",
        ok=(
            Req("/api/v1/factors/exposures/{hf_portfolio}/positions"),
            Req(
                "/api/v1/factors/exposures/{hf_portfolio}/positions",
                params={"type": "LC,SP", "sort": "-dollar_exposure", "limit": "5"},
            ),
        ),
        bad=(
            Req("/api/v1/factors/exposures/{hf_portfolio}/positions", params={"type": "LONGISH"}, status=422),
            Req("/api/v1/factors/exposures/{hf_portfolio}/positions", params={"sort": "beta.luck"}, status=422),
            Req("/api/v1/factors/exposures/not-a-uuid/positions", status=422),
        ),
    ),
    ("POST", "/api/v1/factors/calculate"): Route(
        "user",
        ok=(
            Req("/api/v1/factors/calculate", json={"portfolio_id": "{mine}", "force": True}, status=202),
            Req(
                "/api/v1/factors/calculate",
                json={"portfolio_id": "{mine}", "as_of_date": "{as_of}"},
                headers={"Prefer": "wait=10"},
                check=check_exposures,
            ),
        ),
        bad=(
            Req("/api/v1/factors/calculate", json={}, status=422),
            Req("/api/v1/factors/calculate", json={"portfolio_id": "{mine}", "force": "perhaps"}, status=422),
            Req("/api/v1/factors/calculate", json={"portfolio_id": "{mine}", "window": 60}, status=422),
            Req(
                "/api/v1/factors/calculate",
                json={"portfolio_id": "0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11"},
                status=404,
                code="PORTFOLIO_NOT_FOUND",
            ),
        ),
    ),
    # -------- factors: position correlations (#41, #42, #43)
    ("GET", "/api/v1/risk/correlations/positions/metrics"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/correlations/positions/metrics"),
            Req(
                "/api/v1/risk/correlations/positions/metrics",
                params={"portfolio_id": "{hf_portfolio}", "view": "longs", "correlation_threshold": "0.5"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/correlations/positions/metrics", params={"view": "sideways"}, status=422),
            Req("/api/v1/risk/correlations/positions/metrics", params={"correlation_threshold": "2"}, status=422),
            Req("/api/v1/risk/correlations/positions/metrics", params={"filter_mode": "any"}, status=422),
            Req("/api/v1/risk/correlations/positions/metrics", params={"duration_days": "10"}, status=422),
        ),
    ),
    ("GET", "/api/v1/risk/correlations/positions/matrix"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/correlations/positions/matrix", check=check_position_matrix),
            Req(
                "/api/v1/risk/correlations/positions/matrix",
                params={"portfolio_id": "{hf_portfolio}", "values": "direction_adjusted", "include": "p_values"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/correlations/positions/matrix", params={"values": "cooked"}, status=422),
            Req(
                "/api/v1/risk/correlations/positions/matrix",
                params={"min_correlation": "0.5", "max_correlation": "0.1"},
                status=422,
            ),
            Req("/api/v1/risk/correlations/positions/matrix", params={"include": "gossip"}, status=422),
            Req("/api/v1/risk/correlations/positions/matrix", params={"position_types": "LONGISH"}, status=422),
        ),
    ),
    ("POST", "/api/v1/risk/correlations/positions/calculate"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/risk/correlations/positions/calculate",
                json={"portfolio_id": "{mine}", "duration_days": 60, "position_filters": OPEN_FILTERS},
                status=202,
            ),
            Req(
                "/api/v1/risk/correlations/positions/calculate",
                json={"portfolio_id": "{mine}", "position_filters": OPEN_FILTERS, "force_recalculate": True},
                headers={"Prefer": "wait=10"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/correlations/positions/calculate", json={}, status=422),
            Req(
                "/api/v1/risk/correlations/positions/calculate",
                json={"portfolio_id": "{mine}", "duration_days": 29},
                status=422,
            ),
            Req(
                "/api/v1/risk/correlations/positions/calculate",
                json={"portfolio_id": "{mine}", "position_filters": {"filter_mode": "any"}},
                status=422,
            ),
            # Default filters ($10,000 and 1 % of gross, both): the small book has fewer than 2 nodes.
            Req(
                "/api/v1/risk/correlations/positions/calculate",
                json={"portfolio_id": "{mine}", "position_filters": {"min_position_value": 1000000}},
                status=422,
            ),
        ),
    ),
    # -------- stress: risk metrics and stress testing (#33, #36-#40)
    ("GET", "/api/v1/risk/metrics"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/metrics"),
            Req(
                "/api/v1/risk/metrics",
                params={
                    "portfolio_id": "{hf_portfolio}",
                    "confidence": "0.99",
                    "horizon_days": "10",
                    "include": "parametric_ewma",
                },
            ),
        ),
        bad=(
            Req("/api/v1/risk/metrics", params={"confidence": "0.9"}, status=422),
            Req("/api/v1/risk/metrics", params={"horizon_days": "5"}, status=422),
            Req("/api/v1/risk/metrics", params={"include": "gossip"}, status=422),
            Req("/api/v1/risk/metrics", params={"as_of_date": "2020-01-02"}, status=404, code="NOT_CALCULATED"),
        ),
    ),
    ("GET", "/api/v1/risk/stress-testing/scenarios"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/stress-testing/scenarios", check=check_scenarios),
            Req(
                "/api/v1/risk/stress-testing/scenarios",
                params={"category": "market,rates", "severity": "severe", "sort": "-name", "active_only": "false"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/stress-testing/scenarios", params={"category": "crypto"}, status=422),
            Req("/api/v1/risk/stress-testing/scenarios", params={"severity": "apocalyptic"}, status=422),
            Req("/api/v1/risk/stress-testing/scenarios", params={"sort": "colour"}, status=422),
            Req("/api/v1/risk/stress-testing/scenarios", params={"limit": "0"}, status=422),
        ),
    ),
    ("POST", "/api/v1/risk/stress-testing/direct-impact"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/stress-testing/direct-impact", json={"scenario_id": "market_down_10"}),
            Req(
                "/api/v1/risk/stress-testing/direct-impact",
                json={"portfolio_id": "{hf_portfolio}", "scenario": {"name": "tech wreck", "shocks": CUSTOM_SHOCKS}},
            ),
        ),
        bad=impact_bad("/api/v1/risk/stress-testing/direct-impact"),
    ),
    ("POST", "/api/v1/risk/stress-testing/correlated-impact"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/stress-testing/correlated-impact", json={"scenario_id": "rates_up_100bp"}),
            Req(
                "/api/v1/risk/stress-testing/correlated-impact",
                json={"portfolio_id": "{hf_portfolio}", "scenario": {"name": "tech wreck", "shocks": CUSTOM_SHOCKS}},
            ),
        ),
        bad=(
            *impact_bad("/api/v1/risk/stress-testing/correlated-impact"),
            Req(
                "/api/v1/risk/stress-testing/correlated-impact",
                json={"scenario_id": "market_down_10", "matrix_id": "latest"},
                status=422,
            ),
        ),
    ),
    ("POST", "/api/v1/risk/stress-testing/comprehensive"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/risk/stress-testing/comprehensive",
                json={"portfolio_id": "{mine}", "categories": ["rates"]},
                status=202,
                setup=ensure_exposures_of_mine,
            ),
            Req(
                "/api/v1/risk/stress-testing/comprehensive",
                json={"portfolio_id": "{mine}"},
                headers={"Prefer": "wait=10"},
                setup=ensure_exposures_of_mine,
                check=check_results,
            ),
        ),
        bad=(
            Req("/api/v1/risk/stress-testing/comprehensive", json={"categories": ["crypto"]}, status=422),
            Req("/api/v1/risk/stress-testing/comprehensive", json={"scenario_ids": []}, status=422),
            Req("/api/v1/risk/stress-testing/comprehensive", json={"everything": True}, status=422),
            Req(
                "/api/v1/risk/stress-testing/comprehensive",
                json={"scenario_ids": ["market_down_99"]},
                status=404,
                code="SCENARIO_NOT_FOUND",
            ),
        ),
    ),
    ("GET", "/api/v1/risk/stress-testing/results/{portfolio_id}"): Route(
        "user",
        ok=(
            Req("/api/v1/risk/stress-testing/results/{hf_portfolio}", check=check_results),
            Req(
                "/api/v1/risk/stress-testing/results/{hf_portfolio}",
                params={"category": "historical,market", "sort": "-name"},
            ),
        ),
        bad=(
            Req("/api/v1/risk/stress-testing/results/not-a-uuid", status=422),
            Req("/api/v1/risk/stress-testing/results/{hf_portfolio}", params={"sort": "colour"}, status=422),
            Req("/api/v1/risk/stress-testing/results/{hf_portfolio}", params={"category": "crypto"}, status=422),
            Req(
                "/api/v1/risk/stress-testing/results/0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                status=404,
                code="PORTFOLIO_NOT_FOUND",
            ),
        ),
    ),
    # -------- stress: reports and exports (#66-#71, #75)
    ("POST", "/api/v1/reports/generate"): Route(
        "user",
        ok=(Req("/api/v1/reports/generate", json={"portfolio_id": "{hf_portfolio}", "formats": ["md"]}, status=202),),
        bad=(
            Req("/api/v1/reports/generate", json={"formats": ["docx"]}, status=422),
            Req("/api/v1/reports/generate", json={"formats": []}, status=422),
            Req("/api/v1/reports/generate", json={"sections": ["gossip"]}, status=422),
            Req("/api/v1/reports/generate", json={"as_of_date": "someday"}, status=422),
            Req("/api/v1/reports/generate", json={"colour": "red"}, status=422),
        ),
    ),
    ("GET", "/api/v1/reports/{report_id}/status"): Route(
        "user",
        ok=(Req("/api/v1/reports/{report}/status", setup=a_report, check=check_report_status),),
        bad=(
            Req("/api/v1/reports/not-a-uuid/status", status=422),
            Req("/api/v1/reports/{no_such_report}/status", status=404, code="REPORT_NOT_FOUND"),
        ),
    ),
    ("GET", "/api/v1/reports/{report_id}/download"): Route(
        "user",
        ok=(
            Req("/api/v1/reports/{report}/download", params={"format": "md"}, setup=a_report, media="text/markdown"),
            Req("/api/v1/reports/{report}/download", params={"format": "JSON"}, setup=a_report),
        ),
        bad=(
            Req("/api/v1/reports/{report}/download", params={"format": "docx"}, status=422),
            Req("/api/v1/reports/not-a-uuid/download", params={"format": "md"}, status=422),
            Req(
                "/api/v1/reports/{no_such_report}/download",
                params={"format": "md"},
                status=404,
                code="REPORT_NOT_FOUND",
            ),
        ),
    ),
    ("GET", "/api/v1/reports"): Route(
        "user",
        ok=(
            Req("/api/v1/reports"),
            Req(
                "/api/v1/reports", params={"portfolio_id": "{hf_portfolio}", "trigger": "batch", "sort": "-as_of_date"}
            ),
        ),
        bad=(
            Req("/api/v1/reports", params={"status": "done"}, status=422),
            Req("/api/v1/reports", params={"trigger": "cron"}, status=422),
            Req("/api/v1/reports", params={"sort": "size"}, status=422),
            Req("/api/v1/reports", params={"as_of_date": "someday"}, status=422),
        ),
    ),
    ("POST", "/api/v1/export/trades"): Route(
        "user",
        ok=(
            Req(
                "/api/v1/export/trades",
                json={"trades": [{"side": "SELL_SHORT", "symbol": "QQQ", "quantity": 5}], "format": "fix"},
                status=201,
            ),
        ),
        bad=(
            Req("/api/v1/export/trades", json={"format": "csv"}, status=422),
            Req(
                "/api/v1/export/trades",
                json={"trades": [{"side": "BUY", "symbol": "AAPL", "quantity": 1}], "format": "xlsx"},
                status=422,
            ),
            Req(
                "/api/v1/export/trades",
                json={"trades": [{"side": "BUY", "symbol": "AAPL", "quantity": 0}], "format": "csv"},
                status=422,
            ),
            Req(
                "/api/v1/export/trades",
                json={"trades": [{"side": "BUY", "symbol": "ZZNOPE", "quantity": 1}], "format": "csv"},
                status=422,
                code="UNKNOWN_SYMBOL",
            ),
        ),
    ),
    ("GET", "/api/v1/export/history"): Route(
        "user",
        ok=(Req("/api/v1/export/history"), Req("/api/v1/export/history", params={"export_type": "trades,report"})),
        bad=(
            Req("/api/v1/export/history", params={"export_type": "gossip"}, status=422),
            Req("/api/v1/export/history", params={"sort": "file_name"}, status=422),
            Req("/api/v1/export/history", params={"since": "yesterday"}, status=422),
        ),
    ),
    ("GET", "/api/v1/export/{export_id}/download"): Route(
        "user",
        ok=(Req("/api/v1/export/{export}/download", setup=an_export, media="text/csv"),),
        bad=(
            Req("/api/v1/export/not-a-uuid/download", status=422),
            Req("/api/v1/export/{no_such_export}/download", status=404, code="EXPORT_NOT_FOUND"),
        ),
    ),
}

ADMIN_ONLY_LAST = ("POST", "/api/v1/admin/demo/reset")


def ops(predicate: Callable[[tuple[str, str], Route], bool]) -> list[tuple[str, str]]:
    return [key for key, route in ROUTES.items() if predicate(key, route)]


def op_id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def documented(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


async def run_ok(w: World, method: str, req: Req) -> httpx.Response:
    """Send a success request, assert its status and shape, follow a 202 job to its end."""
    extra = {"tag_suffix": uuid.uuid4().hex[:10]}
    if req.setup is not None:
        extra.update(await req.setup(w))
    resp = await send(w, method, req, extra)
    assert resp.status_code == req.status, f"{method} {resp.request.url}: {resp.status_code} {resp.text[:800]}"
    assert resp.headers.get("x-request-id"), resp.headers
    if req.media == "application/json":
        assert resp.headers["content-type"].startswith("application/json"), resp.headers
        body = resp.json()
        if "data" in body:
            assert set(body) <= {"data", "meta", "page"}, set(body)
            assert body["meta"]["request_id"] == resp.headers["x-request-id"]
            assert UTC_TIMESTAMP_RE.match(body["meta"]["timestamp"]), body["meta"]
            if isinstance(body["data"], list):
                page = body["page"]
                assert set(page) == {"limit", "offset", "total", "has_more"}, page
                assert page["has_more"] == (page["offset"] + page["limit"] < page["total"]), page
        if resp.status_code == 202:
            data = body["data"]
            assert {"job_id", "job_type", "status", "deduplicated", "status_url", "result_url"} <= set(data), data
            assert resp.headers["location"] == data["status_url"] and resp.headers["retry-after"] == "2"
            # Uploads and reports point at their own status route (api.md #24, #66); other jobs at /jobs/{job_id}.
            assert data["status_url"] in (
                f"/api/v1/jobs/{data['job_id']}",
                f"/api/v1/portfolio/upload/{data.get('upload_id')}/status",
                f"/api/v1/reports/{data.get('report_id')}/status",
            ), data
            job = await wait_job(w.client, headers_of(w, req, extra), data["status_url"])
            assert job["status"] == "completed", job
    elif req.media:
        assert resp.headers["content-type"].startswith(req.media), resp.headers
    else:
        assert resp.content == b"", resp.content
    if req.check is not None:
        await req.check(w, resp, {**w.values, **extra})
    return resp


def headers_of(w: World, req: Req, extra: dict[str, Any]) -> dict[str, str]:
    return bearer(extra["access_token"]) if req.as_ == "setup" else w.headers[req.as_]


# --------------------------------------------------------------------------------------- tests


async def test_call_table_covers_exactly_the_documented_operations(world: World) -> None:
    documented_ops = set(documented(world.doc))
    unknown = sorted(documented_ops - set(ROUTES))
    stale = sorted(set(ROUTES) - documented_ops)
    assert not unknown, f"routes in the OpenAPI document that this test does not know how to call: {unknown}"
    assert not stale, f"routes this test calls that the OpenAPI document no longer lists: {stale}"
    assert world.doc["openapi"].startswith("3.1")
    assert "x-unavailable-services" not in world.doc["info"], world.doc["info"]


async def test_every_operation_has_a_success_call_and_a_malformed_call_or_says_why_not(world: World) -> None:
    for key, route in ROUTES.items():
        assert route.ok or key == ADMIN_ONLY_LAST, key
        assert route.bad or route.no_input, f"{key}: no malformed-input call and no reason given"


async def test_document_requires_a_token_everywhere_except_the_public_routes(world: World) -> None:
    assert world.doc["security"] == [{"bearerAuth": []}]
    public = {key for key, op in documented(world.doc).items() if op.get("security") == []}
    assert public == set(ops(lambda k, r: r.access == "public"))
    assert public == {
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/health"),
        ("GET", "/api/v1/openapi.json"),
    }


PROTECTED = ops(lambda k, r: r.access != "public")


@pytest.mark.parametrize("key", PROTECTED, ids=op_id)
async def test_route_answers_401_without_a_valid_token(world: World, key: tuple[str, str]) -> None:
    method, _ = key
    route = ROUTES[key]
    path = fill(route.ok[0].path, world.values) if route.ok else key[1]
    # /metrics is open to the internal network (the test client is a loopback peer); seen from outside it is not.
    where = {"X-Forwarded-For": "203.0.113.7"} if route.access == "metrics" else {}
    secret = world.system.inner.app.state.jwt_secret
    owner_id = uuid.UUID(
        (await world.client.get("/api/v1/auth/me", headers=world.headers["owner"])).json()["data"]["id"]
    )
    forged = issue_access_token(Principal(owner_id, DEMO_EMAILS["hedgefund"], "admin"), "not-the-secret" * 3, 3600)
    for auth in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic x"}, bearer(forged)):
        resp = await world.client.request(method, path, headers={**where, **auth})
        error = assert_error(resp, 401, "UNAUTHENTICATED")
        assert error["retryable"] is False
    expired = issue_access_token(Principal(owner_id, DEMO_EMAILS["hedgefund"], "user"), secret, 60, now=1_000_000)
    resp = await world.client.request(method, path, headers={**where, **bearer(expired)})
    assert assert_error(resp, 401, "TOKEN_EXPIRED")["hint"] == "POST /api/v1/auth/refresh"


ADMIN = ops(lambda k, r: r.access in ("admin", "metrics"))


@pytest.mark.parametrize("key", ADMIN, ids=op_id)
async def test_admin_route_answers_403_to_a_user_token(world: World, key: tuple[str, str]) -> None:
    method, path = key
    route = ROUTES[key]
    req = route.ok[0] if route.ok else Req(path)
    db = world.system.inner.db
    runs = await db.fetchrow("SELECT count(*) AS n FROM marketdata.api_batch_run")
    resp = await send(world, method, Req(req.path, params=req.params, json=req.json, files=req.files, as_="owner"))
    assert_error(resp, 403, "FORBIDDEN")
    assert (await db.fetchrow("SELECT count(*) AS n FROM marketdata.api_batch_run"))["n"] == runs["n"]


GETS = ops(lambda k, r: k[0] == "GET")


@pytest.mark.parametrize("key", GETS, ids=op_id)
async def test_get_route_answers_with_real_ids_and_symbols(world: World, key: tuple[str, str]) -> None:
    operation = documented(world.doc)[key]
    for req in ROUTES[key].ok:
        resp = await run_ok(world, "GET", req)
        assert str(resp.status_code) in operation["responses"], (key, resp.status_code, list(operation["responses"]))


@pytest.mark.parametrize("key", ops(lambda k, r: k[0] == "GET" and bool(r.bad)), ids=op_id)
async def test_get_route_rejects_malformed_parameters(world: World, key: tuple[str, str]) -> None:
    for req in ROUTES[key].bad:
        resp = await send(world, "GET", req)
        assert_error(resp, req.status, req.code or "VALIDATION_ERROR")


WRITES = ops(lambda k, r: k[0] != "GET" and k != ADMIN_ONLY_LAST)


@pytest.mark.parametrize("key", WRITES, ids=op_id)
async def test_state_changing_route_answers_its_documented_success_status(world: World, key: tuple[str, str]) -> None:
    method, _ = key
    operation = documented(world.doc)[key]
    for req in ROUTES[key].ok:
        resp = await run_ok(world, method, req)
        assert str(resp.status_code) in operation["responses"], (key, resp.status_code, list(operation["responses"]))


def _json_body(operation: dict[str, Any]) -> bool:
    return "application/json" in (operation.get("requestBody") or {}).get("content", {})


def _multipart(operation: dict[str, Any]) -> bool:
    return "multipart/form-data" in (operation.get("requestBody") or {}).get("content", {})


@pytest.mark.parametrize("key", ops(lambda k, r: k[0] != "GET"), ids=op_id)
async def test_state_changing_route_rejects_malformed_input(world: World, key: tuple[str, str]) -> None:
    method, path = key
    operation = documented(world.doc)[key]
    route = ROUTES[key]
    if route.no_input:
        assert "requestBody" not in operation, operation
        assert {p["name"].lower() for p in operation.get("parameters", [])} <= {"prefer"}, operation["parameters"]
    for req in route.bad:
        resp = await send(world, method, req)
        assert_error(resp, req.status, req.code or "VALIDATION_ERROR")
    target = route.ok[0] if route.ok else Req(path)
    if _json_body(operation):
        resp = await send(world, method, Req(target.path, raw=b'{"unfinished": ', as_=_plain(target.as_)))
        assert_error(resp, 400, "BAD_REQUEST")
    if _multipart(operation):
        resp = await send(
            world,
            method,
            Req(
                target.path,
                raw=b"--x\r\nnot a part",
                content_type="multipart/form-data; boundary=x",
                as_=_plain(target.as_),
            ),
        )
        assert_error(resp, 400, "BAD_REQUEST")


def _plain(as_: str) -> str:
    return "owner" if as_ in ("setup", "none") else as_


# ---- conventions (api.md §2.4-§2.8) ------------------------------------------------------------


async def test_request_id_is_echoed_when_valid_and_minted_otherwise(world: World) -> None:
    owner = world.headers["owner"]
    mine = await world.client.get("/api/v1/portfolio", headers={**owner, "X-Request-ID": "client-trace_42"})
    assert mine.headers["x-request-id"] == "client-trace_42"
    assert mine.json()["meta"]["request_id"] == "client-trace_42"
    for headers in (owner, {**owner, "X-Request-ID": "not valid!"}, {**owner, "X-Request-ID": "x" * 65}):
        resp = await world.client.get("/api/v1/portfolio", headers=headers)
        minted = resp.headers["x-request-id"]
        assert REQUEST_ID_RE.match(minted), minted
        assert resp.json()["meta"]["request_id"] == minted
    failed = await world.client.get("/api/v1/positions/not-a-uuid", headers={**owner, "X-Request-ID": "err-1"})
    assert failed.headers["x-request-id"] == "err-1" and failed.json()["meta"]["request_id"] == "err-1"
    anonymous = await world.client.get("/api/v1/portfolio", headers={"X-Request-ID": "anon-7"})
    assert anonymous.headers["x-request-id"] == "anon-7"


async def test_unknown_api_paths_answer_route_not_found(world: World) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/portfolios", "/api/v2/portfolio", "/api/v1/risk/everything"):
        resp = await world.client.get(path, headers=world.headers["owner"])
        assert_error(resp, 404, "ROUTE_NOT_FOUND")
    resp = await world.client.get("/api/v1/positions/grouped/extra/segments", headers=world.headers["owner"])
    assert_error(resp, 404, "ROUTE_NOT_FOUND")


async def test_wrong_verb_on_a_known_route_answers_method_not_allowed(world: World) -> None:
    resp = await world.client.delete("/api/v1/positions", headers=world.headers["owner"])
    assert_error(resp, 405, "METHOD_NOT_ALLOWED")


def _money_fields(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    money_keys = {
        "market_value",
        "cost_basis",
        "unrealized_pnl",
        "daily_pnl",
        "dollar_exposure",
        "notional",
        "equity",
        "cash_balance",
        "long",
        "short",
        "gross",
        "net",
        "unrealized",
        "day",
        "dollar_delta",
        "dollar_gamma_1pct",
        "option_dollar_delta",
        "pnl",
        "mtd",
        "market_cap",
    }
    if isinstance(node, dict):
        for key, value in node.items():
            if key in money_keys and not isinstance(value, dict):
                found.append((f"{path}.{key}", value))
            found.extend(_money_fields(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_money_fields(value, f"{path}[{i}]"))
    return found


def _timestamps(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if (key.endswith("_at") or key == "timestamp") and value is not None:
                found.append((f"{path}.{key}", value))
            found.extend(_timestamps(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_timestamps(value, f"{path}[{i}]"))
    return found


async def test_money_is_a_two_decimal_string_and_timestamps_are_utc_with_z(world: World) -> None:
    owner, admin = world.headers["owner"], world.headers["admin"]
    bodies = [
        (await world.client.get(url, headers=headers)).json()
        for url, headers in (
            ("/api/v1/portfolio", owner),
            ("/api/v1/positions?limit=1000&include=greeks,factors", owner),
            ("/api/v1/positions/grouped?by=strategy", owner),
            ("/api/v1/strategies", owner),
            ("/api/v1/risk/greeks?include_positions=true", owner),
            ("/api/v1/portfolio/exposures?period=inception", owner),
            ("/api/v1/portfolio/performance?period=inception&include=series", owner),
            ("/api/v1/securities/AAPL", owner),
            ("/api/v1/auth/me", owner),
            (f"/api/v1/jobs/{world.values['upload_job']}", owner),
            (f"/api/v1/portfolio/upload/{world.values['upload']}/status", owner),
            (f"/api/v1/portfolio/onboarding/{world.values['onboarding']}/preview", owner),
            ("/api/v1/tags", owner),
            ("/api/v1/admin/batch/status", admin),
            ("/api/v1/admin/batch/history?limit=20", admin),
        )
    ]
    money = [m for body in bodies for m in _money_fields(body["data"])]
    stamps = [t for body in bodies for t in _timestamps(body)]
    assert len(money) > 100 and len(stamps) > 20
    bad_money = [(p, v) for p, v in money if v is not None and not (isinstance(v, str) and MONEY_RE.match(v))]
    assert not bad_money, bad_money[:10]
    bad_stamps = [(p, v) for p, v in stamps if not (isinstance(v, str) and UTC_TIMESTAMP_RE.match(v))]
    assert not bad_stamps, bad_stamps[:10]


async def test_list_endpoints_carry_a_page_block(world: World) -> None:
    owner, admin = world.headers["owner"], world.headers["admin"]
    for url, headers in (
        ("/api/v1/positions", owner),
        ("/api/v1/strategies", owner),
        ("/api/v1/tags", owner),
        ("/api/v1/portfolio/templates", owner),
        ("/api/v1/factors/definitions", owner),
        ("/api/v1/admin/batch/history", admin),
        ("/api/v1/admin/batch/schedule", admin),
        (f"/api/v1/portfolio/upload/{world.values['upload']}/results", owner),
        (f"/api/v1/portfolio/onboarding/{world.values['onboarding']}/preview", owner),
    ):
        body = (await world.client.get(url, headers=headers)).json()
        page = body["page"]
        assert isinstance(page["total"], int) and isinstance(page["has_more"], bool), (url, page)
        assert page["offset"] == 0 and page["limit"] >= 1, (url, page)


async def test_positions_page_20_to_30_is_the_last_ten_of_the_hedge_fund_book(world: World) -> None:
    owner = world.headers["owner"]
    everything = (await world.client.get("/api/v1/positions?limit=100", headers=owner)).json()
    assert everything["page"] == {"limit": 100, "offset": 0, "total": 30, "has_more": False}
    resp = await world.client.get("/api/v1/positions?limit=10&offset=20", headers=owner)
    body = resp.json()
    assert body["page"] == {"limit": 10, "offset": 20, "total": 30, "has_more": False}
    assert [p["id"] for p in body["data"]] == [p["id"] for p in everything["data"][20:]]
    first = (await world.client.get("/api/v1/positions?limit=10&offset=10", headers=owner)).json()
    assert first["page"]["has_more"] is True


async def test_positions_sorted_by_descending_market_value(world: World) -> None:
    resp = await world.client.get("/api/v1/positions?sort=-market_value&limit=5", headers=world.headers["owner"])
    assert resp.status_code == 200, resp.text
    assert [p["symbol"] for p in resp.json()["data"]] == ["NVDA", "META", "MSFT", "AAPL", "GOOGL"]
    error = assert_error(
        await world.client.get("/api/v1/positions?sort=-shoe_size", headers=world.headers["owner"]),
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"] and error["details"][0]["field"] == "query.sort"


# ---- last: the demo reset (#74) cleans up and restores ----------------------------------------


async def test_demo_reset_restores_the_books_and_removes_what_this_module_made(world: World) -> None:
    owner = world.headers["owner"]
    job = await demo_reset_and_settle(world.system, world.client)
    world.values["reset_done"] = "yes"
    assert job["job_type"] == "demo.reset" and job["result"]["portfolios"] == 3
    removed = set(job["result"]["removed_portfolios"])
    assert {world.values["mine"], world.values["onboarding"], world.values["ready"]} <= removed
    for pid in (world.values["mine"], world.values["onboarding"]):
        resp = await world.client.get("/api/v1/portfolio", params={"portfolio_id": pid}, headers=owner)
        assert_error(resp, 404, "PORTFOLIO_NOT_FOUND")
    assert_error(
        await world.client.get(f"/api/v1/portfolio/upload/{world.values['upload']}/status", headers=owner),
        404,
        "UPLOAD_NOT_FOUND",
    )
    after = await demo_books(world.client, world.system)
    difference = first_difference(world.before, after)
    assert difference is None, f"the demo books changed: {difference}"
