"""The edge with fake components (no database): CORS, request ids, auth gate, limits, dispatch."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from common.auth import PRINCIPAL_SCOPE_KEY, Principal, issue_access_token
from gateway.edge import Edge
from gateway.exchange import CorsPolicy
from gateway.ratelimit import SlidingWindowLimiter
from gateway.tokens import TokenVerifier
from gateway.upstream import InProcessUpstreams

SECRET = "edge-unit-secret-0123456789abcdef0123456789"


class FakeActivity:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


class Upstream:
    """An ASGI app recording the scopes it receives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = orjson.dumps({"service": self.name, "received": len(body)})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"upstream-made")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def local_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"local"})


def build(**kw: Any) -> tuple[httpx.AsyncClient, dict[str, Upstream], FakeActivity, SlidingWindowLimiter]:
    upstreams = {name: Upstream(name) for name in ("ingest", "marketdata", "greeks", "factors", "stress")}
    activity = FakeActivity()
    limiter = SlidingWindowLimiter(kw.pop("limit", 100), 60)
    edge = Edge(
        local=local_app,
        upstreams=InProcessUpstreams(upstreams),
        verifier=TokenVerifier(SECRET),
        limiter=limiter,
        cors=CorsPolicy(kw.pop("origins", ["http://localhost:3000", "http://localhost:5173"])),
        activity=activity,  # type: ignore[arg-type]
        idempotency=None,  # type: ignore[arg-type]
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://edge")
    return client, upstreams, activity, limiter


def bearer(user_id: uuid.UUID | None = None, role: str = "user") -> dict[str, str]:
    who = Principal(user_id=user_id or uuid.uuid4(), email="u@example.com", role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {issue_access_token(who, SECRET, 3600)}"}


async def test_cors_preflight_from_dev_origins_allows_authorization() -> None:
    client, upstreams, _, limiter = build()
    for origin in ("http://localhost:3000", "http://localhost:5173"):
        response = await client.options(
            "/api/v1/positions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "Authorization" in response.headers["access-control-allow-headers"]
        assert "DELETE" in response.headers["access-control-allow-methods"]
        assert response.headers["vary"] == "Origin"
    assert upstreams["ingest"].scopes == []  # answered at the edge, no token needed
    assert len(limiter) == 0


async def test_cors_preflight_from_unknown_origin_is_refused() -> None:
    client, _, _, _ = build()
    response = await client.options(
        "/api/v1/positions", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"}
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_configured_wildcard_reflects_the_origin() -> None:
    client, _, _, _ = build(origins=["*"])
    response = await client.options(
        "/api/v1/tags", headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_request_ids_are_minted_or_echoed_and_replace_the_upstreams() -> None:
    client, _, _, _ = build()
    minted = await client.get("/api/v1/positions", headers=bearer())
    assert minted.headers.get_list("x-request-id")[0].startswith("req_")
    assert len(minted.headers.get_list("x-request-id")) == 1
    echoed = await client.get("/api/v1/positions", headers={**bearer(), "X-Request-ID": "abc_DEF-123"})
    assert echoed.headers["x-request-id"] == "abc_DEF-123"
    invalid = await client.get("/api/v1/positions", headers={**bearer(), "X-Request-ID": "bad id!"})
    assert invalid.headers["x-request-id"].startswith("req_")


async def test_principal_goes_in_the_scope_and_identity_headers_are_rewritten() -> None:
    client, upstreams, _, _ = build()
    user_id = uuid.uuid4()
    response = await client.get(
        "/api/v1/risk/greeks", headers={**bearer(user_id, "admin"), "X-User-Id": "evil", "X-User-Role": "admin"}
    )
    assert response.json()["service"] == "greeks"
    scope = upstreams["greeks"].scopes[0]
    principal = scope["state"][PRINCIPAL_SCOPE_KEY]
    assert principal.user_id == user_id and principal.role == "admin"
    headers = [(k, v) for k, v in scope["headers"] if k in (b"x-user-id", b"x-user-role")]
    assert headers == [(b"x-user-id", str(user_id).encode()), (b"x-user-role", b"admin")]


async def test_unauthenticated_requests_never_reach_a_service() -> None:
    client, upstreams, _, _ = build()
    response = await client.get("/api/v1/positions")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "UNAUTHENTICATED"
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    assert upstreams["ingest"].scopes == []


async def test_unknown_routes_and_job_prefixes_are_404() -> None:
    client, _, _, _ = build()
    route = await client.get("/api/v1/nothing-here")
    assert route.status_code == 404 and route.json()["error"]["code"] == "ROUTE_NOT_FOUND"
    job = await client.get("/api/v1/jobs/xyz_123", headers=bearer())
    assert job.status_code == 404 and job.json()["error"]["code"] == "JOB_NOT_FOUND"
    routed = await client.get(f"/api/v1/jobs/str_{uuid.uuid4()}", headers=bearer())
    assert routed.json()["service"] == "stress"


async def test_declared_oversized_bodies_are_refused_before_dispatch() -> None:
    client, upstreams, _, _ = build()
    response = await client.post(
        "/api/v1/tags",
        content=b"x" * (1024 * 1024 + 1),
        headers={**bearer(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert upstreams["ingest"].scopes == []
    ok = await client.post(
        "/api/v1/tags", content=b"x" * 1000, headers={**bearer(), "Content-Type": "application/json"}
    )
    assert ok.json()["received"] == 1000


async def test_rate_limit_headers_and_429() -> None:
    client, _, _, _ = build(limit=2)
    headers = bearer()
    first = await client.get("/api/v1/positions", headers=headers)
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
    await client.get("/api/v1/positions", headers=headers)
    refused = await client.get("/api/v1/positions", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    health = await client.get("/health")
    assert health.text == "local"
    assert "x-ratelimit-limit" not in health.headers


async def test_state_changing_requests_are_queued_for_the_activity_log() -> None:
    client, _, activity, _ = build()
    user_id = uuid.uuid4()
    await client.get("/api/v1/positions", headers=bearer(user_id))
    await client.post("/api/v1/tags", json={"name": "x"}, headers=bearer(user_id))
    await client.delete("/api/v1/tags/abc", headers=bearer(user_id))
    assert [(r["method"], r["action"], r["user_id"]) for r in activity.rows] == [
        ("POST", "tag.create", user_id),
        ("DELETE", "tags.delete", user_id),
    ]
    assert all(r["request_id"].startswith("req_") for r in activity.rows)
