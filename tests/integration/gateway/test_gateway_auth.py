"""Auth routes (#1-#4) through the edge on a migrated database."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from tests.integration.gateway.conftest import ADMIN_PASSWORD, Harness, add_portfolio

from common.db import Database
from common.ids import demo_user_id
from gateway import repository
from gateway.passwords import hash_password_sync
from gateway.seed import ADMIN_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.integration

HEDGE = "demo_hedgefundstyle@sigmasight.com"


async def make_user(db: Database, *, active: bool = True, password: str = "s3cret-pass") -> tuple[uuid.UUID, str]:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    user_id = uuid.uuid4()
    async with db.transaction() as session:
        await repository.insert_user(
            session,
            user_id=user_id,
            email=email,
            username=None,
            password_hash=hash_password_sync(password, 4),
            full_name="Test User",
            role="user",
            is_demo=False,
        )
        if not active:
            await repository.update_user(session, user_id=user_id, values={"is_active": False})
    return user_id, email


async def test_login_returns_tokens_user_and_portfolios(harness: Harness, gateway_db: Database) -> None:
    user_id = demo_user_id(HEDGE)
    pid = await add_portfolio(
        gateway_db, user_id, "Demo Hedge Fund Style Investor Portfolio", default=True, equity=Decimal("3200000.00")
    )
    response = await harness.login(HEDGE.upper(), DEMO_PASSWORD)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 86400
    assert data["refresh_expires_in"] == 30 * 86400
    assert data["refresh_token"].startswith("rt_")
    assert data["user"]["id"] == str(user_id)
    assert data["user"]["email"] == HEDGE
    assert data["user"]["full_name"] == "Demo Hedge Fund Style Investor"
    assert data["user"]["role"] == "user"
    assert data["user"]["is_demo"] is True
    assert {
        "id": str(pid),
        "name": "Demo Hedge Fund Style Investor Portfolio",
        "is_default": True,
        "status": "active",
    } in data["user"]["portfolios"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-ratelimit-limit"] == "10"
    assert response.headers["x-request-id"].startswith("req_")
    me = await harness.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {data['access_token']}"})
    assert me.status_code == 200
    assert me.json()["data"]["last_login_at"] is not None


async def test_wrong_password_and_unknown_email_get_the_same_answer(harness: Harness) -> None:
    wrong = await harness.login(HEDGE, "not-the-password")
    unknown = await harness.login(f"nobody-{uuid.uuid4().hex[:6]}@example.com", "whatever")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"]
    assert wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert "access_token" not in wrong.text


async def test_disabled_account_with_right_password_is_403(harness: Harness, gateway_db: Database) -> None:
    _, email = await make_user(gateway_db, active=False)
    response = await harness.login(email, "s3cret-pass")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ACCOUNT_DISABLED"
    wrong = await harness.login(email, "bad")
    assert wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"


async def test_eleventh_login_attempt_in_a_minute_is_rate_limited(harness: Harness) -> None:
    email = f"throttle-{uuid.uuid4().hex[:6]}@example.com"
    for _ in range(10):
        assert (await harness.login(email, "x")).status_code == 401
    response = await harness.login(email, "x")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert response.json()["error"]["retryable"] is True
    assert int(response.headers["retry-after"]) >= 1
    # Another address is counted separately.
    other = await harness.client.post(
        "/api/v1/auth/login", json={"email": email, "password": "x"}, headers={"X-Forwarded-For": "10.1.2.3"}
    )
    assert other.status_code == 429  # forwarded_hops = 0: X-Forwarded-For is not trusted


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(harness: Harness, gateway_db: Database) -> None:
    _, email = await make_user(gateway_db)
    first = (await harness.login(email, "s3cret-pass")).json()["data"]
    rotated = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]
    assert "user" not in second
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert rotated.headers["x-ratelimit-limit"] == "100"
    # Replaying the spent token is theft: 401, and the fresh token of the same login dies too.
    replay = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"
    after = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"


async def test_unknown_refresh_token_is_401(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": "rt_not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"


async def test_logout_revokes_the_login_and_answers_204(harness: Harness, gateway_db: Database) -> None:
    _, email = await make_user(gateway_db)
    login = (await harness.login(email, "s3cret-pass")).json()["data"]
    other_login = (await harness.login(email, "s3cret-pass")).json()["data"]
    response = await harness.client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {login['access_token']}"}
    )
    assert response.status_code == 204
    assert response.content == b""
    refused = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert refused.status_code == 401
    # Another login of the same user is untouched.
    still = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert still.status_code == 200


async def test_logout_with_a_presented_refresh_token_revokes_its_family(harness: Harness, gateway_db: Database) -> None:
    _, email = await make_user(gateway_db)
    first = (await harness.login(email, "s3cret-pass")).json()["data"]
    second = (await harness.login(email, "s3cret-pass")).json()["data"]
    response = await harness.client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": second["refresh_token"]},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert response.status_code == 204
    for token in (first["refresh_token"], second["refresh_token"]):
        refused = await harness.client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert refused.status_code == 401


async def test_me_lists_portfolios_with_equity_and_rate_limit(harness: Harness, gateway_db: Database) -> None:
    user_id, email = await make_user(gateway_db)
    valued = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a re-run the next morning (10:00 in New York)
    second = await add_portfolio(gateway_db, user_id, "Second", default=False, equity=None, valued_at=valued)
    first = await add_portfolio(gateway_db, user_id, "Main", default=True, equity=Decimal("1234.5"), valued_at=valued)
    pool = await gateway_db.pool()
    for day in (23, 24):  # the business date is the latest valuation date, not when it ran
        await pool.execute(
            "INSERT INTO ingest.api_position_valuation (position_id, valuation_date, portfolio_id) VALUES ($1, $2, $3)",
            uuid.uuid4(),
            date(2026, 11, day),
            first,
        )
    token = (await harness.login(email, "s3cret-pass")).json()["data"]["access_token"]
    response = await harness.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == str(user_id)
    assert data["email"] == email
    assert data["role"] == "user"
    assert data["is_demo"] is False
    assert data["created_at"].endswith("Z")
    assert data["rate_limit"] == {"limit": 100, "window_seconds": 60}
    assert data["portfolios"][0] == {
        "id": str(first),
        "name": "Main",
        "is_default": True,
        "status": "active",
        "equity": "1234.50",
        "as_of": "2026-11-24",
    }
    assert data["portfolios"][1]["id"] == str(second)
    assert data["portfolios"][1]["equity"] is None
    assert data["portfolios"][1]["as_of"] == "2026-11-25"  # no valuation rows: the valuation time's ET date
    assert response.headers["x-ratelimit-limit"] == "100"


async def test_protected_routes_need_a_valid_unexpired_token(harness: Harness) -> None:
    missing = await harness.client.get("/api/v1/portfolio")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHENTICATED"
    garbage = await harness.client.get("/api/v1/portfolio", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == "UNAUTHENTICATED"
    forged = harness.token().rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    bad_sig = await harness.client.get("/api/v1/portfolio", headers={"Authorization": f"Bearer {forged}"})
    assert bad_sig.status_code == 401
    expired = harness.token(ttl=60, now=time.time() - 3600)
    late = await harness.client.get("/api/v1/portfolio", headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "TOKEN_EXPIRED"
    assert late.json()["error"]["hint"] == "POST /api/v1/auth/refresh"
    assert harness.state.calls == []


async def test_admin_login_and_admin_only_route(harness: Harness) -> None:
    login = await harness.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert login.status_code == 200
    assert login.json()["data"]["user"]["role"] == "admin"
    admin = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
    assert (await harness.client.get("/api/v1/admin/batch/status", headers=admin)).status_code == 200
    user = await harness.client.get("/api/v1/admin/batch/status", headers=harness.auth())
    assert user.status_code == 403
    assert user.json()["error"]["code"] == "FORBIDDEN"
