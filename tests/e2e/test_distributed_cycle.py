"""Distributed mode: one process per service on PostgreSQL + RabbitMQ. The daily cycle runs end to end,
and a greeks process killed with SIGKILL mid-cycle loses nothing and duplicates nothing once restarted."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from tests.conftest import drop_database, make_migrated_database, worker_suffix
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, DEMO_EMAILS, E2E_ENV, FIXTURE_AS_OF, TERMINAL

from allinone.compose import seed_all
from common.db import Database

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

KILL_DATE = date(2026, 11, 23)  # a second trading day, so the kill test runs a fresh cycle


@pytest.fixture(scope="module")
async def cluster(pg_admin_url: str, amqp_url: str) -> AsyncIterator[tuple[Cluster, Database]]:
    name = f"sigmasight_dist_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name)
    db = Database(url, pool_size=2)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in E2E_ENV.items():
            mp.setenv(key, value)
        mp.setenv("SIGMASIGHT_DATA_DIR", tempfile.mkdtemp(prefix="sigmasight-dist-"))
        await seed_all(db, url)
    log_dir = Path(tempfile.mkdtemp(prefix="sigmasight-dist-logs-"))
    c = make_cluster(url, amqp_url, f"e2e{uuid.uuid4().hex[:8]}", log_dir, E2E_ENV)
    try:
        for svc in c.ports:
            c.start(svc)
        await c.wait_ready()
        yield c, db
    finally:
        c.stop()
        await c.delete_queues()
        await db.close()
        await drop_database(pg_admin_url, name)


async def _login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['data']['access_token']}"}


async def _trigger(client: httpx.AsyncClient, admin: dict[str, str], as_of: date) -> str:
    resp = await client.post("/api/v1/admin/batch/run-all", json={"as_of_date": as_of.isoformat()}, headers=admin)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["data"]["status_url"])


async def _wait(client: httpx.AsyncClient, admin: dict[str, str], status_url: str, timeout: float = 120) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = (await client.get(status_url, headers=admin)).json()["data"]
        if job["status"] in TERMINAL:
            return dict(job)
        assert loop.time() < deadline, f"run did not finish: {job}"
        await asyncio.sleep(0.25)


async def test_daily_cycle_runs_end_to_end_across_processes(cluster: tuple[Cluster, Database]) -> None:
    c, db = cluster
    async with httpx.AsyncClient(base_url=c.gateway_url, timeout=30) as client:
        admin = await _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        job = await _wait(client, admin, await _trigger(client, admin, FIXTURE_AS_OF))
        assert job["status"] == "completed", (job, c.tail("greeks"), c.tail("marketdata"))

        snapshots = await db.fetch(
            "SELECT p.id FROM ingest.api_portfolio p JOIN stress.api_snapshot s "
            "ON s.portfolio_id = p.id AND s.snapshot_date = $1 WHERE p.is_demo_seed",
            FIXTURE_AS_OF,
        )
        assert len(snapshots) == 3

        user = await _login(client, DEMO_EMAILS["hedgefund"], "demo12345")
        summary = (await client.get("/api/v1/portfolio", headers=user)).json()["data"]
        assert summary["market_value"]["gross"] == "5539700.00"
        assert summary["equity"] == "3501500.00"
        assert summary["notional"] == "35700700.00"
        assert summary["greeks"]["dollar_delta"] == summary["exposure"]["net"]

        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"]["broker"] == "ok"
        assert set(health.json()["checks"]["services"].values()) == {"ok"}


async def _counts(db: Database, as_of: date) -> dict[str, int]:
    row = await db.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM greeks.position_greek WHERE calculation_date = $1) AS greeks,
          (SELECT count(*) FROM ingest.position_valuation WHERE valuation_date = $1) AS valuations,
          (SELECT count(*) FROM stress.portfolio_snapshot WHERE snapshot_date = $1) AS snapshots,
          (SELECT count(*) FROM greeks.outbox o WHERE o.routing_key = 'greeks.computed'
             AND (convert_from(o.body, 'UTF8')::jsonb ->> 'as_of') = $1::text) AS greeks_events
        """,
        as_of,
    )
    assert row is not None
    return {k: int(v) for k, v in row.items()}


async def test_greeks_killed_mid_cycle_loses_and_duplicates_nothing(cluster: tuple[Cluster, Database]) -> None:
    c, db = cluster
    log_before = c.log_path("greeks").read_text(errors="replace").count("computing greeks for")
    async with httpx.AsyncClient(base_url=c.gateway_url, timeout=30) as client:
        admin = await _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        status_url = await _trigger(client, admin, KILL_DATE)

        # Kill greeks the moment it starts working on this cycle's prices.updated.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while c.log_path("greeks").read_text(errors="replace").count("computing greeks for") <= log_before:
            assert loop.time() < deadline, c.tail("greeks")
            await asyncio.sleep(0.005)
        c.kill("greeks")
        committed_at_kill = (await _counts(db, KILL_DATE))["greeks"]

        await asyncio.sleep(1.0)
        c.start("greeks")
        await c.wait_ready(["greeks"])
        job = await _wait(client, admin, status_url)
        assert job["status"] == "completed", (job, c.tail("greeks"))

    counts = await _counts(db, KILL_DATE)
    options = await db.fetchrow(
        "SELECT count(*) AS n FROM ingest.api_position p JOIN ingest.api_portfolio f ON f.id = p.portfolio_id "
        "WHERE f.is_demo_seed AND p.instrument_type = 'option' AND p.entry_date <= $1",
        KILL_DATE,
    )
    positions = await db.fetchrow(
        "SELECT count(*) AS n FROM ingest.api_position p JOIN ingest.api_portfolio f ON f.id = p.portfolio_id "
        "WHERE f.is_demo_seed AND p.entry_date <= $1",
        KILL_DATE,
    )
    assert counts["greeks"] == options["n"] == 8, (counts, committed_at_kill)
    assert counts["valuations"] == positions["n"] == 63
    assert counts["snapshots"] == 3
    # One greeks.computed per portfolio for this date: nothing was announced twice.
    assert counts["greeks_events"] == 3
    step_rows = await db.fetch(
        "SELECT job, portfolio_id, count(*) AS n FROM marketdata.batch_job_run r JOIN marketdata.batch_run b "
        "ON b.id = r.run_id WHERE b.as_of_date = $1 GROUP BY job, portfolio_id HAVING count(*) > 1",
        KILL_DATE,
    )
    assert step_rows == []
