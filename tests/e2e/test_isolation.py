"""Another user's ids → 404 `<RESOURCE>_NOT_FOUND`, answered exactly like ids that never existed (api.md §2.6).

demo_individual calls every route that takes an id (in the path, or `portfolio_id` in the query or
body) with demo_hedgefundstyle's ids: portfolios (the seeded book and an uploaded one still in
onboarding), positions, tags, an upload and jobs. Each answer must be the 404 of the right resource,
identical in status and code to the answer for a random id (no existence leak), and nothing may
change: the owner re-reads what was aimed at afterwards. `CASES` must cover every such route of the
merged OpenAPI document; admin-only routes that take ids answer 403 to any user before any lookup.

Shared state: the objects made here are removed by the admin demo reset at the end of the module,
after which the demo books must be exactly as they were before the module ran.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ADMIN_EMAIL, DEMO_EMAILS, System
from tests.e2e.surface_support import (
    AS_OF,
    assert_error,
    bearer,
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

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
SHORT_HISTORY_SYMBOL = "ZZISOL"
# Path parameters that are not user-owned ids (market data is shared by everyone).
SHARED_PATH_PARAMS = {"symbol"}
# Routes that take ids but only admins may call (admins read any portfolio by design, api.md §2.2):
# a user gets 403 FORBIDDEN before any lookup, checked by test_admin_routes_with_ids_refuse_users_before_lookup.
ADMIN_ONLY = {
    ("POST", "/api/v1/admin/batch/run-all"),
    ("POST", "/api/v1/admin/batch/market-data"),
    ("POST", "/api/v1/admin/batch/aggregations"),
    ("POST", "/api/v1/admin/batch/greeks"),
    ("POST", "/api/v1/admin/batch/snapshots"),
    ("POST", "/api/v1/admin/batch/factors"),
    ("POST", "/api/v1/admin/batch/risk-scenarios"),
    ("POST", "/api/v1/admin/batch/stress-tests"),
    ("POST", "/api/v1/admin/batch/correlations"),
    ("GET", "/api/v1/admin/batch/status"),
    ("GET", "/api/v1/admin/batch/history"),
}


@dataclass
class IsoWorld:
    system: System
    client: httpx.AsyncClient
    owner: dict[str, str]
    other: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, str]
    doc: dict[str, Any]
    owner_book: dict[str, Any]  # the owner's view after setup; must not change

    async def as_other(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, url, headers={**self.other, **kw.pop("headers", {})}, **kw)

    async def as_owner(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, url, headers={**self.owner, **kw.pop("headers", {})}, **kw)


@pytest.fixture(scope="module")
async def iso(system: System) -> AsyncIterator[IsoWorld]:
    async with roomy_rate_limit(system), system.client() as client:
        owner = bearer(await token(system, DEMO_EMAILS["hedgefund"]))
        other = bearer(await token(system, DEMO_EMAILS["individual"]))
        admin = bearer(await token(system, ADMIN_EMAIL))
        pristine = await demo_books(client, system)
        try:
            doc = (await client.get("/api/v1/openapi.json")).json()
            ids: dict[str, str] = {}

            me = (await client.get("/api/v1/auth/me", headers=owner)).json()["data"]
            ids["portfolio"] = next(p["id"] for p in me["portfolios"] if p["is_default"])
            positions = (await client.get("/api/v1/positions?limit=100", headers=owner)).json()["data"]
            ids["position"] = next(p["id"] for p in positions if p["symbol"] == "AAPL")
            tags = (await client.get("/api/v1/tags", headers=owner)).json()["data"]
            ids["tag"] = next(t["id"] for t in tags if t["name"] == "Long Momentum")

            await import_prices(client, admin, f"symbol,date,close\n{SHORT_HISTORY_SYMBOL},{AS_OF},8.00\n".encode())
            accepted, status = await upload(
                client,
                owner,
                positions_csv([("AAPL", "4", "150.00", "2026-01-05"), (SHORT_HISTORY_SYMBOL, "50", "8.00", AS_OF)]),
                portfolio_name=unique("isolation onboarding"),
            )
            ids["onboarding"], ids["upload"], ids["upload_job"] = (
                status["portfolio_id"],
                status["upload_id"],
                accepted["job_id"],
            )
            resp = await client.post(
                "/api/v1/risk/greeks/calculate", headers=owner, json={"portfolio_id": ids["onboarding"]}
            )
            assert resp.status_code == 202, resp.text
            ids["greeks_job"] = resp.json()["data"]["job_id"]
            assert (await wait_job(client, owner, resp.json()["data"]["status_url"]))["status"] == "completed"

            ids["notification"] = await rejected_upload_notification(client, owner)

            other_positions = (await client.get("/api/v1/positions?limit=100", headers=other)).json()["data"]
            ids["other_position"] = other_positions[0]["id"]
            ids["other_tag"] = (await create_tag(client, other, unique("isolation")))["id"]

            world = IsoWorld(system, client, owner, other, admin, ids, doc, await owner_view(client, owner, ids))
            yield world
        finally:
            await demo_reset_and_settle(system, client)
        difference = first_difference(pristine, await demo_books(client, system))
        assert difference is None, f"the demo books changed: {difference}"


async def rejected_upload_notification(client: httpx.AsyncClient, owner: dict[str, str]) -> str:
    """The owner uploads a file that is rejected: the `onboarding_failed` notification's id."""
    resp = await client.post(
        "/api/v1/portfolio/upload",
        headers={**owner, "Prefer": "wait=10"},
        files={"file": ("zero.csv", positions_csv([("AAPL", "0", "150.00", "2026-01-05")]), "text/csv")},
    )
    assert resp.status_code == 200 and resp.json()["data"]["status"] == "rejected", resp.text
    upload_id = resp.json()["data"]["upload_id"]
    listed = (await client.get("/api/v1/notifications", headers=owner)).json()["data"]
    return str(next(n["id"] for n in listed if n["details"].get("upload_id") == upload_id))


async def owner_view(client: httpx.AsyncClient, owner: dict[str, str], ids: dict[str, str]) -> dict[str, Any]:
    """Everything of the owner's that the foreign calls aim at, as the owner reads it."""
    out: dict[str, Any] = {}
    for name, url in (
        ("portfolio", f"/api/v1/portfolio?portfolio_id={ids['portfolio']}"),
        ("positions", f"/api/v1/positions?portfolio_id={ids['portfolio']}&limit=1000&include_closed=true"),
        ("position", f"/api/v1/positions/{ids['position']}"),
        ("tags", "/api/v1/tags?limit=500"),
        ("preview", f"/api/v1/portfolio/onboarding/{ids['onboarding']}/preview"),
        ("upload", f"/api/v1/portfolio/upload/{ids['upload']}/status"),
        ("upload_results", f"/api/v1/portfolio/upload/{ids['upload']}/results"),
        ("upload_job", f"/api/v1/jobs/{ids['upload_job']}"),
        ("greeks_job", f"/api/v1/jobs/{ids['greeks_job']}"),
        ("greeks", f"/api/v1/risk/greeks?portfolio_id={ids['portfolio']}"),
        ("factors", f"/api/v1/factors/exposures/{ids['portfolio']}"),
        ("factor_positions", f"/api/v1/factors/exposures/{ids['portfolio']}/positions?limit=1000"),
        ("risk_metrics", f"/api/v1/risk/metrics?portfolio_id={ids['portfolio']}"),
        ("stress", f"/api/v1/risk/stress-testing/results/{ids['portfolio']}"),
        ("correlations", f"/api/v1/risk/correlations/positions/metrics?portfolio_id={ids['portfolio']}"),
        ("notifications", "/api/v1/notifications?limit=500"),
    ):
        resp = await client.get(url, headers=owner)
        assert resp.status_code == 200, f"{url}: {resp.text[:300]}"
        body = resp.json()
        out[name] = _stable({"data": body["data"], "page": body.get("page")})
    return out


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("valued_at", "checked_at", "updated_at")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def assert_unchanged(w: IsoWorld) -> None:
    difference = first_difference(w.owner_book, await owner_view(w.client, w.owner, w.ids))
    assert difference is None, f"a foreign call changed the owner's data: {difference}"


async def hidden(
    w: IsoWorld,
    method: str,
    template: str,
    code: str,
    *,
    owner_status: int | None = 200,
    files: dict[str, Any] | None = None,
    **kw: Any,
) -> httpx.Response:
    """The foreign call answers 404 `code`, exactly like the same call with ids that never existed.

    `template` and the strings of `json` / `data` / `params` / `headers` use `{key}` placeholders of
    the owner's ids. With `owner_status`, the owner's identical call must answer it (the ids are real).
    """
    never_ids = {k: (f"{v[:4]}{uuid.uuid4()}" if k.endswith("_job") else str(uuid.uuid4())) for k, v in w.ids.items()}
    resp = await w.as_other(method, template.format(**w.ids), files=files, **_fill(kw, w.ids))
    error = assert_error(resp, 404, code)
    never = await w.as_other(method, template.format(**never_ids), files=files, **_fill(kw, never_ids))
    never_error = assert_error(never, 404, code)
    assert error["message"] == never_error["message"], (error, never_error)
    if owner_status is not None:
        mine = await w.as_owner(method, template.format(**w.ids), files=files, **_fill(kw, w.ids))
        assert mine.status_code == owner_status, f"the owner's own call: {mine.status_code} {mine.text[:300]}"
    return resp


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------- cases

Case = Callable[[IsoWorld], Awaitable[None]]
CASES: dict[tuple[str, str], Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[(method, path)] = fn
        return fn

    return register


def portfolio_read(path: str) -> Case:
    async def check(w: IsoWorld) -> None:
        await hidden(w, "GET", path + "?portfolio_id={portfolio}", "PORTFOLIO_NOT_FOUND")
        await assert_unchanged(w)

    return check


for _path in (
    "/api/v1/portfolio",
    "/api/v1/portfolio/exposures",
    "/api/v1/portfolio/performance",
    "/api/v1/positions",
    "/api/v1/positions/grouped",
    "/api/v1/strategies",
    "/api/v1/tags",
    "/api/v1/risk/greeks",
    "/api/v1/risk/factors",
    "/api/v1/risk/factors/positions",
    "/api/v1/risk/metrics",
    "/api/v1/risk/correlations/positions/metrics",
    "/api/v1/risk/correlations/positions/matrix",
    "/api/v1/modeling/sessions",
):
    case("GET", _path)(portfolio_read(_path))


def portfolio_path_read(template: str) -> Case:
    async def check(w: IsoWorld) -> None:
        await hidden(w, "GET", template, "PORTFOLIO_NOT_FOUND")
        await assert_unchanged(w)

    return check


for _method, _path, _template in (
    ("GET", "/api/v1/factors/exposures/{portfolio_id}", "/api/v1/factors/exposures/{portfolio}"),
    (
        "GET",
        "/api/v1/factors/exposures/{portfolio_id}/positions",
        "/api/v1/factors/exposures/{portfolio}/positions?sort=-dollar_exposure",
    ),
    (
        "GET",
        "/api/v1/risk/stress-testing/results/{portfolio_id}",
        "/api/v1/risk/stress-testing/results/{portfolio}?category=market",
    ),
):
    case(_method, _path)(portfolio_path_read(_template))


# Jobs a foreign compute call might have started on the owner's portfolio (none may appear).
RISK_JOBS = (
    "SELECT (SELECT count(*) FROM factors.job WHERE scope->>'portfolio_id' = $1) "
    "+ (SELECT count(*) FROM stress.job WHERE scope->>'portfolio_id' = $1) AS n"
)


def risk_compute(path: str, bodies: tuple[dict[str, Any], ...], owner_status: int | None) -> Case:
    """A POST that computes for `portfolio_id` of the body: 404 for a foreign id, no job, nothing stored."""

    async def check(w: IsoWorld) -> None:
        db = w.system.inner.db
        jobs = (await db.fetchrow(RISK_JOBS, w.ids["portfolio"]))["n"]
        for body in bodies:
            await hidden(w, "POST", path, "PORTFOLIO_NOT_FOUND", json=body, owner_status=owner_status)
            await hidden(
                w,
                "POST",
                path,
                "PORTFOLIO_NOT_FOUND",
                json=body,
                headers={"Prefer": "wait=5"},
                owner_status=owner_status,
            )
        assert (await db.fetchrow(RISK_JOBS, w.ids["portfolio"]))["n"] == jobs
        await assert_unchanged(w)

    return check


_SHOCKS = {"name": "isolation", "shocks": {"market": -0.1}}
for _path, _bodies, _owner_status in (
    (
        "/api/v1/risk/stress-testing/direct-impact",
        (
            {"portfolio_id": "{portfolio}", "scenario_id": "market_down_10"},
            {"portfolio_id": "{portfolio}", "scenario": _SHOCKS},
        ),
        200,
    ),
    (
        "/api/v1/risk/stress-testing/correlated-impact",
        (
            {"portfolio_id": "{portfolio}", "scenario_id": "market_down_10"},
            {"portfolio_id": "{portfolio}", "scenario": _SHOCKS},
        ),
        200,
    ),
    (
        "/api/v1/risk/stress-testing/comprehensive",
        ({"portfolio_id": "{portfolio}"}, {"portfolio_id": "{portfolio}", "categories": ["market"]}),
        None,
    ),
    (
        "/api/v1/risk/correlations/positions/calculate",
        ({"portfolio_id": "{portfolio}"}, {"portfolio_id": "{portfolio}", "force_recalculate": True}),
        None,
    ),
    (
        "/api/v1/factors/calculate",
        ({"portfolio_id": "{portfolio}"}, {"portfolio_id": "{portfolio}", "force": True}),
        None,
    ),
):
    case("POST", _path)(risk_compute(_path, _bodies, _owner_status))


@case("GET", "/api/v1/positions/{id}")
async def _position(w: IsoWorld) -> None:
    await hidden(w, "GET", "/api/v1/positions/{position}", "POSITION_NOT_FOUND")
    await hidden(w, "GET", "/api/v1/positions/{position}?include=history", "POSITION_NOT_FOUND")


@case("PUT", "/api/v1/positions/{id}/tags")
async def _replace_tags(w: IsoWorld) -> None:
    body = {"tag_ids": [w.ids["other_tag"]]}
    await hidden(w, "PUT", "/api/v1/positions/{position}/tags", "POSITION_NOT_FOUND", json=body, owner_status=None)
    await hidden(
        w, "PUT", "/api/v1/positions/{position}/tags", "POSITION_NOT_FOUND", json={"tag_ids": []}, owner_status=None
    )
    # The owner's tag on the caller's own position is as unknown as a tag that never existed (422, no leak).
    own = f"/api/v1/positions/{w.ids['other_position']}/tags"
    foreign_tag = await w.as_other("PUT", own, json={"tag_ids": [w.ids["tag"]]})
    never = await w.as_other("PUT", own, json={"tag_ids": [str(uuid.uuid4())]})
    assert_error(foreign_tag, never.status_code, never.json()["error"]["code"])
    assert foreign_tag.status_code in (404, 422), foreign_tag.text
    await assert_unchanged(w)


@case("DELETE", "/api/v1/tags/{id}")
async def _delete_tag(w: IsoWorld) -> None:
    await hidden(w, "DELETE", "/api/v1/tags/{tag}", "TAG_NOT_FOUND", owner_status=None)
    await hidden(w, "DELETE", "/api/v1/tags/{tag}?force=true", "TAG_NOT_FOUND", owner_status=None)
    await assert_unchanged(w)


@case("POST", "/api/v1/tags/bulk-assign")
async def _bulk_assign(w: IsoWorld) -> None:
    other_position = w.ids["other_position"]
    before = (await w.as_other("GET", f"/api/v1/positions/{other_position}")).json()["data"]["tags"]
    for action in ("add", "remove"):
        await hidden(
            w,
            "POST",
            "/api/v1/tags/bulk-assign",
            "TAG_NOT_FOUND",
            json={"tag_ids": ["{tag}"], "position_ids": [other_position], "action": action},
            owner_status=None,
        )
        await hidden(
            w,
            "POST",
            "/api/v1/tags/bulk-assign",
            "POSITION_NOT_FOUND",
            json={"tag_ids": [w.ids["other_tag"]], "position_ids": ["{position}"], "action": action},
            owner_status=None,
        )
    after = (await w.as_other("GET", f"/api/v1/positions/{other_position}")).json()["data"]["tags"]
    assert after == before
    await assert_unchanged(w)


@case("POST", "/api/v1/risk/greeks/calculate")
async def _greeks_calculate(w: IsoWorld) -> None:
    db = w.system.inner.db
    count = "SELECT count(*) AS n FROM greeks.job WHERE scope->>'portfolio_id' = $1"
    jobs = (await db.fetchrow(count, w.ids["portfolio"]))["n"]
    await hidden(
        w,
        "POST",
        "/api/v1/risk/greeks/calculate",
        "PORTFOLIO_NOT_FOUND",
        json={"portfolio_id": "{portfolio}"},
        owner_status=None,
    )
    await hidden(
        w,
        "POST",
        "/api/v1/risk/greeks/calculate",
        "PORTFOLIO_NOT_FOUND",
        json={"portfolio_id": "{onboarding}", "as_of_date": AS_OF},
        headers={"Prefer": "wait=5"},
        owner_status=None,
    )
    assert (await db.fetchrow(count, w.ids["portfolio"]))["n"] == jobs
    await assert_unchanged(w)


@case("POST", "/api/v1/portfolio/upload")
async def _upload_into(w: IsoWorld) -> None:
    db = w.system.inner.db
    count = "SELECT count(*) AS n FROM ingest.upload WHERE portfolio_id = $1"
    uploads = (await db.fetchrow(count, uuid.UUID(w.ids["portfolio"])))["n"]
    csv = positions_csv([("AAPL", "1000000", "1.00", "2026-01-05")])
    for mode in ("append", "replace"):
        await hidden(
            w,
            "POST",
            "/api/v1/portfolio/upload",
            "PORTFOLIO_NOT_FOUND",
            files={"file": ("positions.csv", csv, "text/csv")},
            data={"portfolio_id": "{portfolio}", "mode": mode},
            owner_status=None,
        )
    assert (await db.fetchrow(count, uuid.UUID(w.ids["portfolio"])))["n"] == uploads
    await assert_unchanged(w)


@case("GET", "/api/v1/portfolio/upload/{upload_id}/status")
async def _upload_status(w: IsoWorld) -> None:
    await hidden(w, "GET", "/api/v1/portfolio/upload/{upload}/status", "UPLOAD_NOT_FOUND")


@case("GET", "/api/v1/portfolio/upload/{upload_id}/results")
async def _upload_results(w: IsoWorld) -> None:
    await hidden(w, "GET", "/api/v1/portfolio/upload/{upload}/results", "UPLOAD_NOT_FOUND")
    await hidden(w, "GET", "/api/v1/portfolio/upload/{upload}/results?severity=error", "UPLOAD_NOT_FOUND")


@case("GET", "/api/v1/portfolio/onboarding/{portfolio_id}/preview")
async def _preview(w: IsoWorld) -> None:
    await hidden(w, "GET", "/api/v1/portfolio/onboarding/{onboarding}/preview", "PORTFOLIO_NOT_FOUND")
    # The owner's active book: still 404 (a 409 "not in onboarding" would leak that it exists).
    await hidden(w, "GET", "/api/v1/portfolio/onboarding/{portfolio}/preview", "PORTFOLIO_NOT_FOUND", owner_status=409)


@case("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/validate")
async def _validate(w: IsoWorld) -> None:
    await hidden(w, "POST", "/api/v1/portfolio/onboarding/{onboarding}/validate", "PORTFOLIO_NOT_FOUND")
    await hidden(
        w, "POST", "/api/v1/portfolio/onboarding/{portfolio}/validate", "PORTFOLIO_NOT_FOUND", owner_status=409
    )


@case("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/complete")
async def _complete(w: IsoWorld) -> None:
    await hidden(
        w, "POST", "/api/v1/portfolio/onboarding/{onboarding}/complete", "PORTFOLIO_NOT_FOUND", owner_status=None
    )
    await hidden(
        w, "POST", "/api/v1/portfolio/onboarding/{portfolio}/complete", "PORTFOLIO_NOT_FOUND", owner_status=None
    )
    await assert_unchanged(w)


@case("POST", "/api/v1/portfolio/onboarding/{portfolio_id}/retry")
async def _retry(w: IsoWorld) -> None:
    for body in ({}, {"steps": ["price_history"]}):
        await hidden(
            w,
            "POST",
            "/api/v1/portfolio/onboarding/{onboarding}/retry",
            "PORTFOLIO_NOT_FOUND",
            json=body,
            owner_status=None,
        )
    await hidden(
        w, "POST", "/api/v1/portfolio/onboarding/{portfolio}/retry", "PORTFOLIO_NOT_FOUND", json={}, owner_status=None
    )
    await assert_unchanged(w)


@case("POST", "/api/v1/notifications/{id}/read")
async def _read_notification(w: IsoWorld) -> None:
    await hidden(w, "POST", "/api/v1/notifications/{notification}/read", "NOTIFICATION_NOT_FOUND", owner_status=None)
    await assert_unchanged(w)


async def owner_session(w: IsoWorld) -> str:
    """The owner's ProForma session (one trade, calculated), made once; its id is added to `w.ids`."""
    if "session" not in w.ids:
        resp = await w.as_owner("POST", "/api/v1/modeling/sessions", json={"name": unique("isolation")})
        assert resp.status_code == 201, resp.text
        sid = resp.json()["data"]["session_id"]
        trade = {"ticker": "SPY", "side": "buy", "quantity": 5}
        resp = await w.as_owner("POST", f"/api/v1/modeling/sessions/{sid}/trades", json=trade)
        assert resp.status_code == 201, resp.text
        w.ids["trade"] = resp.json()["data"]["trades"][0]["trade_id"]
        resp = await w.as_owner("POST", f"/api/v1/modeling/sessions/{sid}/calculate", headers={"Prefer": "wait=10"})
        assert resp.status_code == 200, resp.text
        w.ids["session"] = sid
    return w.ids["session"]


async def session_view(w: IsoWorld) -> dict[str, Any]:
    """What the owner's session holds (read without counting as activity)."""
    resp = await w.as_owner("GET", f"/api/v1/modeling/sessions/{await owner_session(w)}/impacts")
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    return {k: data[k] for k in ("trade_version", "current_trade_version", "impacts_status", "after")}


def session_route(method: str, template: str, *, owner_status: int | None, **kw: Any) -> Case:
    """A foreign call on the owner's session answers 404 SESSION_NOT_FOUND and changes nothing."""

    async def check(w: IsoWorld) -> None:
        before = await session_view(w)
        await hidden(w, method, template, "SESSION_NOT_FOUND", owner_status=owner_status, **kw)
        assert await session_view(w) == before
        await assert_unchanged(w)

    return check


_SESSION = "/api/v1/modeling/sessions/{session}"
for _method, _path, _template, _owner_status, _kw in (
    ("GET", "/api/v1/modeling/sessions/{session_id}", _SESSION + "?include=positions", 200, {}),
    ("GET", "/api/v1/modeling/sessions/{session_id}/impacts", _SESSION + "/impacts", 200, {}),
    (
        "POST",
        "/api/v1/modeling/sessions/{session_id}/trades",
        _SESSION + "/trades",
        None,
        {"json": {"ticker": "QQQ", "side": "short", "quantity": 1}},
    ),
    ("DELETE", "/api/v1/modeling/sessions/{session_id}/trades/{trade_id}", _SESSION + "/trades/{trade}", None, {}),
    ("POST", "/api/v1/modeling/sessions/{session_id}/calculate", _SESSION + "/calculate", None, {}),
    ("POST", "/api/v1/modeling/sessions/{session_id}/save", _SESSION + "/save", None, {"json": {"name": "mine now"}}),
    ("DELETE", "/api/v1/modeling/sessions/{session_id}", _SESSION, None, {}),
    (
        "POST",
        "/api/v1/modeling/sessions/{session_id}/suggestions",
        _SESSION + "/suggestions",
        None,
        {"json": {"goal": "neutralize_beta"}},
    ),
):
    case(_method, _path)(session_route(_method, _template, owner_status=_owner_status, **_kw))


@case("POST", "/api/v1/modeling/sessions")
async def _start_session(w: IsoWorld) -> None:
    count = "SELECT count(*) AS n FROM ingest.api_modeling_session WHERE portfolio_id = $1"
    sessions = (await w.system.inner.db.fetchrow(count, uuid.UUID(w.ids["portfolio"])))["n"]
    body = {"portfolio_id": "{portfolio}", "name": "not yours"}
    await hidden(w, "POST", "/api/v1/modeling/sessions", "PORTFOLIO_NOT_FOUND", json=body, owner_status=None)
    assert (await w.system.inner.db.fetchrow(count, uuid.UUID(w.ids["portfolio"])))["n"] == sessions
    await assert_unchanged(w)


@case("GET", "/api/v1/jobs/{job_id}")
async def _job(w: IsoWorld) -> None:
    await hidden(w, "GET", "/api/v1/jobs/{upload_job}", "JOB_NOT_FOUND")
    await hidden(w, "GET", "/api/v1/jobs/{greeks_job}", "JOB_NOT_FOUND")


# -------- reports and exports (stress, api.md #66-#71, #75)

for _path in ("/api/v1/reports", "/api/v1/export/history"):
    case("GET", _path)(portfolio_read(_path))


async def owner_report(w: IsoWorld) -> str:
    """The owner's completed Markdown report, made once; its id is added to `w.ids`."""
    if "report" not in w.ids:
        resp = await w.as_owner(
            "POST", "/api/v1/reports/generate", json={"formats": ["md"]}, headers={"Prefer": "wait=10"}
        )
        assert resp.status_code == 200 and resp.json()["data"]["status"] == "completed", resp.text
        w.ids["report"] = resp.json()["data"]["report_id"]
    return w.ids["report"]


def report_route(template: str) -> Case:
    async def check(w: IsoWorld) -> None:
        await owner_report(w)
        await hidden(w, "GET", template, "REPORT_NOT_FOUND")
        await assert_unchanged(w)

    return check


case("GET", "/api/v1/reports/{report_id}/status")(report_route("/api/v1/reports/{report}/status"))
case("GET", "/api/v1/reports/{report_id}/download")(report_route("/api/v1/reports/{report}/download?format=md"))

REPORTS_OF = "SELECT count(*) AS n FROM stress.report WHERE portfolio_id = $1"


@case("POST", "/api/v1/reports/generate")
async def _generate_report(w: IsoWorld) -> None:
    db, pid = w.system.inner.db, uuid.UUID(w.ids["portfolio"])
    reports = (await db.fetchrow(REPORTS_OF, pid))["n"]
    for body in ({"portfolio_id": "{portfolio}"}, {"portfolio_id": "{portfolio}", "formats": ["json"]}):
        await hidden(w, "POST", "/api/v1/reports/generate", "PORTFOLIO_NOT_FOUND", json=body, owner_status=None)
    assert (await db.fetchrow(REPORTS_OF, pid))["n"] == reports
    await assert_unchanged(w)


@case("POST", "/api/v1/export/trades")
async def _export_session(w: IsoWorld) -> None:
    await owner_session(w)
    exports = "SELECT count(*) AS n FROM stress.export WHERE session_id = $1"
    before = (await w.system.inner.db.fetchrow(exports, uuid.UUID(w.ids["session"])))["n"]
    body = {"session_id": "{session}", "format": "csv"}
    await hidden(w, "POST", "/api/v1/export/trades", "SESSION_NOT_FOUND", json=body, owner_status=201)
    assert (await w.system.inner.db.fetchrow(exports, uuid.UUID(w.ids["session"])))["n"] == before + 1  # the owner's
    await assert_unchanged(w)


@case("GET", "/api/v1/export/{export_id}/download")
async def _export_download(w: IsoWorld) -> None:
    if "export" not in w.ids:
        body = {"trades": [{"side": "BUY", "symbol": "AAPL", "quantity": 1}], "format": "json"}
        resp = await w.as_owner("POST", "/api/v1/export/trades", json=body)
        assert resp.status_code == 201, resp.text
        w.ids["export"] = resp.json()["data"]["export_id"]
    await hidden(w, "GET", "/api/v1/export/{export}/download", "EXPORT_NOT_FOUND")
    await assert_unchanged(w)


# --------------------------------------------------------------------------------------- tests


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def takes_an_id(doc: dict[str, Any], operation: dict[str, Any]) -> bool:
    """Path id, `portfolio_id` query parameter, or `portfolio_id(s)` body field."""
    for param in operation.get("parameters", []):
        if param["in"] == "path" and param["name"] not in SHARED_PATH_PARAMS:
            return True
        if param["in"] == "query" and param["name"] == "portfolio_id":
            return True
    for media in (operation.get("requestBody") or {}).get("content", {}).values():
        schema = _resolve(doc, media.get("schema", {}))
        variants = [_resolve(doc, s) for s in schema.get("anyOf", [])] or [schema]
        if any({"portfolio_id", "portfolio_ids"} & set(v.get("properties", {})) for v in variants):
            return True
    return False


async def test_cases_cover_every_route_that_takes_an_owned_id(iso: IsoWorld) -> None:
    ops = {
        (method.upper(), path): op
        for path, item in iso.doc["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }
    with_ids = {key for key, op in ops.items() if takes_an_id(iso.doc, op)}
    missing = sorted(with_ids - set(CASES) - ADMIN_ONLY)
    assert not missing, f"routes taking ids that no isolation case covers: {missing}"
    assert set(CASES) <= set(ops), sorted(set(CASES) - set(ops))
    assert with_ids >= ADMIN_ONLY, sorted(ADMIN_ONLY - with_ids)


@pytest.mark.parametrize("key", list(CASES), ids=lambda k: f"{k[0]} {k[1]}")
async def test_another_users_id_answers_not_found_and_changes_nothing(iso: IsoWorld, key: tuple[str, str]) -> None:
    await CASES[key](iso)


@pytest.mark.parametrize("key", sorted(ADMIN_ONLY), ids=lambda k: f"{k[0]} {k[1]}")
async def test_admin_routes_with_ids_refuse_users_before_lookup(iso: IsoWorld, key: tuple[str, str]) -> None:
    method, path = key
    runs = await iso.system.inner.db.fetchrow("SELECT count(*) AS n FROM marketdata.api_batch_run")
    if method == "GET":
        resp = await iso.as_other("GET", path, params={"portfolio_id": iso.ids["portfolio"]})
    else:
        resp = await iso.as_other("POST", path, json={"portfolio_ids": [iso.ids["portfolio"]]})
    assert_error(resp, 403, "FORBIDDEN")
    assert (await iso.system.inner.db.fetchrow("SELECT count(*) AS n FROM marketdata.api_batch_run"))["n"] == runs["n"]


async def test_the_owner_still_sees_everything_exactly_as_before(iso: IsoWorld) -> None:
    await assert_unchanged(iso)
    tags = (await iso.as_owner("GET", "/api/v1/tags?limit=500")).json()["data"]
    assert iso.ids["tag"] in {t["id"] for t in tags}
    preview = (await iso.as_owner("GET", f"/api/v1/portfolio/onboarding/{iso.ids['onboarding']}/preview")).json()
    assert preview["data"]["status"] == "onboarding"
