"""batch_job_run: the set-based upsert of a batch of step reports equals the one-row upsert applied
report by report (same rows, same attempts, same idempotence on repeated event ids)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from test_batch_support import ADMIN, AS_OF, Env, close_env, create_batch_database, make_env

from common.testing import drop_database
from marketdata import batch_repository as repo
from marketdata.batch_service import start_run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def bulk_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"sigmasight_mdbulk_{uuid.uuid4().hex[:8]}"
    url = await create_batch_database(pg_admin_url, name)
    yield url
    await drop_database(pg_admin_url, name)


@pytest.fixture
async def env(bulk_db_url: str) -> AsyncIterator[Env]:
    e = await make_env(bulk_db_url)
    yield e
    await close_env(e)


def report(
    run: dict[str, Any], pid: uuid.UUID, status: str, minute: int, event: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    final = status in ("completed", "failed")
    return {
        "run_id": run["id"],
        "job": "greeks",
        "service": "greeks",
        "portfolio_id": pid,
        "as_of_date": AS_OF,
        "trigger": "manual",
        "status": status,
        "started_at": T0 + timedelta(minutes=minute),
        "finished_at": T0 + timedelta(minutes=minute, seconds=3) if final else None,
        "duration_ms": 3000 if final else None,
        "records_processed": 7,
        "error_code": "GREEKS_FAILED" if status == "failed" else None,
        "error_message": "boom" if status == "failed" else None,
        "details": {"extra_steps": [], "note": "x"},
        "last_event_id": event,
        **extra,
    }


async def stored(env: Env, run_id: uuid.UUID) -> list[dict[str, Any]]:
    async with env.ctx.db.transaction() as s:
        rows = await s.execute(
            sa.text(
                "SELECT portfolio_id, status, attempt, started_at, finished_at, duration_ms, records_processed, "
                "error_code, error_message, details, last_event_id FROM marketdata.batch_job_run "
                "WHERE run_id = :r AND job = 'greeks' ORDER BY portfolio_id"
            ),
            {"r": run_id},
        )
        return [dict(r) for r in rows.mappings()]


async def new_run(env: Env) -> dict[str, Any]:
    run, _, _ = await start_run(
        env.ctx,
        job_name="greeks",
        trigger="manual",
        requested_by=ADMIN.user_id,
        as_of_date=AS_OF,
        portfolio_ids=[await env.portfolio()],
        cascade=False,
        force=True,
    )
    return run


async def test_a_batch_of_reports_lands_as_the_same_rows_as_one_by_one(env: Env) -> None:
    pids = sorted(uuid.uuid4() for _ in range(3))
    events = [[uuid.uuid4() for _ in range(3)] for _ in pids]
    # Per portfolio: running, then failed, then completed (a retry: attempt 2), then a repeat of the
    # completed event (ignored), then a late failure (never regresses a completed row).
    sequences = [
        [("running", 0, e[0]), ("failed", 1, e[1]), ("completed", 2, e[2]), ("completed", 2, e[2]), ("failed", 3, e[0])]
        for e in events
    ]
    one_run, bulk_run = await new_run(env), await new_run(env)
    for step in range(5):
        async with env.ctx.db.transaction() as s:
            for pid, seq in zip(pids, sequences, strict=True):
                status, minute, event = seq[step]
                await repo.upsert_job_run(s, **report(one_run, pid, status, minute, event))
            changed = await repo.upsert_job_runs(
                s, [report(bulk_run, pid, *seq[step]) for pid, seq in zip(pids, sequences, strict=True)]
            )
        assert changed == (0 if step >= 3 else 3)
    one, bulk = await stored(env, one_run["id"]), await stored(env, bulk_run["id"])
    assert one == bulk
    assert [r["status"] for r in bulk] == ["completed"] * 3 and [r["attempt"] for r in bulk] == [2] * 3
    assert all(r["started_at"] == T0 for r in bulk)  # the first start is kept
    assert bulk[0]["details"] == {"extra_steps": [], "note": "x"}
