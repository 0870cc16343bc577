"""Access-token cache, refresh tokens, passwords and the OpenAPI merge."""

from __future__ import annotations

import time
import uuid

import pytest

from common.auth import Principal, issue_access_token
from common.errors import ApiError
from gateway.openapi import merge_openapi
from gateway.passwords import hash_password_sync, verify_password_sync
from gateway.tokens import TokenVerifier, new_refresh_token, refresh_token_hash

SECRET = "unit-secret-0123456789abcdef0123456789abcdef"


def principal(role: str = "user") -> Principal:
    return Principal(user_id=uuid.uuid4(), email="u@example.com", role=role)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_verified_tokens_are_cached_until_they_expire() -> None:
    issued = int(time.time())
    clock = Clock(issued)
    verifier = TokenVerifier(SECRET, clock=clock)
    who = principal()
    token = issue_access_token(who, SECRET, 3600, now=issued)
    first = verifier.verify(token)
    assert first.principal == who
    assert first.expires_at == issued + 3600
    assert first.jti
    assert verifier.verify(token) is first  # a cache hit returns the same verification
    clock.now = issued + 3600
    with pytest.raises(ApiError) as expired:
        verifier.verify(token)
    assert expired.value.code == "TOKEN_EXPIRED"
    assert len(verifier) == 0


def test_cache_is_a_bounded_lru() -> None:
    verifier = TokenVerifier(SECRET, max_entries=2)
    tokens = [issue_access_token(principal(), SECRET, 3600) for _ in range(3)]
    verifier.verify(tokens[0])
    verifier.verify(tokens[1])
    verifier.verify(tokens[0])  # refresh 0 → 1 is now the least recently used
    verifier.verify(tokens[2])
    assert len(verifier) == 2
    assert tokens[1] not in verifier._cache
    assert tokens[0] in verifier._cache


def test_bad_tokens_are_401() -> None:
    verifier = TokenVerifier(SECRET)
    for header in (None, "Basic abc", "Bearer ", "Bearer nonsense"):
        with pytest.raises(ApiError) as err:
            verifier.verify_header(header)
        assert err.value.status == 401
    wrong_key = issue_access_token(principal(), "another-secret-0123456789abcdef0123", 3600)
    with pytest.raises(ApiError) as err:
        verifier.verify(wrong_key)
    assert err.value.code == "UNAUTHENTICATED"


def test_refresh_tokens_are_opaque_random_and_stored_hashed() -> None:
    a, b = new_refresh_token(), new_refresh_token()
    assert a.startswith("rt_") and a != b
    assert len(a) > 40
    assert len(refresh_token_hash(a)) == 32
    assert refresh_token_hash(a) == refresh_token_hash(a) != refresh_token_hash(b)


def test_password_hashes_verify_and_reject() -> None:
    stored = hash_password_sync("demo12345", 4)
    assert stored.startswith("$2b$04$")
    assert verify_password_sync("demo12345", stored)
    assert not verify_password_sync("demo123456", stored)
    assert not verify_password_sync("demo12345", "not-a-hash")
    long = "p" * 100  # bcrypt reads 72 bytes
    assert verify_password_sync(long, hash_password_sync(long, 4))


def _doc(paths: dict, schemas: dict) -> dict:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def test_merge_keeps_routed_paths_and_renames_conflicting_schemas() -> None:
    gateway = _doc(
        {"/api/v1/auth/login": {"post": {"responses": {}}}, "/health": {"get": {"responses": {}}}},
        {"Meta": {"type": "object", "properties": {"request_id": {"type": "string"}}}},
    )
    ingest = _doc(
        {
            "/api/v1/positions/{id}": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Meta"}}}}
                    }
                }
            },
            "/api/v1/jobs/{job_id}": {"get": {"description": "ingest jobs", "responses": {}}},
            "/api/v1/risk/greeks": {"get": {"responses": {}}},  # not ingest's route: dropped
        },
        {"Meta": {"type": "object", "properties": {"other": {"type": "integer"}}}, "Shared": {"type": "string"}},
    )
    greeks = _doc(
        {"/api/v1/risk/greeks": {"get": {"responses": {}}}, "/api/v1/jobs/{job_id}": {"get": {"responses": {}}}},
        {"Shared": {"type": "string"}},
    )
    merged = merge_openapi(gateway, {"ingest": ingest, "greeks": greeks, "stress": None}, version="1.0.0")
    assert merged["openapi"] == "3.1.0"
    assert merged["servers"] == [{"url": "/"}]
    assert set(merged["paths"]) == {
        "/api/v1/auth/login",
        "/health",
        "/metrics",
        "/api/v1/positions/{id}",
        "/api/v1/jobs/{job_id}",
        "/api/v1/risk/greeks",
    }
    schemas = merged["components"]["schemas"]
    assert schemas["Meta"]["properties"] == {"request_id": {"type": "string"}}
    assert schemas["ingest__Meta"]["properties"] == {"other": {"type": "integer"}}
    assert "greeks__Shared" not in schemas  # identical definitions are shared
    ref = merged["paths"]["/api/v1/positions/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ref["schema"]["$ref"] == "#/components/schemas/ingest__Meta"
    assert "mkt_" in merged["paths"]["/api/v1/jobs/{job_id}"]["get"]["description"]
    assert merged["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert merged["paths"]["/health"]["get"]["security"] == []
    assert "security" not in merged["paths"]["/api/v1/risk/greeks"]["get"]
    assert merged["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert merged["info"]["x-unavailable-services"] == ["stress"]
