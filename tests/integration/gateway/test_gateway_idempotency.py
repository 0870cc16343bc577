"""Idempotency keys (api.md §2.10) stored in gateway.idempotency_key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from tests.integration.gateway.conftest import Harness

from common.db import Database
from common.testing import wait_until
from gateway.models import idempotency_key

pytestmark = pytest.mark.integration


async def test_repeat_with_same_key_and_body_replays_the_stored_response(
    harness: Harness, gateway_db: Database
) -> None:
    user_id = uuid.uuid4()
    headers = {**harness.auth(user_id=user_id), "Idempotency-Key": "create-tag-1"}
    first = await harness.client.post("/api/v1/tags", json={"name": "Core", "color": "#112233"}, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    # Same JSON with another key order and spacing is the same request.
    again = await harness.client.post(
        "/api/v1/tags",
        content=b'{ "color": "#112233",   "name": "Core" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == "application/json"
    assert again.headers["x-ratelimit-limit"] == "100"
    assert harness.state.created == 1  # the service ran once
    async with gateway_db.session() as session:
        row = (
            (
                await session.execute(
                    sa.select(idempotency_key).where(
                        idempotency_key.c.user_id == user_id, idempotency_key.c.key == "create-tag-1"
                    )
                )
            )
            .mappings()
            .one()
        )
    assert row["state"] == "done"
    assert row["response_status"] == 201
    assert row["method"] == "POST"
    assert len(row["request_hash"]) == 32


async def test_same_key_with_another_body_is_409_reused(harness: Harness) -> None:
    headers = {**harness.auth(user_id=uuid.uuid4()), "Idempotency-Key": "k-1"}
    assert (await harness.client.post("/api/v1/tags", json={"name": "A"}, headers=headers)).status_code == 201
    other = await harness.client.post("/api/v1/tags", json={"name": "B"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert other.json()["error"]["retryable"] is False
    assert harness.state.created == 1


async def test_same_key_while_the_first_runs_is_409_in_progress(harness: Harness, gateway_db: Database) -> None:
    user_id = uuid.uuid4()
    headers = {**harness.auth(user_id=user_id), "Idempotency-Key": "slow-1"}
    first = asyncio.create_task(harness.client.post("/api/v1/modeling/sessions", json={"x": 1}, headers=headers))

    async def claimed() -> bool:
        async with gateway_db.session() as session:
            state = await session.scalar(
                sa.select(idempotency_key.c.state).where(
                    idempotency_key.c.user_id == user_id, idempotency_key.c.key == "slow-1"
                )
            )
        return state == "in_progress"

    await wait_until(claimed, timeout=10)  # the first request holds the key and waits on the gate
    busy = await harness.client.post("/api/v1/modeling/sessions", json={"x": 1}, headers=headers)
    assert busy.status_code == 409
    assert not first.done()
    assert busy.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert busy.json()["error"]["retryable"] is True
    assert busy.headers["retry-after"] == "1"
    harness.state.gate.set()
    done = await first
    assert done.status_code == 201
    replay = await harness.client.post("/api/v1/modeling/sessions", json={"x": 1}, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert harness.state.created == 1


async def test_keys_are_per_user_and_validated(harness: Harness) -> None:
    body = {"name": "Shared"}
    a = await harness.client.post("/api/v1/tags", json=body, headers={**harness.auth(), "Idempotency-Key": "same"})
    b = await harness.client.post("/api/v1/tags", json=body, headers={**harness.auth(), "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    bad = await harness.client.post(
        "/api/v1/tags", json=body, headers={**harness.auth(), "Idempotency-Key": "has spaces!"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "header.Idempotency-Key"
    assert harness.state.created == 2
