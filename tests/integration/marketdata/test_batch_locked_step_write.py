"""A batch of step reports locks its run and upserts the run's step rows in one statement
(`batch_repository.lock_run_and_write_steps`). It must do what the former two statements did — the
run's head read FOR UPDATE (`HEAD_SQL`), then `write_job_runs` with the run's as-of date and trigger
in every row: same head, same counts
(changed, inserted, `job_run_rows`), same stored rows — through inserts, repeats, a report within
the batch overridden by a later one, a completed row not regressed, a retry and a market-wide row;
and for an unknown run it writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from test_batch_job_run_rows import greeks_run, report
from test_batch_support import Env

from common.db import session_driver_connection
from marketdata import batch_repository as repo

pytestmark = pytest.mark.integration

# Every stored column but the row's own id, its run and the update time.
COMPARED = (
    "job, service, portfolio_id, as_of_date, trigger, status, started_at, finished_at, duration_ms, "
    "records_processed, error_code, error_message, details, last_event_id, attempt"
)


# The former lock of a batch (marketdata's `lock_run_head`, replaced by the combined statement).
HEAD_SQL = "SELECT id, status, as_of_date, trigger, job_run_rows FROM marketdata.batch_run WHERE id = $1 FOR UPDATE"


async def _former(env: Env, run_id: uuid.UUID, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    async with env.ctx.db.transaction() as s:
        head = await (await session_driver_connection(s)).fetchrow(HEAD_SQL, run_id)
        assert head is not None
        written = await repo.write_job_runs(
            s, repo.JOB_RUN_KEYS, [tuple(r[k] for k in repo.JOB_RUN_KEYS) for r in rows]
        )
    return head["status"], head["job_run_rows"], written.changed, written.inserted.get(run_id, 0)


async def _combined(env: Env, run_id: uuid.UUID, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    async with env.ctx.db.transaction() as s:
        written = await repo.lock_run_and_write_steps(
            s, run_id=run_id, rows=[tuple(r[k] for k in repo.STEP_ROW_KEYS) for r in rows]
        )
    assert written is not None and written.head["id"] == run_id
    head = written.head
    assert (head["as_of_date"], head["trigger"]) == (rows[0]["as_of_date"], rows[0]["trigger"])
    return head["status"], head["job_run_rows"], written.changed, written.inserted


async def _stored(env: Env, run_id: uuid.UUID, pids: list[uuid.UUID]) -> list[dict[str, Any]]:
    rows = await env.rows(f"SELECT {COMPARED} FROM marketdata.batch_job_run WHERE run_id = :r", r=run_id)
    index = {pid: i for i, pid in enumerate(pids)}
    out = [{**r, "portfolio_id": index.get(r["portfolio_id"])} for r in rows]
    return sorted(out, key=lambda r: (r["job"], -1 if r["portfolio_id"] is None else r["portfolio_id"]))


async def test_the_combined_statement_equals_lock_then_write(env: Env) -> None:
    (old, old_pids), (new, new_pids) = await greeks_run(env, 3), await greeks_run(env, 3)
    e = [uuid.uuid4() for _ in range(8)]
    # (portfolio index or None for the market-wide row, status, event, job)
    batches: list[list[tuple[int | None, str, uuid.UUID, str]]] = [
        [(0, "running", e[0], "greeks"), (1, "failed", e[1], "greeks"), (0, "running", e[2], "greeks")],
        [(0, "completed", e[3], "greeks"), (1, "completed", e[4], "greeks")],  # updates; b is a retry
        [(0, "completed", e[3], "greeks"), (1, "failed", e[5], "greeks")],  # a repeat, a late failure
        [(2, "completed", e[6], "greeks"), (None, "running", e[7], "market_data")],
        [(None, "completed", e[0], "market_data")],
    ]
    for batch in batches:
        answers = []
        for run, pids, write in ((old, old_pids, _former), (new, new_pids, _combined)):
            rows = [report(run["id"], None if i is None else pids[i], st, ev, job) for i, st, ev, job in batch]
            answers.append(await write(env, run["id"], rows))
        assert answers[0] == answers[1]
        assert await _stored(env, old["id"], old_pids) == await _stored(env, new["id"], new_pids)
    counted = "SELECT job_run_rows FROM marketdata.batch_run WHERE id = :r"
    assert await env.scalar(counted, r=old["id"]) == await env.scalar(counted, r=new["id"]) == 4


async def test_an_unknown_run_writes_nothing(env: Env) -> None:
    run, pids = await greeks_run(env, 1)
    unknown = uuid.uuid4()
    row = report(unknown, pids[0], "completed", uuid.uuid4())
    async with env.ctx.db.transaction() as s:
        written = await repo.lock_run_and_write_steps(
            s, run_id=unknown, rows=[tuple(row[k] for k in repo.STEP_ROW_KEYS)]
        )
    assert written is None
    assert await env.scalar("SELECT count(*) FROM marketdata.batch_job_run WHERE run_id = :r", r=unknown) == 0
    assert await env.scalar("SELECT job_run_rows FROM marketdata.batch_run WHERE id = :r", r=run["id"]) == 0
