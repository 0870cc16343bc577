"""The factor registry: nine definitions in display order, seeded idempotently (#44)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from tests.conftest import drop_database, make_migrated_database

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from factors.main import create_service
from factors.seed import seed
from factors.settings import Settings

pytestmark = pytest.mark.integration
SECRET = "factors-test-secret-0123456789abcdef"


@pytest.fixture
async def service(pg_admin_url: str):
    name = f"sigmasight_factors_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name, ("factors",))
    db = Database(url, pool_size=2)
    svc = create_service(Settings(jwt_secret=SECRET, database_url=url), db, InProcessBus())
    yield svc, db
    await db.close()
    await drop_database(pg_admin_url, name)


async def _get(svc, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://t") as client:
        return await client.get(path, headers=headers)


async def test_seed_twice_leaves_nine_definitions_in_display_order(service) -> None:
    svc, db = service
    assert await seed(db) == 9
    assert await seed(db) == 9
    token = issue_access_token(Principal(uuid.uuid4(), "u@x", "user"), SECRET, 60)
    resp = await _get(svc, "/api/v1/factors/definitions", token)
    assert resp.status_code == 200
    codes = [f["code"] for f in resp.json()["data"]]
    assert codes == [
        "market",
        "momentum",
        "value",
        "growth",
        "quality",
        "size",
        "low_volatility",
        "short_interest",
        "interest_rate",
    ]
    by_code = {f["code"]: f for f in resp.json()["data"]}
    assert by_code["size"]["proxy"] == "IWM" and by_code["low_volatility"]["proxy"] == "USMV"
    assert by_code["short_interest"]["is_active"] is False and by_code["short_interest"]["proxy"] is None
    assert by_code["interest_rate"]["proxy_type"] == "rate_series"


async def test_active_only_filter_and_auth(service) -> None:
    svc, db = service
    await seed(db)
    token = issue_access_token(Principal(uuid.uuid4(), "u@x", "user"), SECRET, 60)
    resp = await _get(svc, "/api/v1/factors/definitions?include_inactive=false", token)
    assert [f["code"] for f in resp.json()["data"]].count("short_interest") == 0
    assert len(resp.json()["data"]) == 8
    unauth = await _get(svc, "/api/v1/factors/definitions", None)
    assert unauth.status_code == 401
    assert unauth.json()["error"]["code"] == "UNAUTHENTICATED"
    bad = await _get(svc, "/api/v1/factors/definitions?include_inactive=maybe", token)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
