"""Tags #48-#52 (api.md §4.7) and the demo.md §10.9 tagging flow on the hedge-fund book."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from tests.integration.ingest.book_harness import (
    IND_TOKEN,
    T0,
    Harness,
    close_harness,
    open_harness,
    position_id,
)

from ingest.demo import reset_demo
from ingest.demo_data import HEDGE_FUND, INDIVIDUAL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def shared(pg_admin_url: str) -> AsyncIterator[Harness]:
    harness = await open_harness(pg_admin_url, "tags")
    await harness.value()
    yield harness
    await close_harness(harness, pg_admin_url)


@pytest.fixture
async def h(shared: Harness) -> Harness:
    """Each test starts from the seeded demo state."""
    async with shared.db.transaction() as s:
        await reset_demo(s, T0)
    shared.events.clear()
    return shared


async def tag_set(h: Harness, pid: uuid.UUID) -> list[str]:
    async with h.db.session() as s:
        rows = await s.execute(
            sa.text(
                "SELECT t.name FROM ingest.position_tag pt JOIN ingest.tag t ON t.id = pt.tag_id "
                "WHERE pt.position_id = :p ORDER BY t.name"
            ),
            {"p": pid},
        )
        return [r[0] for r in rows]


async def test_bank_pair_and_tsla_overwrite_flow(h: Harness) -> None:
    jpm, c = position_id(HEDGE_FUND, "JPM"), position_id(HEDGE_FUND, "C")
    created = await h.send("POST", "/api/v1/tags", json={"name": "#strategy:bank-pair", "color": "#3B82F6"})
    assert created.status_code == 201, created.text
    tag = created.json()["data"]
    assert tag["name"] == "bank-pair" and tag["tag_type"] == "strategy" and tag["color"] == "#3B82F6"
    assert created.headers["location"] == f"/api/v1/tags/{tag['id']}"

    conflict = await h.send(
        "POST", "/api/v1/tags/bulk-assign", json={"tag_ids": [tag["id"]], "position_ids": [str(jpm), str(c)]}
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "STRATEGY_CONFLICT"
    assert {d["value"] for d in conflict.json()["error"]["details"]} == {str(jpm), str(c)}
    assert await tag_set(h, jpm) == ["Long Momentum"] and await tag_set(h, c) == ["Short Value Traps"]
    assert h.events == []

    for pid in (jpm, c):
        put = await h.send("PUT", f"/api/v1/positions/{pid}/tags", json={"tag_names": ["bank-pair"]})
        assert put.status_code == 200, put.text
        assert [t["name"] for t in put.json()["data"]["tags"]] == ["bank-pair"]
    assert [(e.change, e.portfolio_id) for e in h.events] == [("tags", HEDGE_FUND.portfolio_id)] * 2

    groups = (await h.get("/api/v1/positions/grouped?by=strategy")).json()["data"]["groups"]
    by_key = {g["key"]: g for g in groups}
    pair = by_key["bank-pair"]
    assert pair["count"] == 2 and pair["tag_id"] == tag["id"]
    assert pair["exposure"]["net"] == "60000.00" and pair["exposure"]["gross"] == "280000.00"
    assert pair["unrealized_pnl"] == "0.00"
    assert by_key["Long Momentum"]["count"] == 12 and by_key["Short Value Traps"]["count"] == 8

    overwrite = await h.send("POST", "/api/v1/tags", json={"name": "#strategy:tsla-overwrite"})
    assert overwrite.status_code == 201
    for symbol in ("TSLA", "TSLA270820C00300000"):
        put = await h.send(
            "PUT", f"/api/v1/positions/{position_id(HEDGE_FUND, symbol)}/tags", json={"tag_names": ["tsla-overwrite"]}
        )
        assert put.status_code == 200
    tsla = next(
        g
        for g in (await h.get("/api/v1/positions/grouped?by=strategy")).json()["data"]["groups"]
        if g["key"] == "tsla-overwrite"
    )
    assert tsla["unrealized_pnl"] == "-3000.00"
    assert Decimal(tsla["exposure"]["net"]) < Decimal(800 * 255)

    strategies = (await h.get("/api/v1/strategies")).json()
    assert {s["name"]: s["leg_count"] for s in strategies["data"]} == {
        "bank-pair": 2,
        "tsla-overwrite": 2,
        "Long Momentum": 11,
        "Short Value Traps": 8,
        "Options Overlay": 7,
    }
    assert sum(s["leg_count"] for s in strategies["data"]) == 30

    deleted = await h.send("DELETE", f"/api/v1/tags/{tag['id']}?force=true")
    assert deleted.status_code == 204
    groups = (await h.get("/api/v1/positions/grouped?by=strategy")).json()["data"]["groups"]
    assert {g["key"]: g["count"] for g in groups}["(no strategy)"] == 2
    assert await h.scalar("SELECT deleted_at IS NOT NULL FROM ingest.tag WHERE id = :t", t=uuid.UUID(tag["id"]))


async def test_tag_rules_name_uniqueness_and_deletion_guard(h: Harness) -> None:
    dup = await h.send("POST", "/api/v1/tags", json={"name": "  long   MOMENTUM "})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "TAG_EXISTS"
    assert dup.json()["error"]["details"]["existing_tag_id"] == str(HEDGE_FUND.tag_id("Long Momentum"))
    for bad in (
        {"name": "bad tag!"},
        {"name": "a,b"},
        {"name": "x" * 51},
        {"name": "ok", "color": "red"},
        {"name": "ok", "x": 1},
    ):
        resp = await h.send("POST", "/api/v1/tags", json=bad)
        assert resp.status_code == 422, bad
    regular = await h.send("POST", "/api/v1/tags", json={"name": "Hedges & Co/2.0_x-y", "tag_type": "regular"})
    assert regular.status_code == 201 and regular.json()["data"]["tag_type"] == "regular"
    in_use = await h.send("DELETE", f"/api/v1/tags/{HEDGE_FUND.tag_id('Options Overlay')}")
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "TAG_IN_USE"
    assert in_use.json()["error"]["details"]["position_count"] == 8
    unused = await h.send("DELETE", f"/api/v1/tags/{regular.json()['data']['id']}")
    assert unused.status_code == 204
    again = await h.send("DELETE", f"/api/v1/tags/{regular.json()['data']['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "TAG_NOT_FOUND"
    recreated = await h.send("POST", "/api/v1/tags", json={"name": "hedges & co/2.0_x-y"})
    assert recreated.status_code == 201


async def test_tag_list_counts_positions_and_sorts(h: Harness) -> None:
    listing = (await h.get("/api/v1/tags?sort=-position_count")).json()
    assert [(t["name"], t["position_count"]) for t in listing["data"]] == [
        ("Long Momentum", 13),
        ("Short Value Traps", 9),
        ("Options Overlay", 8),
    ]
    assert listing["page"]["total"] == 3
    strategies = (await h.get("/api/v1/tags?tag_type=strategy&q=opt")).json()["data"]
    assert [t["name"] for t in strategies] == ["Options Overlay"]
    ind = (await h.get("/api/v1/tags", IND_TOKEN)).json()["data"]
    assert [t["name"] for t in ind] == ["Core Holdings", "Dividend Income", "Tech Growth"]
    assert (await h.get("/api/v1/tags?sort=colour")).status_code == 422


async def test_one_hundred_tags_per_user(h: Harness) -> None:
    for i in range(97):
        resp = await h.send("POST", "/api/v1/tags", json={"name": f"bulk {i}"})
        assert resp.status_code == 201, resp.text
    over = await h.send("POST", "/api/v1/tags", json={"name": "one too many"})
    assert over.status_code == 409 and over.json()["error"]["code"] == "TAG_LIMIT_REACHED"
    creating = await h.send(
        "PUT",
        f"/api/v1/positions/{position_id(HEDGE_FUND, 'NVDA')}/tags",
        json={"tag_names": ["Long Momentum", "brand new"], "create_missing": True},
    )
    assert creating.status_code == 409 and creating.json()["error"]["code"] == "TAG_LIMIT_REACHED"
    assert (
        await h.scalar(
            "SELECT count(*) FROM ingest.tag WHERE user_id = :u AND deleted_at IS NULL", u=HEDGE_FUND.user_id
        )
        == 100
    )


async def test_twenty_tags_per_position_and_unknown_names(h: Harness) -> None:
    nvda = position_id(HEDGE_FUND, "NVDA")
    names = [f"t{i}" for i in range(20)]
    unknown = await h.send("PUT", f"/api/v1/positions/{nvda}/tags", json={"tag_names": names})
    assert unknown.status_code == 422
    ok = await h.send("PUT", f"/api/v1/positions/{nvda}/tags", json={"tag_names": names, "create_missing": True})
    assert ok.status_code == 200 and len(ok.json()["data"]["tags"]) == 20
    too_many = await h.send(
        "PUT",
        f"/api/v1/positions/{nvda}/tags",
        json={"tag_names": [*names, "Long Momentum"], "create_missing": True},
    )
    assert too_many.status_code == 409 and too_many.json()["error"]["code"] == "TOO_MANY_TAGS"
    extra = await h.send("POST", "/api/v1/tags", json={"name": "extra"})
    bulk = await h.send(
        "POST", "/api/v1/tags/bulk-assign", json={"tag_ids": [extra.json()["data"]["id"]], "position_ids": [str(nvda)]}
    )
    assert bulk.status_code == 409 and bulk.json()["error"]["code"] == "TOO_MANY_TAGS"
    two = await h.send(
        "PUT", f"/api/v1/positions/{nvda}/tags", json={"tag_names": ["Long Momentum", "#strategy:Options Overlay"]}
    )
    assert two.status_code == 409 and two.json()["error"]["code"] == "STRATEGY_CONFLICT"
    assert len(await tag_set(h, nvda)) == 20
    cleared = await h.send("PUT", f"/api/v1/positions/{nvda}/tags", json={"tag_ids": []})
    assert cleared.status_code == 200 and cleared.json()["data"]["tags"] == []


async def test_bulk_assign_adds_removes_and_reports_skipped(h: Harness) -> None:
    core = INDIVIDUAL.tag_id("Core Holdings")
    tsla, aapl = position_id(INDIVIDUAL, "TSLA"), position_id(INDIVIDUAL, "AAPL")
    added = await h.send(
        "POST",
        "/api/v1/tags/bulk-assign",
        IND_TOKEN,
        json={"tag_ids": [str(core)], "position_ids": [str(tsla), str(aapl)]},
    )
    assert added.status_code == 200
    assert added.json()["data"] == {
        "updated_positions": 1,
        "skipped": [{"position_id": str(aapl), "reason": "already_tagged"}],
    }
    removed = await h.send(
        "POST",
        "/api/v1/tags/bulk-assign",
        IND_TOKEN,
        json={"tag_ids": [str(core)], "position_ids": [str(tsla), str(aapl)], "action": "remove"},
    )
    assert removed.json()["data"]["updated_positions"] == 2
    assert await tag_set(h, tsla) == ["Tech Growth"]
    foreign = await h.send(
        "POST",
        "/api/v1/tags/bulk-assign",
        IND_TOKEN,
        json={"tag_ids": [str(core)], "position_ids": [str(position_id(HEDGE_FUND, "NVDA"))]},
    )
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "POSITION_NOT_FOUND"
    foreign_tag = await h.send(
        "POST",
        "/api/v1/tags/bulk-assign",
        IND_TOKEN,
        json={"tag_ids": [str(HEDGE_FUND.tag_id("Long Momentum"))], "position_ids": [str(tsla)]},
    )
    assert foreign_tag.status_code == 404 and foreign_tag.json()["error"]["code"] == "TAG_NOT_FOUND"
