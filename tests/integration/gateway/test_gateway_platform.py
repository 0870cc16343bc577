"""#5 /health, #8 merged OpenAPI and the /docs page."""

from __future__ import annotations

import time

import pytest
from tests.integration.gateway.conftest import ENGINES, Harness, build_harness, make_settings

from common.db import Database

pytestmark = pytest.mark.integration


async def test_health_all_reports_every_check(harness: Harness) -> None:
    response = await harness.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == "1.0.0"
    assert body["data_source"] == "fixture"
    assert body["checks"] == {
        "database": "ok",
        "broker": "in_process",
        "services": dict.fromkeys(ENGINES, "ok"),
    }
    assert body["checked_at"].endswith("Z")
    assert "x-ratelimit-limit" not in response.headers


async def test_health_gateway_scope_does_no_io(harness: Harness) -> None:
    harness.state.ready = False
    response = await harness.client.get("/health", params={"scope": "gateway"})
    assert response.status_code == 200
    assert response.json()["checks"] == {"gateway": "ok"}
    invalid = await harness.client.get("/health", params={"scope": "everything"})
    assert invalid.status_code == 422


async def test_health_is_503_when_a_service_is_not_ready(harness: Harness) -> None:
    harness.state.ready = False
    response = await harness.client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["checks"]["services"]["ingest"] == "error"


async def test_health_is_503_with_database_error_when_the_database_url_is_wrong(
    seeded,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    db = Database(url)
    h = await build_harness(db, make_settings(url, tmp_path))
    try:
        started = time.perf_counter()
        response = await h.client.get("/health")
        assert time.perf_counter() - started < 2.5
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "error"
        assert body["checks"]["database"] == "error"
        assert body["checks"]["broker"] == "in_process"
    finally:
        await h.client.aclose()
        await db.close()


async def test_live_provider_is_reported_as_live_data(gateway_db: Database, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(seeded.database_url, tmp_path, marketdata_provider="yfinance")
    h = await build_harness(gateway_db, settings)
    try:
        body = (await h.client.get("/health", params={"scope": "gateway"})).json()
        assert body["data_source"] == "live"
    finally:
        await h.client.aclose()


async def test_merged_openapi_has_gateway_and_service_paths_without_auth(harness: Harness) -> None:
    response = await harness.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/"}]
    paths = doc["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/health",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/portfolio",
        "/api/v1/positions/{id}",
        "/api/v1/portfolio/exposures",
        "/api/v1/admin/batch/status",
        "/api/v1/jobs/{job_id}",
    ):
        assert path in paths, path
    assert "/healthz" not in paths and "/readyz" not in paths
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    assert "security" not in paths["/api/v1/auth/me"]["get"]
    assert "ing_" in paths["/api/v1/jobs/{job_id}"]["get"]["description"]
    login_schema = doc["components"]["schemas"]["LoginRequest"]
    assert login_schema["example"]["email"] == "demo_hedgefundstyle@sigmasight.com"
    assert "example" in doc["components"]["schemas"]["MeResponse"]
    assert "x-unavailable-services" not in doc["info"]


async def test_docs_page_points_at_the_merged_document(harness: Harness) -> None:
    response = await harness.client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/api/v1/openapi.json" in response.text
