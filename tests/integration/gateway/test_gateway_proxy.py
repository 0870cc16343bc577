"""Distributed mode: the edge proxies over HTTP (pooled aiohttp) to services listening on ports."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from tests.integration.gateway.conftest import ENGINES, JWT_SECRET, StubState, make_settings, stub_service

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.testing import wait_until
from gateway.main import create_service

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proxy:
    client: httpx.AsyncClient
    service: Any
    state: StubState

    def auth(self, user_id: uuid.UUID | None = None, role: str = "user") -> dict[str, str]:
        return bearer(user_id, role)


def bearer(user_id: uuid.UUID | None = None, role: str = "user") -> dict[str, str]:
    principal = Principal(user_id=user_id or uuid.uuid4(), email="p@example.com", role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {issue_access_token(principal, JWT_SECRET, 3600)}"}


@pytest.fixture
async def proxy(gateway_db: Database, seeded, tmp_path) -> AsyncIterator[Proxy]:  # type: ignore[no-untyped-def]
    """ingest served by uvicorn on a real port; every other service's port is closed."""
    state = StubState()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stub_service("ingest", state), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started, timeout=10)
    urls = {f"{name}_url": f"http://127.0.0.1:{free_port()}" for name in ENGINES}
    urls["ingest_url"] = f"http://127.0.0.1:{port}"
    settings = make_settings(seeded.database_url, tmp_path, **urls)
    service = create_service(settings, gateway_db, InProcessBus(), upstreams=None)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app, client=("127.0.0.1", 1)), base_url="http://gw"
    )
    try:
        yield Proxy(client, service, state)
    finally:
        await client.aclose()
        await service.app.state.edge.upstreams.close()
        server.should_exit = True
        await task
        sock.close()


async def test_proxied_call_carries_identity_and_request_id(proxy: Proxy) -> None:
    user_id = uuid.uuid4()
    response = await proxy.client.get(
        "/api/v1/portfolio", headers={**proxy.auth(user_id), "X-Request-ID": "proxied-1", "X-User-Role": "admin"}
    )
    assert response.status_code == 200, response.text
    seen = response.json()["data"]
    assert seen["service"] == "ingest"
    assert seen["user_id"] == str(user_id)  # the service re-verified the forwarded JWT
    assert seen["x_user_id"] == str(user_id)
    assert seen["x_user_role"] == "user"  # the client's X-User-Role was dropped
    assert seen["x_request_id"] == "proxied-1"
    assert response.headers.get_list("x-request-id") == ["proxied-1"]
    assert response.headers["x-ratelimit-limit"] == "100"


async def test_proxied_post_streams_the_body_and_keeps_one_session(proxy: Proxy) -> None:
    headers = proxy.auth()
    first = await proxy.client.post("/api/v1/tags", json={"name": "Pair"}, headers=headers)
    assert first.status_code == 201
    assert first.json()["data"]["tag"] == {"name": "Pair"}
    session = proxy.service.app.state.edge.upstreams.session()
    files = {"file": ("book.csv", b"symbol,quantity\n" + b"MSFT,10\n" * 1000, "text/csv")}
    upload = await proxy.client.post("/api/v1/portfolio/upload", files=files, headers=headers)
    assert upload.status_code == 202
    assert upload.json()["data"]["received"] > 8000
    assert proxy.service.app.state.edge.upstreams.session() is session


async def test_route_templates_come_from_the_services_openapi(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    doc = (await proxy.client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/positions/{id}" in doc["paths"]
    assert doc["info"]["x-unavailable-services"] == ["factors", "greeks", "marketdata", "stress"]
    caplog.set_level(logging.INFO, logger="gateway.access")
    await proxy.client.get(f"/api/v1/positions/{uuid.uuid4()}", headers=proxy.auth())
    record = [r for r in caplog.records if r.name == "gateway.access"][-1]
    assert record.route == "/api/v1/positions/{id}"  # type: ignore[attr-defined]


async def test_service_down_is_503_in_the_error_envelope(proxy: Proxy) -> None:
    response = await proxy.client.get("/api/v1/portfolio/exposures", headers=proxy.auth())
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["retryable"] is True
    assert response.headers["retry-after"] == "5"
    assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]


async def test_health_over_http_reports_each_service(proxy: Proxy) -> None:
    response = await proxy.client.get("/health")
    assert response.status_code == 503
    services = response.json()["checks"]["services"]
    assert services["ingest"] == "ok"
    assert services["stress"] == "error"


async def gateway_to(url: str, db: Database, settings_dir, seeded, **overrides: Any) -> tuple[httpx.AsyncClient, Any]:  # type: ignore[no-untyped-def]
    urls = {f"{name}_url": url for name in ENGINES}
    settings = make_settings(seeded.database_url, settings_dir, **urls, **overrides)
    service = create_service(settings, db, InProcessBus(), upstreams=None)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://gw")
    return client, service


async def test_slow_service_is_504_and_garbage_is_502(gateway_db: Database, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(5)  # never answers in time
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"this is not HTTP at all\r\n\r\n")
        await writer.drain()
        writer.close()

    slow_server = await asyncio.start_server(silent, "127.0.0.1", 0)
    bad_server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    slow_port = slow_server.sockets[0].getsockname()[1]
    bad_port = bad_server.sockets[0].getsockname()[1]
    headers = bearer()
    slow_client, slow_service = await gateway_to(
        f"http://127.0.0.1:{slow_port}", gateway_db, tmp_path, seeded, upstream_timeout_seconds=0.5
    )
    bad_client, bad_service = await gateway_to(f"http://127.0.0.1:{bad_port}", gateway_db, tmp_path, seeded)
    try:
        timeout = await slow_client.get("/api/v1/portfolio", headers=headers)
        assert timeout.status_code == 504
        assert timeout.json()["error"]["code"] == "UPSTREAM_TIMEOUT"
        assert timeout.json()["error"]["retryable"] is True
        broken = await bad_client.get("/api/v1/portfolio", headers=headers)
        assert broken.status_code == 502
        assert broken.json()["error"]["code"] == "UPSTREAM_ERROR"
    finally:
        for client, service in ((slow_client, slow_service), (bad_client, bad_service)):
            await client.aclose()
            await service.app.state.edge.upstreams.close()
        slow_server.close()
        bad_server.close()


async def test_streamed_oversized_body_is_413_in_proxy_mode(proxy: Proxy) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"z" * (512 * 1024)

    response = await proxy.client.post(
        "/api/v1/tags", content=chunks(), headers={**proxy.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    ok = await proxy.client.post("/api/v1/tags", json={"name": "after"}, headers=proxy.auth())
    assert ok.status_code == 201
