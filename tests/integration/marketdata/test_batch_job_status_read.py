"""`GET /api/v1/jobs/mkt_<run>` reads its job row on the raw pool (`JobLedger.read`):
the row and the answer must be the ones `JobLedger.get` (SQLAlchemy) gives, queued, mid-run and
finished (failed steps included), and an unknown job is still a 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from test_batch_support import ADMIN, USER, Env, simulate_pipeline, token

from marketdata.backfill import wait_for_run

pytestmark = pytest.mark.integration


async def _ledger_row(env: Env, ident: uuid.UUID) -> dict[str, Any] | None:
    """The former read: the whole row through SQLAlchemy."""
    async with env.ctx.db.session() as session:
        return await env.ctx.plumbing.ledger.get(session, ident)


async def _assert_same_as_ledger(env: Env, ident: uuid.UUID) -> dict[str, Any]:
    ledger = env.ctx.plumbing.ledger
    former = await _ledger_row(env, ident)
    fast = await ledger.read(env.ctx.db, ident)
    assert former is not None and fast is not None
    assert fast == {k: former[k] for k in fast}
    assert ledger.to_api(fast) == ledger.to_api(former)
    r = await env.client.get(f"/api/v1/jobs/mkt_{ident}", headers=token(ADMIN))
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()["data"]
    assert answer["job_id"] == f"mkt_{ident}"
    return answer


async def test_the_job_read_matches_the_ledger_queued_and_finished_with_failures(env: Env) -> None:
    p1 = await env.portfolio()
    p2 = await env.portfolio()
    r = await env.client.post("/api/v1/admin/batch/run-all", json={}, headers=token(ADMIN))
    assert r.status_code == 202, r.text
    run_id = uuid.UUID(r.json()["data"]["run_id"])
    queued = await _assert_same_as_ledger(env, run_id)  # bus not started: the run is still queued
    assert queued["status"] == "queued" and queued["result"] is None

    simulate_pipeline(env.bus, fail=lambda s, p: s == "aggregations" and p == p2)
    await env.bus.start()
    assert await wait_for_run(env.ctx, run_id, 60) == "partial"
    finished = await _assert_same_as_ledger(env, run_id)
    assert finished["status"] == "partial" and finished["result"] == {"portfolios": 2, "failed": 1}
    assert finished["steps"] and finished["scope"]
    assert p1 != p2


async def test_an_unknown_job_or_another_users_job_is_not_found(env: Env) -> None:
    assert await env.ctx.plumbing.ledger.read(env.ctx.db, uuid.uuid4()) is None
    missing = await env.client.get(f"/api/v1/jobs/mkt_{uuid.uuid4()}", headers=token(ADMIN))
    assert missing.status_code == 404
    await env.portfolio()
    r = await env.client.post("/api/v1/admin/batch/run-all", json={}, headers=token(ADMIN))
    run_id = r.json()["data"]["run_id"]
    other = await env.client.get(f"/api/v1/jobs/mkt_{run_id}", headers=token(USER))
    assert other.status_code == 404
