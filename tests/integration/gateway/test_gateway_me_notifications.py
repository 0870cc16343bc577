"""GET /api/v1/auth/me carries the caller's notification summary, read from ingest.api_notification."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.gateway.conftest import Harness
from tests.integration.gateway.test_gateway_auth import make_user

from common.db import Database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


async def add_notification(db: Database, user_id: uuid.UUID, minutes: int, *, read: bool = False) -> uuid.UUID:
    ident = uuid.uuid4()
    pool = await db.pool()
    await pool.execute(
        "INSERT INTO ingest.api_notification (id, user_id, kind, severity, title, message, link, read_at, created_at) "
        "VALUES ($1, $2, 'run_failed', 'error', $3, 'm', '/api/v1/portfolio', $4, $5)",
        ident,
        user_id,
        f"note {minutes}",
        T0 if read else None,
        T0 + timedelta(minutes=minutes),
    )
    return ident


async def me(harness: Harness, user_id: uuid.UUID) -> dict:
    response = await harness.client.get("/api/v1/auth/me", headers=harness.auth(user_id=user_id))
    assert response.status_code == 200, response.text
    return dict(response.json()["data"]["notifications"])


async def test_me_without_notifications_has_an_empty_summary(harness: Harness, gateway_db: Database) -> None:
    user_id, _ = await make_user(gateway_db)
    assert await me(harness, user_id) == {"unread_count": 0, "latest": [], "list_url": "/api/v1/notifications"}


async def test_me_shows_the_unread_count_and_the_five_newest(harness: Harness, gateway_db: Database) -> None:
    user_id, _ = await make_user(gateway_db)
    other, _ = await make_user(gateway_db)
    ids = [await add_notification(gateway_db, user_id, m, read=m < 2) for m in range(7)]
    await add_notification(gateway_db, other, 99)
    summary = await me(harness, user_id)
    assert summary["unread_count"] == 5
    assert [n["title"] for n in summary["latest"]] == ["note 6", "note 5", "note 4", "note 3", "note 2"]
    newest = summary["latest"][0]
    assert newest == {
        "id": str(ids[6]),
        "kind": "run_failed",
        "severity": "error",
        "title": "note 6",
        "portfolio_id": None,
        "link": "/api/v1/portfolio",
        "read": False,
        "created_at": "2026-11-25T14:06:00Z",
    }
