"""Access rules (users.md FE-02, api.md §2.2/§2.8) and the demo reset (#74, users.md DEMO-01)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from tests.integration.ingest.book_harness import (
    ADMIN_TOKEN,
    HF_TOKEN,
    IND_TOKEN,
    T0,
    Harness,
    close_harness,
    open_harness,
    position_id,
    token_for,
)

from ingest.demo_data import DEMO_BOOKS, HEDGE_FUND, INDIVIDUAL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def h(pg_admin_url: str) -> AsyncIterator[Harness]:
    harness = await open_harness(pg_admin_url, "access")
    await harness.value()
    yield harness
    await close_harness(harness, pg_admin_url)


HF_PORTFOLIO = str(HEDGE_FUND.portfolio_id)
READS = [
    f"/api/v1/portfolio?portfolio_id={HF_PORTFOLIO}",
    f"/api/v1/positions?portfolio_id={HF_PORTFOLIO}",
    f"/api/v1/positions/grouped?portfolio_id={HF_PORTFOLIO}",
    f"/api/v1/strategies?portfolio_id={HF_PORTFOLIO}",
    f"/api/v1/tags?portfolio_id={HF_PORTFOLIO}",
]


@pytest.mark.parametrize("path", READS)
async def test_another_users_portfolio_is_not_found(h: Harness, path: str) -> None:
    resp = await h.get(path, IND_TOKEN)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    assert (await h.get(path, HF_TOKEN)).status_code == 200


@pytest.mark.parametrize("path", [*READS, "/api/v1/positions/x", "/api/v1/tags"])
async def test_every_route_needs_a_token(h: Harness, path: str) -> None:
    resp = await h.get(path, None)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHENTICATED"
    bad = await h.get(path, "not-a-jwt")
    assert bad.status_code == 401


async def test_another_users_position_and_tag_are_not_found(h: Harness) -> None:
    nvda = position_id(HEDGE_FUND, "NVDA")
    detail = await h.get(f"/api/v1/positions/{nvda}", IND_TOKEN)
    assert detail.status_code == 404 and detail.json()["error"]["code"] == "POSITION_NOT_FOUND"
    put = await h.send("PUT", f"/api/v1/positions/{nvda}/tags", IND_TOKEN, json={"tag_ids": []})
    assert put.status_code == 404 and put.json()["error"]["code"] == "POSITION_NOT_FOUND"
    tag = await h.send("DELETE", f"/api/v1/tags/{HEDGE_FUND.tag_id('Long Momentum')}?force=true", IND_TOKEN)
    assert tag.status_code == 404 and tag.json()["error"]["code"] == "TAG_NOT_FOUND"
    assert (await h.get(f"/api/v1/positions/{nvda}", HF_TOKEN)).status_code == 200
    assert (await h.get("/api/v1/positions/not-a-uuid", HF_TOKEN)).status_code == 422


async def test_admin_reads_any_portfolio_by_id(h: Harness) -> None:
    resp = await h.get(f"/api/v1/portfolio?portfolio_id={HF_PORTFOLIO}", ADMIN_TOKEN)
    assert resp.status_code == 200 and resp.json()["data"]["equity"] == "3501500.00"
    assert (await h.get(f"/api/v1/positions/{position_id(HEDGE_FUND, 'NVDA')}", ADMIN_TOKEN)).status_code == 200


async def test_user_without_portfolio_gets_the_upload_hint(h: Harness) -> None:
    nobody = token_for("nobody@example.com", user_id=uuid.uuid4())
    resp = await h.get("/api/v1/portfolio", nobody)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "PORTFOLIO_NOT_FOUND"
    assert resp.json()["error"]["hint"] == "POST /api/v1/portfolio/upload"
    assert (await h.get("/api/v1/portfolio?portfolio_id=zzz", nobody)).status_code == 422


async def test_onboarding_portfolio_is_reachable_only_by_explicit_id(h: Harness) -> None:
    user = uuid.uuid4()
    pid = uuid.uuid4()
    async with h.db.transaction() as s:
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (id, user_id, name, status, is_default) "
                "VALUES (:p, :u, 'New', 'onboarding', true)"
            ),
            {"p": pid, "u": user},
        )
    token = token_for("new@example.com", user_id=user)
    assert (await h.get("/api/v1/portfolio", token)).status_code == 404
    explicit = await h.get(f"/api/v1/portfolio?portfolio_id={pid}", token)
    assert explicit.status_code == 200
    data = explicit.json()["data"]
    assert data["portfolio"]["status"] == "onboarding" and data["as_of"] is None
    assert data["freshness"]["data_status"] == "no_history" and data["equity"] == "0.00"


async def test_demo_reset_restores_the_seed_and_removes_what_demo_users_made(h: Harness) -> None:
    extra = uuid.uuid4()
    async with h.db.transaction() as s:
        await s.execute(
            sa.text(
                "INSERT INTO ingest.portfolio (id, user_id, name, status) "
                "VALUES (:p, :u, 'Uploaded Individual', 'active')"
            ),
            {"p": extra, "u": INDIVIDUAL.user_id},
        )
        await s.execute(
            sa.text(
                "INSERT INTO ingest.position (portfolio_id, symbol, instrument_type, position_type, quantity, "
                "multiplier, "
                "underlying_symbol, entry_price, entry_date, source) VALUES "
                "(:p, 'AAPL', 'stock', 'LONG', 5, 1, 'AAPL', 100, '2024-01-02', 'csv'), "
                "(:seed, 'ZZZ', 'stock', 'LONG', 1, 1, 'ZZZ', 1, '2024-01-02', 'api')"
            ),
            {"p": extra, "seed": INDIVIDUAL.portfolio_id},
        )
        await s.execute(
            sa.text(
                "UPDATE ingest.position SET status = 'closed', closed_reason = 'manual', exit_date = '2026-11-20' "
                "WHERE id = :i"
            ),
            {"i": position_id(HEDGE_FUND, "AMD")},
        )
        await s.execute(
            sa.text("UPDATE ingest.portfolio SET cash_balance = 1 WHERE id = :p"), {"p": HEDGE_FUND.portfolio_id}
        )
    assert (await h.send("POST", "/api/v1/tags", json={"name": "#strategy:bank-pair"})).status_code == 201
    jpm = position_id(HEDGE_FUND, "JPM")
    assert (await h.send("PUT", f"/api/v1/positions/{jpm}/tags", json={"tag_names": ["bank-pair"]})).status_code == 200
    deleted = await h.send("DELETE", f"/api/v1/tags/{INDIVIDUAL.tag_id('Dividend Income')}?force=true", IND_TOKEN)
    assert deleted.status_code == 204

    forbidden = await h.send("POST", "/api/v1/admin/demo/reset", HF_TOKEN)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "FORBIDDEN"
    h.events.clear()
    done = await h.send("POST", "/api/v1/admin/demo/reset", ADMIN_TOKEN, headers={"Prefer": "wait=10"})
    assert done.status_code == 200, done.text
    job = done.json()["data"]
    assert job["job_type"] == "demo.reset" and job["status"] == "completed"
    assert job["result"]["portfolios"] == 3 and job["result"]["positions"] == 63 and job["result"]["tags"] == 9
    assert job["result"]["removed_portfolios"] == [str(extra)] and job["result"]["removed_positions"] == 2
    assert job["result"]["removed_tags"] == 1
    assert (await h.get(f"/api/v1/jobs/{job['job_id']}", ADMIN_TOKEN)).json()["data"]["status"] == "completed"

    demo_users = [b.user_id for b in DEMO_BOOKS]
    assert await h.scalar("SELECT count(*) FROM ingest.portfolio WHERE user_id = ANY(:u)", u=demo_users) == 3
    assert await h.scalar("SELECT count(*) FROM ingest.portfolio WHERE is_demo_seed") == 3
    assert await h.scalar("SELECT count(*) FROM ingest.position WHERE status = 'open' AND source = 'seed'") == 63
    assert (
        await h.scalar(
            "SELECT count(*) FROM ingest.tag WHERE deleted_at IS NULL AND user_id = ANY(:u)",
            u=[HEDGE_FUND.user_id, INDIVIDUAL.user_id],
        )
        == 6
    )
    assert await h.scalar("SELECT count(*) FROM ingest.position_tag") == 69
    assert (
        await h.scalar("SELECT cash_balance FROM ingest.portfolio WHERE id = :p", p=HEDGE_FUND.portfolio_id) == 1135300
    )
    removed = [e for e in h.events if e.change == "removed"]
    restored = [e for e in h.events if e.change == "positions"]
    assert [e.portfolio_id for e in removed] == [extra]
    assert {e.portfolio_id for e in restored} == {b.portfolio_id for b in DEMO_BOOKS}
    assert len(restored) == 3 and all(e.trigger == "demo_reset" for e in restored)
    hf = next(e for e in restored if e.portfolio_id == HEDGE_FUND.portfolio_id)
    assert "SPY" in hf.symbols and "SPY270917C00460000" in hf.symbols

    summary = (await h.get("/api/v1/portfolio", HF_TOKEN)).json()["data"]
    assert summary["counts"]["total"] == 30 and summary["equity"] == "3501500.00"

    accepted = await h.send("POST", "/api/v1/admin/demo/reset", ADMIN_TOKEN)
    assert accepted.status_code == 202
    body = accepted.json()["data"]
    assert body["job_id"].startswith("ing_") and accepted.headers["location"] == body["status_url"]
    await h.service.plumbing.runner.wait(uuid.UUID(body["job_id"][4:]), 10)
    assert await h.scalar("SELECT count(*) FROM ingest.position") == 63


async def test_as_of_is_the_valuation_date(h: Harness) -> None:
    resp = await h.get("/api/v1/positions?limit=1", HF_TOKEN)
    assert resp.json()["meta"]["as_of"] == T0.isoformat()
