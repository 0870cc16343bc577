"""The edge in all-in-one mode: routing, principal hand-off, rate limit, limits, activity, logs, metrics."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
import sqlalchemy as sa
from tests.integration.gateway.conftest import Harness, build_harness, make_settings

from common.db import Database
from common.testing import wait_until
from gateway.models import activity_log
from gateway.seed import DEMO_PASSWORD

pytestmark = pytest.mark.integration


async def activity_rows(db: Database, request_ids: list[str]) -> list[dict]:
    async with db.session() as session:
        rows = (
            await session.execute(sa.select(activity_log).where(activity_log.c.request_id.in_(request_ids)))
        ).mappings()
        return [dict(r) for r in rows]


async def test_requests_reach_the_owning_service_with_the_verified_principal(harness: Harness) -> None:
    user_id = uuid.uuid4()
    response = await harness.client.get(
        "/api/v1/portfolio",
        headers={**harness.auth(user_id=user_id), "X-Request-ID": "client-req-1", "X-User-Id": "spoofed"},
    )
    assert response.status_code == 200
    seen = response.json()["data"]
    assert seen["service"] == "ingest"
    assert seen["user_id"] == str(user_id)
    assert seen["x_user_id"] == str(user_id)  # the client's X-User-Id was replaced
    assert seen["x_user_role"] == "user"
    assert seen["x_request_id"] == "client-req-1"
    assert response.headers["x-request-id"] == "client-req-1"
    assert response.json()["meta"]["request_id"] == "client-req-1"
    assert response.headers.get_list("x-request-id") == ["client-req-1"]


async def test_longest_prefix_and_job_prefix_routing(harness: Harness) -> None:
    headers = harness.auth()
    exposures = await harness.client.get("/api/v1/portfolio/exposures", headers=headers)
    assert exposures.json()["data"]["service"] == "stress"
    job = await harness.client.get(f"/api/v1/jobs/fac_{uuid.uuid4()}", headers=headers)
    assert job.status_code == 200
    assert job.json()["data"]["service"] == "factors"
    unknown_prefix = await harness.client.get(f"/api/v1/jobs/zzz_{uuid.uuid4()}", headers=headers)
    assert unknown_prefix.status_code == 404
    assert unknown_prefix.json()["error"]["code"] == "JOB_NOT_FOUND"
    nowhere = await harness.client.get("/api/v1/nowhere", headers=headers)
    assert nowhere.status_code == 404
    assert nowhere.json()["error"]["code"] == "ROUTE_NOT_FOUND"
    outside = await harness.client.get("/favicon.ico")
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "ROUTE_NOT_FOUND"


async def test_hundred_and_first_request_in_a_minute_is_429(harness: Harness) -> None:
    headers = harness.auth(user_id=uuid.uuid4())
    last = None
    for i in range(100):
        last = await harness.client.get("/api/v1/portfolio", headers=headers)
        assert last.status_code == 200
        assert last.headers["x-ratelimit-remaining"] == str(99 - i)
    assert last is not None
    assert last.headers["x-ratelimit-limit"] == "100"
    assert 59 <= int(last.headers["x-ratelimit-reset"]) <= 61
    refused = await harness.client.get("/api/v1/portfolio", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.json()["error"]["retryable"] is True
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # Exempt routes still answer; other users are unaffected.
    assert (await harness.client.get("/health?scope=gateway")).status_code == 200
    assert (await harness.client.get("/api/v1/portfolio", headers=harness.auth())).status_code == 200


async def test_body_limits_answer_413(harness: Harness) -> None:
    headers = {**harness.auth(), "Content-Type": "application/json"}
    big_json = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    too_big = await harness.client.post("/api/v1/tags", content=big_json, headers=headers)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():
        for _ in range(3):
            yield b"y" * (512 * 1024)

    streamed = await harness.client.post("/api/v1/tags", content=chunks(), headers=headers)
    assert streamed.status_code == 413

    # A multipart upload may be 10 MiB; the price import 50 MiB.
    files = {"file": ("book.csv", b"symbol,quantity\n" + b"AAPL,1\n" * 200_000, "text/csv")}
    upload = await harness.client.post("/api/v1/portfolio/upload", files=files, headers=harness.auth())
    assert upload.status_code == 202
    assert upload.json()["data"]["received"] > 1024 * 1024


async def test_activity_rows_are_written_for_posts_and_logins(harness: Harness, gateway_db: Database) -> None:
    user_id = uuid.uuid4()
    created = await harness.client.post("/api/v1/tags", json={"name": "Core"}, headers=harness.auth(user_id=user_id))
    portfolio_read = await harness.client.get("/api/v1/portfolio", headers=harness.auth(user_id=user_id))
    login = await harness.login("demo_individual@sigmasight.com", DEMO_PASSWORD)
    failed = await harness.login("demo_individual@sigmasight.com", "wrong")
    ids = [r.headers["x-request-id"] for r in (created, portfolio_read, login, failed)]
    await harness.edge.activity.flush()
    rows = {r["request_id"]: r for r in await activity_rows(gateway_db, ids)}
    assert set(rows) == {ids[0], ids[2], ids[3]}  # the GET is not state-changing
    tag = rows[ids[0]]
    assert (tag["action"], tag["method"], tag["route"], tag["status"]) == ("tag.create", "POST", "/api/v1/tags", 201)
    assert tag["user_id"] == user_id
    assert str(tag["ip"]) == "127.0.0.1"
    assert tag["duration_ms"] >= 0
    assert rows[ids[2]]["action"] == "login"
    assert str(rows[ids[2]]["user_id"]) == str(login.json()["data"]["user"]["id"])
    assert rows[ids[3]]["action"] == "login_failed"
    assert rows[ids[3]]["user_id"] == rows[ids[2]]["user_id"]
    assert rows[ids[3]]["status"] == 401


async def test_one_json_log_line_per_request_without_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    user_id = uuid.uuid4()
    token = harness.token(user_id=user_id)
    await harness.client.get(f"/api/v1/positions/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
    await harness.login("demo_hnw@sigmasight.com", "wrong-password-xyz")
    records = [r for r in caplog.records if r.name == "gateway.access"]
    assert len(records) == 2
    read, login = records
    assert read.route == "/api/v1/positions/{id}"  # type: ignore[attr-defined]
    assert read.user_id == str(user_id)  # type: ignore[attr-defined]
    assert read.status == 200  # type: ignore[attr-defined]
    assert read.upstream == "ingest"  # type: ignore[attr-defined]
    assert read.bytes_out > 0  # type: ignore[attr-defined]
    assert read.duration_ms >= 0  # type: ignore[attr-defined]
    assert read.ip == "127.0.0.1"  # type: ignore[attr-defined]
    assert login.status == 401  # type: ignore[attr-defined]
    assert login.code == "INVALID_CREDENTIALS"  # type: ignore[attr-defined]
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert token not in text
    assert "wrong-password-xyz" not in text


async def test_metrics_from_loopback_or_with_an_admin_token(harness: Harness) -> None:
    await harness.client.get("/api/v1/portfolio", headers=harness.auth())
    local = await harness.client.get("/metrics")
    assert local.status_code == 200
    assert 'sigmasight_gateway_http_requests_total{method="GET",route="/api/v1/portfolio",status="200"}' in local.text
    assert "sigmasight_gateway_http_request_duration_seconds_bucket" in local.text
    assert "sigmasight_gateway_rate_limited_total" in local.text

    outside = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.service.app, client=("8.8.8.8", 4000)), base_url="http://gw"
    )
    async with outside:
        assert (await outside.get("/metrics")).status_code == 401
        assert (await outside.get("/metrics", headers=harness.auth())).status_code == 403
        assert (await outside.get("/metrics", headers=harness.auth(role="admin"))).status_code == 200
    proxied = await harness.client.get("/metrics", headers={"X-Forwarded-For": "8.8.8.8"})
    assert proxied.status_code == 401


async def test_cors_preflight_and_response_headers(harness: Harness) -> None:
    preflight = await harness.client.options(
        "/api/v1/portfolio",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    actual = await harness.client.get(
        "/api/v1/portfolio", headers={**harness.auth(), "Origin": "http://localhost:3000"}
    )
    assert actual.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "X-RateLimit-Remaining" in actual.headers["access-control-expose-headers"]
    foreign = await harness.client.get("/api/v1/portfolio", headers={**harness.auth(), "Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_started_service_writes_activity_in_the_background(gateway_db: Database, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]

    settings = make_settings(seeded.database_url, tmp_path, activity_flush_seconds=0.05)
    h = await build_harness(gateway_db, settings)
    await h.service.start()
    try:
        response = await h.client.post("/api/v1/tags", json={"name": "bg"}, headers=h.auth())
        request_id = response.headers["x-request-id"]

        async def written() -> bool:
            return len(await activity_rows(gateway_db, [request_id])) == 1

        await wait_until(written, timeout=10, interval=0.05)
    finally:
        await h.service.stop()
        await h.client.aclose()
    assert len(h.edge.activity) == 0
