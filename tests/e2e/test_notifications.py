"""Notifications through the gateway, in both running modes (api.md §4.9, §6 row 13).

A demo user onboards a portfolio through the upload API (#24, #62): when its first snapshot is stored
the user gets an `onboarding_completed` notification, listed by GET /api/v1/notifications and in
/auth/me, invisible to another user (whose read call answers 404). A rejected upload gives
`onboarding_failed`; a run step reported failed for the portfolio (a `greeks.computed` event with
`step.status = "failed"`, delivered twice as the bus may) gives one `run_failed`. All-in-one mode uses
the session `system` and ends with a demo reset (which also forgets demo users' notifications);
distributed mode runs six `sigmasight serve` processes on PostgreSQL + RabbitMQ (tests/e2e/cluster.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.e2e import test_risk_routes
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import DEMO_EMAILS, FIXTURE_AS_OF, System
from tests.e2e.surface_support import (
    assert_error,
    bearer,
    complete_onboarding,
    demo_reset_and_settle,
    positions_csv,
    roomy_rate_limit,
    token,
    unique,
    upload,
)

from common.bus import AmqpBus
from common.events import Event, GreeksComputed, StepError, StepInfo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

Publish = Callable[[Event], Awaitable[None]]


async def notifications(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    resp = await client.get("/api/v1/notifications", headers=headers, params={"limit": "100", **params})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def wait_for_notification(
    client: httpx.AsyncClient, headers: dict[str, str], match: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The caller's notification that `match`es, once it exists."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [n for n in (await notifications(client, headers))["data"] if match(n)]
        if found:
            return found[0]
        assert loop.time() < deadline, "no matching notification appeared"
        await asyncio.sleep(0.2)


def failed_greeks(portfolio_id: str, run_id: uuid.UUID) -> GreeksComputed:
    now = datetime.now(UTC)
    step = StepInfo(
        name="greeks",
        status="failed",
        started_at=now,
        finished_at=now,
        error=StepError(code="GREEKS_FAILED", message="no volatility for 2 options"),
    )
    return GreeksComputed(
        as_of=FIXTURE_AS_OF, run_id=run_id, portfolio_id=uuid.UUID(portfolio_id), step=step, producer="greeks"
    )


async def check_notifications(
    client: httpx.AsyncClient, owner: dict[str, str], other: dict[str, str], publish: Publish
) -> str:
    """The whole user-visible behaviour; returns the onboarded portfolio's id."""
    name = unique("notified")
    _, status = await upload(client, owner, positions_csv([("MSFT", "7", "300.00", "2026-01-05")]), portfolio_name=name)
    pid = status["portfolio_id"]
    await complete_onboarding(client, owner, pid)

    done = await wait_for_notification(
        client, owner, lambda n: n["kind"] == "onboarding_completed" and n["portfolio_id"] == pid
    )
    assert (done["severity"], done["read"], done["title"]) == ("info", False, f"{name} is onboarded")
    assert done["link"] == f"/api/v1/portfolio?portfolio_id={pid}" and done["details"]["first_snapshot_date"]
    assert done["email"] == {"status": "skipped", "sent_at": None}  # no SMTP_URL in these tests

    # Only the owner sees it; another user's read call is a plain 404 and changes nothing.
    assert done["id"] not in {n["id"] for n in (await notifications(client, other))["data"]}
    assert_error(
        await client.post(f"/api/v1/notifications/{done['id']}/read", headers=other), 404, "NOTIFICATION_NOT_FOUND"
    )
    me = (await client.get("/api/v1/auth/me", headers=owner)).json()["data"]["notifications"]
    assert me["unread_count"] >= 1 and done["id"] in {n["id"] for n in me["latest"]}, me

    # A rejected upload of a new portfolio is a failed onboarding.
    resp = await client.post(
        "/api/v1/portfolio/upload",
        headers={**owner, "Prefer": "wait=10"},
        files={"file": ("zero.csv", positions_csv([("AAPL", "0", "150.00", "2026-01-05")]), "text/csv")},
    )
    assert resp.status_code in (200, 202), resp.text
    upload_id = resp.json()["data"]["upload_id"]
    rejected = await wait_for_notification(client, owner, lambda n: n["details"].get("upload_id") == upload_id)
    assert (rejected["kind"], rejected["title"]) == ("onboarding_failed", "Upload of zero.csv was rejected")
    assert rejected["link"] == f"/api/v1/portfolio/upload/{upload_id}/results"

    # A failed run step, delivered twice, makes one run_failed notification.
    run_id = uuid.uuid4()
    event = failed_greeks(pid, run_id)
    await publish(event)
    await publish(event)
    failure = await wait_for_notification(client, owner, lambda n: n["details"].get("run_id") == str(run_id))
    assert (failure["kind"], failure["severity"], failure["portfolio_id"]) == ("run_failed", "error", pid)
    assert failure["details"]["error"] == {"code": "GREEKS_FAILED", "message": "no volatility for 2 options"}
    await asyncio.sleep(1.0)  # room for the duplicate to be handled
    listed = (await notifications(client, owner, kind="run_failed"))["data"]
    assert [n["id"] for n in listed if n["details"].get("run_id") == str(run_id)] == [failure["id"]]

    # The owner reads one: it leaves the unread list.
    read = await client.post(f"/api/v1/notifications/{done['id']}/read", headers=owner)
    assert read.status_code == 200 and read.json()["data"]["read"] is True, read.text
    unread = await notifications(client, owner, unread="true")
    assert done["id"] not in {n["id"] for n in unread["data"]} and failure["id"] in {n["id"] for n in unread["data"]}
    assert unread["meta"]["unread_count"] == unread["page"]["total"]
    return str(pid)


# --------------------------------------------------------------------------------------- all-in-one


async def test_notifications_all_in_one(system: System) -> None:
    async with roomy_rate_limit(system), system.client() as client:
        owner = bearer(await token(system, DEMO_EMAILS["hnw"]))
        other = bearer(await token(system, DEMO_EMAILS["individual"]))
        try:
            await check_notifications(client, owner, other, system.inner.bus.publish)
        finally:
            await demo_reset_and_settle(system, client)
        # The demo reset restores demo users exactly, notifications included.
        assert (await notifications(client, owner))["data"] == []


# --------------------------------------------------------------------------------------- distributed

# Six service processes on a fresh seeded database after one daily cycle (the module fixture
# `cycled_cluster` of test_risk_routes, instantiated for this module under this name).
cluster_after_one_cycle = test_risk_routes.cycled_cluster
login = test_risk_routes._login


@pytest.mark.slow
async def test_notifications_distributed(cluster_after_one_cycle: Cluster) -> None:
    bus = AmqpBus(cluster_after_one_cycle.amqp_url, namespace=cluster_after_one_cycle.namespace)
    try:
        async with httpx.AsyncClient(base_url=cluster_after_one_cycle.gateway_url, timeout=30) as client:
            owner = bearer(await login(client, DEMO_EMAILS["hnw"], "demo12345"))
            other = bearer(await login(client, DEMO_EMAILS["individual"], "demo12345"))
            await check_notifications(client, owner, other, bus.publish)
    except AssertionError as exc:  # the ingest log explains a missing notification
        raise AssertionError(f"{exc}\n--- ingest log ---\n{cluster_after_one_cycle.tail('ingest', 80)}") from exc
    finally:
        await bus.close()
