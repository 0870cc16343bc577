"""Seed, the `aggregations` step and the read API against demo.md §7 / users.md PM-01, FE-08, AG-01."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from tests.integration.ingest.book_harness import (
    DELTA_PS,
    FIXTURE_CLOSE,
    HF_TOKEN,
    HNW_TOKEN,
    IND_TOKEN,
    P0,
    T0,
    Harness,
    close_harness,
    open_harness,
    position_id,
    set_closes,
    trading_days,
)

from common.events import CycleStarted, GreeksComputed, SnapshotCreated
from ingest.demo_data import HEDGE_FUND, HIGH_NET_WORTH, INDIVIDUAL
from ingest.instruments import parse_occ
from ingest.seed import seed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def h(pg_admin_url: str) -> AsyncIterator[Harness]:
    harness = await open_harness(pg_admin_url, "val")
    await harness.value()
    yield harness
    await close_harness(harness, pg_admin_url)


def expected_option_exposure() -> tuple[Decimal, Decimal]:
    long_, short = Decimal(0), Decimal(0)
    for pos in HEDGE_FUND.positions:
        occ = parse_occ(pos.symbol)
        if occ is None:
            continue
        e = (pos.quantity * 100 * Decimal(str(DELTA_PS[pos.symbol])) * FIXTURE_CLOSE[occ.underlying]).quantize(
            Decimal("0.01")
        )
        if e > 0:
            long_ += e
        else:
            short += e
    return long_, short


async def test_seeding_twice_leaves_three_portfolios_63_positions_and_9_tags(h: Harness) -> None:
    assert await seed(h.db) == {"portfolios": 3, "positions": 63, "tags": 9}
    assert await h.scalar("SELECT count(*) FROM ingest.portfolio") == 3
    assert await h.scalar("SELECT count(*) FROM ingest.position") == 63
    assert await h.scalar("SELECT count(*) FROM ingest.tag") == 9
    assert await h.scalar("SELECT count(*) FROM ingest.tag WHERE tag_type = 'strategy'") == 3
    assert await h.scalar("SELECT count(*) FROM ingest.position_tag") == 20 + 19 + 30
    assert await h.scalar(
        "SELECT sum(cost_basis) FROM ingest.position WHERE portfolio_id = :p", p=INDIVIDUAL.portfolio_id
    ) == Decimal("485000.00")
    assert await h.scalar(
        "SELECT sum(cost_basis) FROM ingest.position WHERE portfolio_id = :p", p=HIGH_NET_WORTH.portfolio_id
    ) == Decimal("1326734.75")
    assert await h.scalar(
        "SELECT sum(cost_basis) FROM ingest.position WHERE portfolio_id = :p", p=HEDGE_FUND.portfolio_id
    ) == Decimal("2064700.00")
    assert await h.scalar("SELECT count(*) FROM ingest.portfolio WHERE is_default AND is_demo_seed") == 3


async def test_hedge_fund_summary_matches_demo_fixture_numbers(h: Harness) -> None:
    resp = await h.get("/api/v1/portfolio", HF_TOKEN)
    assert resp.status_code == 200, resp.text
    body, meta = resp.json()["data"], resp.json()["meta"]
    assert meta["as_of"] == "2026-11-24" and meta["data_source"] == "fixture"
    assert body["portfolio"]["name"] == "Demo Hedge Fund Style Investor Portfolio"
    assert body["market_value"]["long"] == "3952950.00"
    assert body["market_value"]["short"] == "-1586750.00"
    assert body["market_value"]["gross"] == "5539700.00"
    assert body["market_value"]["net"] == "2366200.00"
    assert body["cash_balance"] == "1135300.00"
    assert body["equity"] == "3501500.00"
    assert body["pnl"]["unrealized"] == "301500.00"
    assert body["pnl"]["day"] == "0.00"
    assert body["notional"] == "35700700.00"
    assert body["counts"] == {"total": 30, "LONG": 13, "SHORT": 9, "LC": 4, "LP": 0, "SC": 1, "SP": 3}
    mv = body["market_value"]
    assert (mv["long_pct"], mv["short_pct"], mv["gross_pct"], mv["net_pct"]) == (1.1289, -0.4532, 1.5821, 0.6758)
    long_opt, short_opt = expected_option_exposure()
    exposure = body["exposure"]
    assert Decimal(exposure["long"]) == Decimal("3536700.00") + long_opt
    assert Decimal(exposure["short"]) == Decimal("-1419000.00") + short_opt
    assert Decimal(exposure["gross"]) == Decimal(exposure["long"]) - Decimal(exposure["short"])
    assert Decimal(exposure["net"]) == Decimal(exposure["long"]) + Decimal(exposure["short"])
    assert body["greeks"]["dollar_delta"] == exposure["net"]
    assert body["coverage"] == {"positions_unpriced": 0, "positions_stale": 0, "options_without_greeks": 0}
    assert body["valued_at"].endswith("Z") and body["as_of"] == "2026-11-24"
    assert body["freshness"]["prices_as_of"] == "2026-11-24"


@pytest.mark.parametrize(
    ("token", "value", "count"),
    [(IND_TOKEN, "485000.00", 16), (HNW_TOKEN, "1326734.75", 17)],
)
async def test_long_only_books_have_identical_views_and_notional(
    h: Harness, token: str, value: str, count: int
) -> None:
    body = (await h.get("/api/v1/portfolio", token)).json()["data"]
    for view in ("market_value", "exposure"):
        assert body[view]["long"] == body[view]["gross"] == body[view]["net"] == value
        assert body[view]["short"] == "0.00"
    assert body["notional"] == value and body["equity"] == value and body["cash_balance"] == "0.00"
    assert body["pnl"]["unrealized"] == "0.00"
    assert body["counts"]["LONG"] == body["counts"]["total"] == count


async def test_exposure_totals_equal_the_sum_over_listed_positions(h: Harness) -> None:
    summary = (await h.get("/api/v1/portfolio")).json()["data"]
    rows = (await h.get("/api/v1/positions?limit=1000")).json()["data"]
    exposures = [Decimal(r["dollar_exposure"]) for r in rows]
    assert sum(abs(e) for e in exposures) == Decimal(summary["exposure"]["gross"])
    assert sum(exposures) == Decimal(summary["exposure"]["net"])
    for row in rows:
        if row["instrument_type"] == "stock":
            assert row["dollar_exposure"] == row["market_value"]
            assert row["greeks"] is None
        else:
            assert row["option"]["days_to_expiry"] > 0 and row["greeks"]["status"] == "ok"
    by_symbol = {r["symbol"]: r for r in rows}
    assert Decimal(by_symbol["TSLA270820C00300000"]["dollar_exposure"]) < 0  # written call: short exposure
    assert Decimal(by_symbol["AAPL270820P00200000"]["dollar_exposure"]) > 0  # written put: long exposure
    assert by_symbol["VIX270721C00025000"]["notional"] == "555000.00"
    assert by_symbol["META"]["unrealized_pnl"] == "265000.00"


async def test_top_five_by_market_value_and_page_metadata(h: Harness) -> None:
    resp = await h.get("/api/v1/positions?sort=-market_value&limit=5")
    assert resp.status_code == 200
    payload = resp.json()
    assert [p["symbol"] for p in payload["data"]] == ["NVDA", "META", "MSFT", "AAPL", "GOOGL"]
    assert payload["page"]["total"] == 30 and payload["page"]["has_more"] is True
    assert payload["meta"]["totals"]["market_value"]["gross"] == "5539700.00"
    assert payload["meta"]["totals"]["unrealized_pnl"] == "301500.00"


async def test_paging_returns_ten_then_the_last_ten_and_rejects_unknown_sort(h: Harness) -> None:
    first = (await h.get("/api/v1/positions?limit=10&offset=0")).json()
    last = (await h.get("/api/v1/positions?limit=10&offset=20")).json()
    everything = (await h.get("/api/v1/positions?limit=1000")).json()["data"]
    assert len(first["data"]) == 10 and first["page"]["total"] == 30
    assert [p["id"] for p in last["data"]] == [p["id"] for p in everything[20:]]
    assert last["page"]["has_more"] is False
    desc = [
        Decimal(p["market_value"])
        for p in (await h.get("/api/v1/positions?sort=-market_value&limit=100")).json()["data"]
    ]
    assert desc == sorted(desc, reverse=True)
    bad = await h.get("/api/v1/positions?sort=-colour")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad.json()["error"]["details"][0]["field"] == "query.sort"
    assert (await h.get("/api/v1/positions?limit=1001")).status_code == 422


async def test_filters_narrow_the_list_and_totals(h: Harness) -> None:
    sp = (await h.get("/api/v1/positions?type=SP")).json()
    assert sorted(p["symbol"][:4] for p in sp["data"]) == ["AAPL", "META", "MSFT"]
    assert sp["meta"]["totals"]["market_value"]["net"] == "-116750.00"
    overlay = (await h.get("/api/v1/positions?tags=Options%20Overlay")).json()
    assert overlay["page"]["total"] == 8
    shorts = (await h.get("/api/v1/positions?view=shorts")).json()
    assert shorts["page"]["total"] == 13
    assert (await h.get("/api/v1/positions?q=nv")).json()["page"]["total"] == 2
    assert (await h.get("/api/v1/positions?underlying=aapl,msft")).json()["page"]["total"] == 4
    assert (await h.get("/api/v1/positions?sector=Financials")).json()["page"]["total"] == 4
    assert (await h.get("/api/v1/positions?expiring_within_days=250")).json()["page"]["total"] == 1
    assert (await h.get("/api/v1/positions?min_market_value=400000")).json()["page"]["total"] == 3
    assert (await h.get("/api/v1/positions?type=XX")).status_code == 422
    assert (await h.get("/api/v1/positions?tags=Nope")).status_code == 422
    both = await h.get("/api/v1/positions?tags=Core%20Holdings,Tech%20Growth&tag_mode=all", IND_TOKEN)
    assert both.json()["page"]["total"] == 4
    either = await h.get("/api/v1/positions?tags=Core%20Holdings,Tech%20Growth&tag_mode=any", IND_TOKEN)
    assert either.json()["page"]["total"] == 14


async def test_grouping_by_type_partitions_the_book_and_sums_to_the_totals(h: Harness) -> None:
    summary = (await h.get("/api/v1/portfolio")).json()["data"]
    data = (await h.get("/api/v1/positions/grouped?by=type")).json()["data"]
    assert {g["key"]: g["count"] for g in data["groups"]} == {"LONG": 13, "SHORT": 9, "LC": 4, "SC": 1, "SP": 3}
    assert data["overlapping"] is False
    for view in ("market_value", "exposure"):
        for side in ("long", "short", "gross", "net"):
            total = sum(Decimal(g[view][side]) for g in data["groups"])
            assert total == Decimal(data["totals"][view][side]) == Decimal(summary[view][side])
    assert sum(Decimal(g["notional"]) for g in data["groups"]) == Decimal(summary["notional"])
    assert sum(g["share_of_gross"] for g in data["groups"]) == pytest.approx(1.0, abs=1e-3)
    gross = [Decimal(g["exposure"]["gross"]) for g in data["groups"]]
    assert gross == sorted(gross, reverse=True)
    for g in data["groups"]:
        assert len(g["positions"]) == g["count"]
        assert Decimal(g["greeks"]["dollar_delta"]) == Decimal(g["exposure"]["net"])


@pytest.mark.parametrize("by", ["strategy", "underlying", "sector", "asset_class"])
async def test_every_additive_grouping_sums_to_the_portfolio_totals(h: Harness, by: str) -> None:
    data = (await h.get(f"/api/v1/positions/grouped?by={by}&include_positions=false")).json()["data"]
    assert sum(g["count"] for g in data["groups"]) == 30
    for view in ("market_value", "exposure"):
        for side in ("long", "short", "gross", "net"):
            assert abs(
                sum(Decimal(g[view][side]) for g in data["groups"]) - Decimal(data["totals"][view][side])
            ) <= Decimal("0.01")
        assert Decimal(data["totals"][view]["gross"]) >= abs(Decimal(data["totals"][view]["net"]))
    assert all("positions" not in g for g in data["groups"])


async def test_strategy_and_tag_groupings_use_their_buckets(h: Harness) -> None:
    strategy = (await h.get("/api/v1/positions/grouped?by=strategy")).json()["data"]["groups"]
    assert {g["key"]: g["count"] for g in strategy} == {
        "Long Momentum": 13,
        "Short Value Traps": 9,
        "Options Overlay": 8,
    }
    assert all(g["tag_id"] for g in strategy)
    overlay = next(g for g in strategy if g["key"] == "Options Overlay")
    assert overlay["market_value"] == {
        "long": "416250.00",
        "short": "-167750.00",
        "gross": "584000.00",
        "net": "248500.00",
    }
    assert overlay["notional"] == "30745000.00" and overlay["unrealized_pnl"] == "36500.00"
    tags = (await h.get("/api/v1/positions/grouped?by=tag", IND_TOKEN)).json()["data"]
    assert tags["overlapping"] is True
    assert {g["key"]: g["count"] for g in tags["groups"]} == {
        "Core Holdings": 12,
        "Tech Growth": 6,
        "Dividend Income": 2,
    }
    none = (await h.get("/api/v1/positions/grouped?by=strategy", IND_TOKEN)).json()["data"]["groups"]
    assert [(g["key"], g["count"]) for g in none] == [("(no strategy)", 16)]
    sectors = (await h.get("/api/v1/positions/grouped?by=sector", IND_TOKEN)).json()["data"]["groups"]
    assert {g["key"]: g["count"] for g in sectors}["ETF/Fund"] == 7
    assert (await h.get("/api/v1/positions/grouped?by=colour")).status_code == 422


async def test_position_detail_has_security_greeks_and_history(h: Harness) -> None:
    pid = position_id(HEDGE_FUND, "SPY270917C00460000")
    resp = await h.get(f"/api/v1/positions/{pid}?include=greeks,history")
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["option"] == {
        "option_type": "C",
        "strike_price": "460.0000",
        "expiration_date": "2027-09-17",
        "days_to_expiry": (date(2027, 9, 17) - T0).days,
    }
    assert data["market_value"] == "150000.00" and data["notional"] == "10600000.00"
    assert data["dollar_exposure"] == "9858000.00"
    assert data["greeks"]["delta"] == pytest.approx(18600.0)
    assert data["security"]["security_type"] == "option"
    assert [v["date"] for v in data["valuations"]] == ["2026-11-24"]
    assert resp.json()["meta"]["data_source"] == "fixture"


async def test_strategies_list_legs_and_untagged_count(h: Harness) -> None:
    payload = (await h.get("/api/v1/strategies")).json()
    assert [(s["name"], s["leg_count"]) for s in payload["data"]] == [
        ("Long Momentum", 13),
        ("Options Overlay", 8),
        ("Short Value Traps", 9),
    ]
    assert payload["meta"]["untagged_positions"] == 0
    svt = next(s for s in payload["data"] if s["name"] == "Short Value Traps")
    assert svt["market_value"]["net"] == "-1419000.00" and len(svt["legs"]) == 9
    ind = (await h.get("/api/v1/strategies", IND_TOKEN)).json()
    assert ind["data"] == [] and ind["meta"]["untagged_positions"] == 16


async def test_repeated_delivery_values_once_and_emits_one_event(h: Harness) -> None:
    before = len(h.events)
    evt = GreeksComputed(as_of=T0, portfolio_id=INDIVIDUAL.portfolio_id)
    await h.bus.publish(evt)
    await h.bus.publish(evt)
    await h.bus.drain()
    mine = [e for e in h.events[before:] if e.portfolio_id == INDIVIDUAL.portfolio_id]
    assert len(mine) == 1 and mine[0].change == "valued" and mine[0].step is not None
    assert mine[0].step.name == "aggregations" and mine[0].step.status == "completed"
    assert mine[0].step.records_processed == 16
    rows = await h.scalar(
        "SELECT count(*) FROM ingest.position_valuation WHERE portfolio_id = :p AND valuation_date = :d",
        p=INDIVIDUAL.portfolio_id,
        d=T0,
    )
    assert rows == 16


async def test_events_without_cascade_are_ignored_and_single_step_trigger_values(h: Harness) -> None:
    before = len(h.events)
    await h.bus.publish(GreeksComputed(as_of=T0, portfolio_id=HIGH_NET_WORTH.portfolio_id, cascade=False))
    await h.bus.drain()
    assert len(h.events) == before
    await h.bus.publish(
        CycleStarted(
            as_of=T0,
            trigger="manual",
            steps=["aggregations"],
            portfolio_ids=[HIGH_NET_WORTH.portfolio_id],
            cascade=False,
        )
    )
    await h.bus.drain()
    new = h.events[before:]
    assert [(e.portfolio_id, e.change, e.cascade) for e in new] == [(HIGH_NET_WORTH.portfolio_id, "valued", False)]


async def test_unknown_portfolio_still_reports_a_failed_step(h: Harness) -> None:
    import uuid

    before = len(h.events)
    ghost = uuid.uuid4()
    await h.bus.publish(GreeksComputed(as_of=T0, portfolio_id=ghost))
    await h.bus.drain()
    failed = [e for e in h.events[before:] if e.portfolio_id == ghost]
    assert len(failed) == 1 and failed[0].step is not None and failed[0].step.status == "failed"


async def test_one_failing_portfolio_in_a_batch_fails_alone(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # api.md §5.3: a portfolio whose valuation raises is reported failed; the rest of the batch commits.
    from ingest import service as ingest_service
    from ingest import valuation_batch

    original = ingest_service.value_portfolio
    day = date(2026, 11, 20)

    async def flaky(session, *, portfolio_id, **kw):  # type: ignore[no-untyped-def]
        if portfolio_id == HEDGE_FUND.portfolio_id:
            raise RuntimeError("simulated valuation bug")
        return await original(session, portfolio_id=portfolio_id, **kw)

    # The batched path (all three together) raises too, as it would with the bad portfolio inside.
    original_many = valuation_batch.value_many

    async def flaky_many(session, *, portfolio_ids, **kw):  # type: ignore[no-untyped-def]
        if HEDGE_FUND.portfolio_id in portfolio_ids:
            raise RuntimeError("simulated valuation bug")
        return await original_many(session, portfolio_ids=portfolio_ids, **kw)

    monkeypatch.setattr(ingest_service, "value_portfolio", flaky)
    monkeypatch.setattr(valuation_batch, "value_many", flaky_many)
    before = len(h.events)
    for book in (INDIVIDUAL, HEDGE_FUND, HIGH_NET_WORTH):
        await h.bus.publish(GreeksComputed(as_of=day, portfolio_id=book.portfolio_id))
    await h.bus.drain()
    steps = {e.portfolio_id: e.step for e in h.events[before:] if e.change == "valued"}
    assert steps[HEDGE_FUND.portfolio_id] is not None and steps[HEDGE_FUND.portfolio_id].status == "failed"
    assert steps[HEDGE_FUND.portfolio_id].error is not None
    assert steps[HEDGE_FUND.portfolio_id].error.code == "VALUATION_FAILED"
    for book in (INDIVIDUAL, HIGH_NET_WORTH):
        step = steps[book.portfolio_id]
        # partial, not failed: no Greeks are stored for this day in the harness.
        assert step is not None and step.status in ("completed", "partial") and step.records_processed
    stored = await h.scalar(
        "SELECT count(DISTINCT portfolio_id) FROM ingest.position_valuation WHERE valuation_date = :d", d=day
    )
    assert stored == 2


async def test_backfill_keeps_current_values_and_daily_pnl_uses_the_previous_close(h: Harness) -> None:
    async with h.db.transaction() as s:
        await set_closes(s, P0, {"AAPL": Decimal("220.00")})
    try:
        await h.value(as_of=T0, books=(INDIVIDUAL,))
        aapl = position_id(INDIVIDUAL, "AAPL")
        assert await h.scalar("SELECT daily_pnl FROM ingest.position WHERE id = :i", i=aapl) == Decimal("425.00")
        await h.value(as_of=P0, books=(INDIVIDUAL,))
        assert await h.scalar("SELECT valuation_date FROM ingest.position WHERE id = :i", i=aapl) == T0
        assert await h.scalar("SELECT last_price FROM ingest.position WHERE id = :i", i=aapl) == Decimal("225.0000")
        assert await h.scalar(
            "SELECT market_value FROM ingest.position_valuation WHERE position_id = :i AND valuation_date = :d",
            i=aapl,
            d=P0,
        ) == Decimal("18700.00")
        body = (await h.get("/api/v1/portfolio", IND_TOKEN)).json()["data"]
        assert body["as_of"] == "2026-11-24" and body["pnl"]["day"] == "425.00"
    finally:
        async with h.db.transaction() as s:
            await set_closes(s, P0, {"AAPL": FIXTURE_CLOSE["AAPL"]})
        await h.value(as_of=T0, books=(INDIVIDUAL,))


async def _snapshot(s: Any, day: date, pnl: str) -> None:
    await s.execute(
        sa.text(
            "INSERT INTO stress.portfolio_snapshot (portfolio_id, snapshot_date, source, equity, cash_balance, "
            "cash_unknown, long_mv, short_mv, gross_mv, net_mv, notional, daily_pnl, num_positions, num_long, "
            "num_short, num_stocks, num_options, market_beta_ex_ante, annualized_volatility, var_95_1d, "
            "inputs_status, engine_version) VALUES (:p, :d, 'batch', 485000, 0, false, 485000, 0, 485000, 485000, "
            "485000, :pnl, 16, 16, 0, 16, 0, 0.951234, 0.16123, 1234.5, 'complete', 'test')"
        ),
        {"p": INDIVIDUAL.portfolio_id, "d": day, "pnl": Decimal(pnl)},
    )


async def test_month_to_date_comes_from_complete_snapshot_history(h: Harness) -> None:
    november = trading_days(date(2026, 11, 1), date(2026, 11, 23))
    assert len(november) == 16
    async with h.db.transaction() as s:
        for day in november:
            await _snapshot(s, day, "10.00")
    try:
        body = (await h.get("/api/v1/portfolio", IND_TOKEN)).json()["data"]
        assert body["pnl"]["mtd"] == "160.00"
        assert body["pnl"]["ytd"] is None  # no snapshots before November
        assert body["risk"] == {"market_beta": 0.9512, "annualized_volatility": 0.1612, "var_95_1d": "1234.50"}
        assert body["freshness"]["last_snapshot_date"] == "2026-11-23"
        async with h.db.transaction() as s:
            await s.execute(
                sa.text("DELETE FROM stress.portfolio_snapshot WHERE portfolio_id = :p AND snapshot_date = :d"),
                {"p": INDIVIDUAL.portfolio_id, "d": date(2026, 11, 10)},
            )
        # Snapshot changes reach ingest as snapshot.created (here written directly, so announce it).
        await h.bus.publish(
            SnapshotCreated(
                as_of=date(2026, 11, 23), portfolio_id=INDIVIDUAL.portfolio_id, snapshot_date=date(2026, 11, 23)
            )
        )
        await h.bus.drain()
        gap = (await h.get("/api/v1/portfolio", IND_TOKEN)).json()["data"]
        assert gap["pnl"]["mtd"] is None
    finally:
        async with h.db.transaction() as s:
            await s.execute(
                sa.text("DELETE FROM stress.portfolio_snapshot WHERE portfolio_id = :p"), {"p": INDIVIDUAL.portfolio_id}
            )
