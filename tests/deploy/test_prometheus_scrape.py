"""A real Prometheus (scrape interval 1 s, storage in a temporary directory) scrapes the six services
running in distributed mode (tests/e2e/cluster.py): every target is `up`, the alert rules load and
evaluate without error, and every metric they use exists."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from tests.conftest import drop_database, make_migrated_database, worker_suffix
from tests.deploy.deploy_support import ALERTS_FILE, SERVICES, require_tool
from tests.e2e.cluster import Cluster, free_port, make_cluster
from tests.e2e.conftest import E2E_ENV, FIXTURE_AS_OF

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENGINES = [s for s in SERVICES if s != "gateway"]
# The series the alert rules read (gateway request series exist after the first request), plus the
# label-less api.md §6 series that exist from the start.
REQUIRED = {
    "up",
    "sigmasight_gateway_http_requests_total",
    "sigmasight_gateway_http_request_duration_seconds_bucket",
    "sigmasight_gateway_rate_limited_total",
    "sigmasight_marketdata_batch_run_last_success_timestamp_seconds",
    "sigmasight_marketdata_cycle_expected_as_of_timestamp_seconds",
    "sigmasight_marketdata_cycle_completed_as_of_timestamp_seconds",
    *(f"sigmasight_{s}_ready" for s in SERVICES),
    *(f"sigmasight_{s}_dlq_messages" for s in ENGINES),
    *(f"sigmasight_{s}_queue_messages" for s in ENGINES),
}


@pytest.fixture(scope="module")
async def cluster(pg_admin_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Six `sigmasight serve` processes on a freshly migrated database (no seed, no cycle: scraping
    needs neither)."""
    name = f"sigmasight_prom_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name)
    log_dir = tmp_path_factory.mktemp("cluster-logs")
    started = make_cluster(url, amqp_url, f"prom{uuid.uuid4().hex[:8]}", log_dir, E2E_ENV)
    try:
        for svc in started.ports:
            started.start(svc)
        await started.wait_ready()
        yield started
    finally:
        started.stop()
        await started.delete_queues()
        await drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
async def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Prometheus scraping the cluster every second; its base URL. Stopped at the end."""
    binary = require_tool("prometheus", "/usr/bin/prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS_FILE)],
        "scrape_configs": [
            {"job_name": svc, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for svc, port in cluster.ports.items()
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            started = await until(lambda: ready(client))
            assert started, (
                "Prometheus did not start:\n" + (work / "prometheus.log").read_text(errors="replace")[-2000:]
            )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


async def ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/-/ready")).status_code == 200
    except httpx.HTTPError:
        return False


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def test_prometheus_sees_every_service_up_and_every_alert_metric(prometheus: str, cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=10) as gateway:
        unauthenticated = await gateway.get("/api/v1/portfolio")
        assert unauthenticated.status_code == 401, unauthenticated.text
    async with httpx.AsyncClient(base_url=prometheus, timeout=5) as client:

        async def targets_up() -> bool:
            active = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            return sorted(t["labels"]["job"] for t in active if t["health"] == "up") == sorted(SERVICES)

        assert await until(targets_up), "not every SigmaSight target is up in Prometheus"

        missing = set(REQUIRED)

        async def names_present() -> bool:
            missing.difference_update((await client.get("/api/v1/label/__name__/values")).json()["data"])
            return not missing

        assert await until(names_present), f"missing series: {sorted(missing)}"

        async def rules_evaluated() -> bool:
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return len(rules) == 6 and all(r.get("lastEvaluation", "").startswith("20") for r in rules)

        assert await until(rules_evaluated), "alert rules were not evaluated"
        groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        assert [r["name"] for g in groups for r in g["rules"] if r["health"] != "ok"] == []

        ready = await client.get("/api/v1/query", params={"query": 'min({__name__=~"sigmasight_[a-z]+_ready"})'})
        assert ready.json()["data"]["result"][0]["value"][1] == "1"
        gauges = await client.get(
            "/api/v1/query",
            params={
                "query": "max(sigmasight_marketdata_cycle_expected_as_of_timestamp_seconds)"
                " - max(sigmasight_marketdata_cycle_completed_as_of_timestamp_seconds)"
            },
        )
        # The fixture market's last session is expected; nothing has completed yet (0).
        expected = datetime(FIXTURE_AS_OF.year, FIXTURE_AS_OF.month, FIXTURE_AS_OF.day, tzinfo=UTC).timestamp()
        assert float(gauges.json()["data"]["result"][0]["value"][1]) == expected
