"""Notifications on PostgreSQL: made from uploads, the onboarding job and run events on the in-process
bus, idempotent under repeated deliveries, set-based for big batches, listed and marked read through
the ingest API (owner only). Harness: tests/integration/ingest/test_upload_support.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from test_upload_support import TODAY, Env, start_env

from common.events import GreeksComputed, SnapshotCreated, StepError, StepInfo, StressComputed
from ingest.notifications import service, store
from ingest.notifications.models import notification

pytestmark = pytest.mark.integration

HEADER = "ticker,quantity,entry_price,entry_date,tags\n"
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
VIEW_COLUMNS = [
    "id",
    "user_id",
    "kind",
    "severity",
    "title",
    "message",
    "portfolio_id",
    "link",
    "details",
    "read_at",
    "email_status",
    "email_sent_at",
    "created_at",
]


@pytest.fixture(scope="module")
async def env(pg_admin_url: str) -> AsyncIterator[Env]:
    mp = pytest.MonkeyPatch()
    try:
        async for e in start_env(pg_admin_url, f"sigmasight_notify_{uuid.uuid4().hex[:8]}", mp):
            yield e
    finally:
        mp.undo()


def failed(name: str, message: str = "boom") -> StepInfo:
    return StepInfo(
        name=name,  # type: ignore[arg-type]
        status="failed",
        started_at=NOW,
        finished_at=NOW,
        error=StepError(code="STEP_FAILED", message=message),
    )


async def listed(env: Env, user: uuid.UUID, **params: str) -> dict[str, Any]:
    r = await env.client.get("/api/v1/notifications", params=params, headers=env.headers(user))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def eventually(env: Env, user: uuid.UUID, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The user's notifications once there are `count` of them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        data = (await listed(env, user))["data"]
        if len(data) >= count:
            return list(data)
        assert asyncio.get_running_loop().time() < deadline, data
        await asyncio.sleep(0.05)


async def new_portfolios(env: Env, user: uuid.UUID, n: int, *, onboarded: bool = False) -> list[uuid.UUID]:
    rows = await env.db.fetch(
        "INSERT INTO ingest.portfolio (user_id, name, status, onboarded_at) "
        "SELECT $1, 'Book ' || g || ' ' || $2, 'active', CASE WHEN $3 THEN now() END "
        "FROM generate_series(1, $4) g RETURNING id",
        user,
        uuid.uuid4().hex[:6],
        onboarded,
        n,
    )
    return [r["id"] for r in rows]


@contextmanager
def statements(env: Env) -> Iterator[list[str]]:
    """SQL statements the SQLAlchemy engine sends for the calling task while the block runs. Other
    tasks share the engine (an earlier test's onboarding job still polls), so their statements are
    left out; SQLAlchemy runs this hook inside the awaiting task, so `current_task` names it."""
    seen: list[str] = []
    caller = asyncio.current_task()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if asyncio.current_task() is caller:
            seen.append(statement)

    engine = env.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


# ------------------------------------------------------------------------------------- schema


async def test_table_matches_the_model_and_the_view_has_the_contract_columns(env: Env) -> None:
    async with env.db.connect() as conn:

        def diff(sync_conn: Any) -> list[Any]:
            ctx = MigrationContext.configure(sync_conn, opts={"include_schemas": True, "compare_type": True})
            return [d for d in compare_metadata(ctx, notification.metadata) if "notification" in repr(d)]

        assert await conn.run_sync(diff) == []
    rows = await env.db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ingest' "
        "AND table_name = 'api_notification' ORDER BY ordinal_position"
    )
    assert [r["column_name"] for r in rows] == VIEW_COLUMNS


# ------------------------------------------------------------------------------------- uploads and onboarding


async def test_rejected_upload_of_a_new_portfolio_notifies_only_its_user(env: Env) -> None:
    owner, stranger = env.user(), env.user()
    r = await env.upload(owner, (HEADER + "AAPL,0,150,2026-03-02,\n").encode(), file_name="bad.csv")
    assert r.status_code == 200 and r.json()["data"]["status"] == "rejected", r.text
    upload_id = r.json()["data"]["upload_id"]

    body = await listed(env, owner)
    (note,) = body["data"]
    assert (note["kind"], note["severity"], note["read"], note["portfolio_id"]) == (
        "onboarding_failed",
        "error",
        False,
        None,
    )
    assert note["title"] == "Upload of bad.csv was rejected" and "1 error(s)" in note["message"]
    assert note["link"] == f"/api/v1/portfolio/upload/{upload_id}/results"
    assert note["details"]["upload_id"] == upload_id and note["email"] == {"status": "skipped", "sent_at": None}
    assert body["meta"]["unread_count"] == 1 and body["page"]["total"] == 1

    assert (await listed(env, stranger))["data"] == []
    r = await env.client.post(f"/api/v1/notifications/{note['id']}/read", headers=env.headers(stranger))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOTIFICATION_NOT_FOUND", r.text
    assert (await listed(env, owner, unread="true"))["page"]["total"] == 1, "a stranger's call changed nothing"

    first = await env.client.post(f"/api/v1/notifications/{note['id']}/read", headers=env.headers(owner))
    assert first.status_code == 200 and first.json()["data"]["read"] is True, first.text
    again = await env.client.post(f"/api/v1/notifications/{note['id']}/read", headers=env.headers(owner))
    assert again.json()["data"]["read_at"] == first.json()["data"]["read_at"]
    unread = await listed(env, owner, unread="true")
    assert unread["data"] == [] and unread["meta"]["unread_count"] == 0
    assert (await listed(env, owner, kind="onboarding_failed,run_failed"))["page"]["total"] == 1
    assert (await listed(env, owner, kind="run_failed"))["page"]["total"] == 0


async def test_first_snapshot_completes_onboarding_once_even_when_delivered_twice(env: Env) -> None:
    user = env.user()
    r = await env.upload(user, (HEADER + "MSFT,10,420,2026-03-02,\n").encode(), portfolio_name="Notified book")
    pid = r.json()["data"]["portfolio_id"]
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=env.headers(user))
    assert r.status_code == 202, r.text
    await env.execute(
        "INSERT INTO stress.portfolio_snapshot (portfolio_id, snapshot_date) VALUES ($1, $2)", uuid.UUID(pid), TODAY
    )
    event = SnapshotCreated(as_of=TODAY, portfolio_id=uuid.UUID(pid), snapshot_date=TODAY)
    await env.bus.publish(event)
    await env.bus.publish(event)  # at-least-once: the same event again
    job = await env.job(user, r.json()["data"]["job_id"])
    assert job["status"] == "completed", job
    (note,) = await eventually(env, user, 1)
    assert (note["kind"], note["portfolio_id"], note["title"]) == (
        "onboarding_completed",
        pid,
        "Notified book is onboarded",
    )
    assert note["details"] == {"first_snapshot_date": TODAY.isoformat()}
    # A later daily snapshot is no onboarding.
    later = date(2026, 11, 26)
    await env.execute(
        "INSERT INTO stress.portfolio_snapshot (portfolio_id, snapshot_date) VALUES ($1, $2)", uuid.UUID(pid), later
    )
    await env.bus.publish(SnapshotCreated(as_of=later, portfolio_id=uuid.UUID(pid), snapshot_date=later))
    await env.bus.drain()
    assert len((await listed(env, user))["data"]) == 1


async def test_a_portfolio_that_never_went_through_onboarding_gets_no_completion(env: Env) -> None:
    user = env.user()
    (pid,) = await new_portfolios(env, user, 1, onboarded=True)  # like a seeded book: no onboarding steps
    ids = await service.record_snapshots(
        env.db, [SnapshotCreated(as_of=TODAY, portfolio_id=pid, snapshot_date=TODAY)], mail=False
    )
    assert ids == []


async def test_onboarding_that_ends_without_a_snapshot_notifies_a_failure(env: Env) -> None:
    user = env.user()
    r = await env.upload(user, (HEADER + "JPM,10,170,2026-03-02,\n").encode(), portfolio_name="Stalled book")
    pid = r.json()["data"]["portfolio_id"]
    r = await env.client.post(f"/api/v1/portfolio/onboarding/{pid}/complete", headers=env.headers(user))
    await env.execute(
        "INSERT INTO marketdata.batch_run (portfolio_ids, status, as_of_date) VALUES ($1, 'failed', $2)",
        [uuid.UUID(pid)],
        TODAY,
    )
    assert (await env.job(user, r.json()["data"]["job_id"]))["status"] == "partial"
    (note,) = await eventually(env, user, 1)
    assert (note["kind"], note["severity"], note["portfolio_id"]) == ("onboarding_failed", "warning", pid)
    assert note["title"] == "Onboarding of Stalled book finished without analytics"
    assert "next daily run" in note["message"]


# ------------------------------------------------------------------------------------- run failures


async def test_a_failed_step_delivered_twice_makes_one_notification(env: Env) -> None:
    user = env.user()
    (pid,) = await new_portfolios(env, user, 1)
    run = uuid.uuid4()
    event = GreeksComputed(as_of=TODAY, run_id=run, portfolio_id=pid, step=failed("greeks", "no volatility"))
    await env.bus.publish(event)
    await env.bus.publish(event)
    await env.bus.publish(GreeksComputed(as_of=TODAY, run_id=run, portfolio_id=pid, step=failed("greeks")))
    (note,) = await eventually(env, user, 1)
    await env.bus.drain()
    assert len((await listed(env, user))["data"]) == 1
    assert note["kind"] == "run_failed" and note["details"]["run_id"] == str(run)
    assert note["details"]["error"] == {"code": "STEP_FAILED", "message": "no volatility"}
    # Another step of the same run is another notification; the newest comes first.
    await env.bus.publish(StressComputed(as_of=TODAY, run_id=run, portfolio_id=pid, step=failed("stress_tests")))
    newest, oldest = await eventually(env, user, 2)
    assert (newest["details"]["step"], oldest["details"]["step"]) == ("stress_tests", "greeks")


async def test_a_batch_of_failures_costs_two_statements_and_no_failure_costs_none(env: Env) -> None:
    user = env.user()
    pids = await new_portfolios(env, user, 200)
    run = uuid.uuid4()
    events = [GreeksComputed(as_of=TODAY, run_id=run, portfolio_id=p, step=failed("greeks")) for p in pids]
    with statements(env) as seen:
        created = await service.record_run_failures(env.db, events, mail=False)
    assert len(created) == 200
    assert len([s for s in seen if not s.strip().upper().startswith(("BEGIN", "COMMIT"))]) == 2, seen
    with statements(env) as seen:
        again = await service.record_run_failures(env.db, events, mail=False)
    assert again == [] and (await listed(env, user, limit="500"))["page"]["total"] == 200

    fine = [GreeksComputed(as_of=TODAY, run_id=run, portfolio_id=p) for p in pids]
    with statements(env) as seen:
        assert await service.record_run_failures(env.db, fine, mail=False) == []
    assert seen == []


async def test_a_removed_portfolio_gets_no_notification_and_demo_users_can_be_forgotten(env: Env) -> None:
    user = env.user()
    (pid,) = await new_portfolios(env, user, 1)
    from ingest.notifications.compose import Draft

    ghost = Draft(user, "run_failed", "ghost", "error", "t", "m", portfolio_id=uuid.uuid4())
    real = Draft(user, "run_failed", "real", "error", "t", "m", portfolio_id=pid)
    async with env.db.transaction() as session:
        created = await store.insert_drafts(session, [ghost, real], mail=False)
    assert len(created) == 1
    async with env.db.transaction() as session:
        await store.delete_for_users(session, [user])
    assert (await listed(env, user))["data"] == []


# ------------------------------------------------------------------------------------- API validation


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"unread": "maybe"}, "query.unread"),
        ({"kind": "run_failed,gossip"}, "query.kind"),
    ],
)
async def test_malformed_list_parameters_answer_422(env: Env, params: dict[str, str], field: str) -> None:
    r = await env.client.get("/api/v1/notifications", params=params, headers=env.headers(env.user()))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == field


async def test_read_all_marks_only_the_callers_notifications(env: Env) -> None:
    owner, other = env.user(), env.user()
    (mine,) = await new_portfolios(env, owner, 1)
    (theirs,) = await new_portfolios(env, other, 1)
    events = [GreeksComputed(as_of=TODAY, portfolio_id=p, step=failed("greeks")) for p in (mine, theirs)]
    await service.record_run_failures(env.db, events, mail=False)
    r = await env.client.post("/api/v1/notifications/read-all", headers=env.headers(owner))
    assert r.status_code == 200 and r.json()["data"] == {"marked_read": 1}, r.text
    r = await env.client.post("/api/v1/notifications/read-all", headers=env.headers(owner))
    assert r.json()["data"] == {"marked_read": 0}
    assert (await listed(env, other))["meta"]["unread_count"] == 1
    bad = await env.client.post("/api/v1/notifications/not-a-uuid/read", headers=env.headers(owner))
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "path.id"


async def test_notifications_past_retention_are_purged(env: Env) -> None:
    user = env.user()
    (pid,) = await new_portfolios(env, user, 1)
    old, fresh = await service.record_run_failures(
        env.db,
        [
            GreeksComputed(as_of=TODAY, run_id=uuid.uuid4(), portfolio_id=pid, step=failed("greeks")),
            GreeksComputed(as_of=TODAY, run_id=uuid.uuid4(), portfolio_id=pid, step=failed("greeks")),
        ],
        mail=False,
    )
    await env.execute("UPDATE ingest.notification SET created_at = now() - interval '181 days' WHERE id = $1", old)
    async with env.db.transaction() as session:
        assert await store.purge_older_than(session, 180) >= 1
    assert [n["id"] for n in (await listed(env, user))["data"]] == [str(fresh)]
