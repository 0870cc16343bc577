"""All-in-one mode: the daily cycle runs end to end and the API serves demo.md §7's numbers."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import DEMO_EMAILS, FIXTURE_AS_OF, System

from common.events import STEP_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# demo.md §7, market-value (capital) view in fixture mode.
EXPECTED = {
    "individual": {
        "long": "485000.00",
        "short": "0.00",
        "gross": "485000.00",
        "net": "485000.00",
        "cash": "0.00",
        "equity": "485000.00",
        "unrealized": "0.00",
        "notional": "485000.00",
        "positions": 16,
    },
    "hnw": {
        "long": "1326734.75",
        "short": "0.00",
        "gross": "1326734.75",
        "net": "1326734.75",
        "cash": "0.00",
        "equity": "1326734.75",
        "unrealized": "0.00",
        "notional": "1326734.75",
        "positions": 17,
    },
    "hedgefund": {
        "long": "3952950.00",
        "short": "-1586750.00",
        "gross": "5539700.00",
        "net": "2366200.00",
        "cash": "1135300.00",
        "equity": "3501500.00",
        "unrealized": "301500.00",
        "notional": "35700700.00",
        "positions": 30,
    },
}


@pytest.mark.parametrize("who", ["individual", "hnw", "hedgefund"])
async def test_portfolio_summary_matches_the_fixture_numbers(system: System, who: str) -> None:
    token = await system.token(DEMO_EMAILS[who])
    async with system.client() as c:
        resp = await c.get("/api/v1/portfolio", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    data, want = body["data"], EXPECTED[who]
    assert data["as_of"] == FIXTURE_AS_OF.isoformat()
    assert body["meta"]["data_source"] == "fixture"
    mv = data["market_value"]
    assert (mv["long"], mv["short"], mv["gross"], mv["net"]) == (
        want["long"],
        want["short"],
        want["gross"],
        want["net"],
    )
    assert data["cash_balance"] == want["cash"]
    assert data["equity"] == want["equity"]
    assert data["pnl"]["unrealized"] == want["unrealized"]
    assert data["notional"] == want["notional"]
    assert data["counts"]["total"] == want["positions"]
    assert data["greeks"]["dollar_delta"] == data["exposure"]["net"]
    assert data["freshness"]["last_snapshot_date"] == FIXTURE_AS_OF.isoformat()
    if who == "hedgefund":
        assert data["counts"] == {"total": 30, "LONG": 13, "SHORT": 9, "LC": 4, "LP": 0, "SC": 1, "SP": 3}
        assert (mv["long_pct"], mv["short_pct"], mv["gross_pct"], mv["net_pct"]) == (1.1289, -0.4532, 1.5821, 0.6758)
    else:
        ex = data["exposure"]
        assert (ex["long"], ex["gross"], ex["net"]) == (want["long"], want["gross"], want["net"])


async def test_cycle_left_a_snapshot_for_every_demo_portfolio_and_a_completed_run(system: System) -> None:
    rows = await system.inner.db.fetch(
        "SELECT p.name, s.snapshot_date, s.source FROM ingest.api_portfolio p "
        "JOIN stress.api_snapshot s ON s.portfolio_id = p.id AND s.snapshot_date = $1 WHERE p.is_demo_seed",
        FIXTURE_AS_OF,
    )
    assert len(rows) == 3
    assert {r["source"] for r in rows} == {"batch"}
    backfilled = await system.inner.db.fetchrow(
        "SELECT count(*) AS n FROM stress.api_snapshot WHERE source = 'backfill'"
    )
    assert backfilled["n"] == 9  # 3 trading days × 3 portfolios
    async with system.client() as c:
        status = await c.get(
            "/api/v1/admin/batch/status", headers={"Authorization": f"Bearer {await system.admin_token()}"}
        )
    run = status.json()["data"]["run"]
    assert run["status"] == "completed"
    assert [s["job"] for s in run["steps"]] == list(STEP_NAMES)
    assert all(s["status"] == "completed" for s in run["steps"]), run["steps"]


async def test_repeating_the_daily_trigger_for_a_completed_date_changes_nothing(system: System) -> None:
    from tests.e2e.conftest import run_cycle_via_api

    before = await system.inner.db.fetchrow("SELECT count(*) AS n, max(created_at) AS t FROM stress.api_snapshot")
    async with system.client() as c:
        job = await run_cycle_via_api(c, await system.admin_token(), {"as_of_date": FIXTURE_AS_OF.isoformat()})
    assert job["status"] == "completed"
    after = await system.inner.db.fetchrow("SELECT count(*) AS n, max(created_at) AS t FROM stress.api_snapshot")
    assert (after["n"], after["t"]) == (before["n"], before["t"])
