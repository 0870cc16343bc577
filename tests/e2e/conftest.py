"""End-to-end fixtures: the whole system in all-in-one mode on a fresh migrated database."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from allinone.compose import AllInOne, build_allinone, seed_all

JWT_SECRET = "e2e-test-secret-0123456789abcdef0123456789"
ADMIN_PASSWORD = "e2e-admin-password-123"
FIXTURE_AS_OF = date(2026, 11, 24)
DEMO_EMAILS = {
    "individual": "demo_individual@sigmasight.com",
    "hnw": "demo_hnw@sigmasight.com",
    "hedgefund": "demo_hedgefundstyle@sigmasight.com",
}
ADMIN_EMAIL = "demo_admin@sigmasight.com"
TERMINAL = {"completed", "partial", "failed", "cancelled"}

# What every test of the system needs in the environment (read by each service's Settings).
E2E_ENV = {
    "JWT_SECRET": JWT_SECRET,
    "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "MARKETDATA_PROVIDER": "fixture",
    "MARKETDATA_FIXTURE_END_DATE": FIXTURE_AS_OF.isoformat(),
    "MARKETDATA_SCHEDULER_ENABLED": "false",
}


@dataclass
class System:
    """A running system and helpers to talk to it as a client would."""

    inner: AllInOne
    url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.inner.app), base_url="http://e2e", timeout=60)

    async def token(self, email: str, password: str = "demo12345") -> str:
        async with self.client() as c:
            resp = await c.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["data"]["access_token"])

    async def admin_token(self) -> str:
        return await self.token(ADMIN_EMAIL, ADMIN_PASSWORD)


async def run_cycle_via_api(
    client: httpx.AsyncClient, admin_token: str, body: dict[str, Any], timeout: float = 180
) -> dict:
    """POST run-all as admin and poll the job until it is terminal; returns the job."""
    import asyncio

    headers = {"Authorization": f"Bearer {admin_token}"}
    resp = await client.post("/api/v1/admin/batch/run-all", json=body, headers=headers)
    assert resp.status_code in (200, 202), resp.text
    job_url = resp.json()["data"]["status_url"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = (await client.get(job_url, headers=headers)).json()["data"]
        if job["status"] in TERMINAL:
            return job
        assert loop.time() < deadline, f"run did not finish: {job}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
async def system(pg_admin_url: str) -> AsyncIterator[System]:
    """All-in-one system, seeded, with a short history back-fill and one completed daily cycle."""
    from marketdata.backfill import backfill

    saved = {k: os.environ.get(k) for k in [*E2E_ENV, "SIGMASIGHT_DATA_DIR"]}
    data_dir = tempfile.mkdtemp(prefix="sigmasight-e2e-")
    os.environ.update(E2E_ENV | {"SIGMASIGHT_DATA_DIR": data_dir})
    name = f"sigmasight_e2e_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name)
    inner = build_allinone(url)
    await seed_all(inner.db, url)
    await inner.start()
    sys_ = System(inner, url)
    try:
        await backfill(inner.engines["marketdata"].app.state.ctx, days=3, end=FIXTURE_AS_OF)
        async with sys_.client() as c:
            job = await run_cycle_via_api(c, await sys_.admin_token(), {"as_of_date": FIXTURE_AS_OF.isoformat()})
        assert job["status"] == "completed", job
        yield sys_
    finally:
        await inner.stop()
        await drop_database(pg_admin_url, name)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
