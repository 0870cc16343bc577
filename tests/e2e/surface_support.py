"""Helpers shared by the API-surface, isolation and risk-route e2e tests (tests/e2e/test_api_surface.py,
test_isolation.py, test_risk_routes.py).

They talk to the running all-in-one system only through its HTTP API, except for two test-harness
needs: a roomier per-user rate limit while these modules run (restored afterwards), and reading
`marketdata.api_batch_run` to know when the runs a demo reset starts have settled.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ADMIN_EMAIL, DEMO_EMAILS, FIXTURE_AS_OF, TERMINAL, System

from gateway.ratelimit import SlidingWindowLimiter

AS_OF = FIXTURE_AS_OF.isoformat()
REQUEST_ID_RE = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
MONEY_RE = re.compile(r"^-?\d+\.\d{2}$")
UTC_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# Fields that change whenever a valuation or a read runs again; everything else of a demo book must not.
VOLATILE_FIELDS = frozenset(
    {"valued_at", "updated_at", "checked_at", "timestamp", "request_id", "last_login_at", "rate_limit"}
)

_TOKENS: dict[tuple[int, str], str] = {}


async def token(system: System, email: str) -> str:
    """An access token for `email`, logged in once per system (login is limited to 10 a minute per email)."""
    key = (id(system), email)
    if key not in _TOKENS:
        if email == ADMIN_EMAIL:
            _TOKENS[key] = await system.admin_token()
        else:
            _TOKENS[key] = await system.token(email)
    return _TOKENS[key]


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


@asynccontextmanager
async def roomy_rate_limit(system: System) -> AsyncIterator[None]:
    """Swap the gateway's per-user limiter (100 requests / 60 s) for a roomy one while a module runs.

    These modules send a few hundred requests per demo user within seconds; the rate limit is not
    what they test. The original limiter object (with its counts) is put back afterwards, so the
    tests that follow see exactly the limiter state they would have seen without these modules.
    """
    edge = system.inner.app.edge
    auth = system.inner.app.state.auth
    original = edge.limiter
    roomy = SlidingWindowLimiter(1_000_000, original.window)
    edge.limiter = roomy
    auth.user_limiter = roomy
    try:
        yield
    finally:
        edge.limiter = original
        auth.user_limiter = original


def assert_error(resp: httpx.Response, status: int, code: str | Iterable[str]) -> dict[str, Any]:
    """`resp` is the error envelope of api.md §2.5 with this status and code; returns the error object."""
    codes = {code} if isinstance(code, str) else set(code)
    assert resp.status_code == status, f"expected {status} {codes}, got {resp.status_code}: {resp.text[:600]}"
    body = resp.json()
    assert set(body) == {"error", "meta"}, body
    error = body["error"]
    assert set(error) >= {"code", "message", "details", "retryable", "hint"}, error
    assert error["code"] in codes, f"expected code in {codes}, got {error}"
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["retryable"], bool), error
    assert body["meta"]["request_id"], body["meta"]
    assert UTC_TIMESTAMP_RE.match(body["meta"]["timestamp"]), body["meta"]
    return dict(error)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


async def wait_job(client: httpx.AsyncClient, headers: dict[str, str], status_url: str, timeout: float = 60) -> dict:
    """Poll a job's status URL until it is terminal; returns the Job."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        resp = await client.get(status_url, headers=headers)
        assert resp.status_code == 200, resp.text
        job = resp.json()["data"]
        if job["status"] in TERMINAL:
            return dict(job)
        assert loop.time() < deadline, f"job did not finish in {timeout} s: {job}"
        await asyncio.sleep(0.1)


def positions_csv(rows: Iterable[tuple[str, str, str, str]]) -> bytes:
    """A minimal positions file (csv-format.md): ticker, signed quantity, entry price, entry date."""
    lines = ["ticker,quantity,entry_price,entry_date", *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], csv: bytes, **form: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST an upload (202), wait for its job; returns (JobAccepted body, upload status)."""
    resp = await client.post(
        "/api/v1/portfolio/upload", headers=headers, files={"file": ("positions.csv", csv, "text/csv")}, data=form
    )
    assert resp.status_code == 202, resp.text
    accepted = resp.json()["data"]
    job = await wait_job(client, headers, accepted["status_url"])
    assert job["status"] == "completed", job
    status = await client.get(f"/api/v1/portfolio/upload/{accepted['upload_id']}/status", headers=headers)
    assert status.status_code == 200, status.text
    data = status.json()["data"]
    assert data["status"] == "completed", data
    return dict(accepted), dict(data)


async def import_prices(client: httpx.AsyncClient, admin: dict[str, str], csv: bytes) -> dict[str, Any]:
    """Admin price import (#76) of a small CSV; returns the import summary."""
    resp = await client.post(
        "/api/v1/market-data/prices/import", headers=admin, files={"file": ("prices.csv", csv, "text/csv")}
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["data"])


async def complete_onboarding(client: httpx.AsyncClient, headers: dict[str, str], portfolio_id: str) -> None:
    """Finish onboarding of an uploaded portfolio and wait until it is active."""
    resp = await client.post(f"/api/v1/portfolio/onboarding/{portfolio_id}/complete", headers=headers)
    assert resp.status_code == 202, resp.text
    job = await wait_job(client, headers, resp.json()["data"]["status_url"])
    assert job["status"] == "completed", job


async def create_tag(client: httpx.AsyncClient, headers: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/tags", headers=headers, json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["data"])


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


async def demo_books(client: httpx.AsyncClient, system: System) -> dict[str, Any]:
    """What each demo user sees of their book: summary, positions with tags, tags, strategies, Greeks."""
    out: dict[str, Any] = {}
    for who, email in DEMO_EMAILS.items():
        headers = bearer(await token(system, email))
        book: dict[str, Any] = {}
        for name, url in (
            ("portfolio", "/api/v1/portfolio"),
            ("positions", "/api/v1/positions?limit=1000&include_closed=true"),
            ("tags", "/api/v1/tags?limit=500"),
            ("strategies", "/api/v1/strategies?limit=500"),
            ("greeks", "/api/v1/risk/greeks"),
            ("me", "/api/v1/auth/me"),
        ):
            resp = await client.get(url, headers=headers)
            assert resp.status_code == 200, f"{who} {url}: {resp.text[:300]}"
            body = resp.json()
            book[name] = _strip({"data": body["data"], "page": body.get("page")})
        out[who] = book
    return out


async def demo_reset_and_settle(system: System, client: httpx.AsyncClient, timeout: float = 120) -> dict[str, Any]:
    """POST /admin/demo/reset (202), wait for its job and for the recalculation runs it starts."""
    admin = bearer(await token(system, ADMIN_EMAIL))
    started = await system.inner.db.fetchrow("SELECT now() AS t")
    resp = await client.post("/api/v1/admin/demo/reset", headers=admin)
    assert resp.status_code == 202, resp.text
    accepted = resp.json()["data"]
    assert accepted["job_type"] == "demo.reset"
    job = await wait_job(client, admin, accepted["status_url"], timeout)
    assert job["status"] == "completed", job
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        runs = await system.inner.db.fetch(
            "SELECT status, portfolio_ids FROM marketdata.api_batch_run WHERE trigger = 'demo_reset' "
            "AND created_at >= $1",
            started["t"],
        )
        covered = {p for r in runs for p in (r["portfolio_ids"] or [])}
        if len(covered) >= len(DEMO_EMAILS) and all(r["status"] in TERMINAL for r in runs):
            assert all(r["status"] == "completed" for r in runs), [dict(r) for r in runs]
            return job
        assert loop.time() < deadline, f"demo reset runs did not settle: {[dict(r) for r in runs]}"
        await asyncio.sleep(0.1)


def first_difference(before: Any, after: Any, path: str = "") -> str | None:
    """Where two JSON values first differ (for readable assertion messages)."""
    if type(before) is not type(after):
        return f"{path}: {before!r} != {after!r}"
    if isinstance(before, dict):
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                return f"{path}.{key}: present only on one side"
            found = first_difference(before[key], after[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(before, list):
        if len(before) != len(after):
            return f"{path}: {len(before)} items != {len(after)} items"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            found = first_difference(b, a, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if before == after else f"{path}: {before!r} != {after!r}"


def assert_correlation_matrix(matrix: list[list[float | None]], size: int) -> None:
    """Square `size` × `size`, symmetric, 1.0 on the diagonal, every cell a correlation or null (no data)."""
    assert len(matrix) == size and all(len(row) == size for row in matrix), [len(r) for r in matrix]
    for i in range(size):
        assert matrix[i][i] == pytest.approx(1.0), (i, matrix[i][i])
        for j in range(size):
            cell = matrix[i][j]
            assert cell == matrix[j][i] or cell == pytest.approx(matrix[j][i]), (i, j)
            assert cell is None or -1.0 - 1e-9 <= cell <= 1.0 + 1e-9, (i, j, cell)
