"""The correlations step on PostgreSQL: what is stored, reuse vs force, retention, skips and failure
containment (calculations.md §7.2–7.3, data-model.md §7.7–7.10, §11)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import stats
from test_correlation_harness import (
    BOOK,
    DAYS,
    P1,
    P2,
    P3,
    SERVICES,
    T0,
    VALUED_DAYS,
    load_synthetic,
    set_exposure,
    synthetic_closes,
)
from tests.conftest import drop_database, make_migrated_database, worker_suffix

from common.db import Database
from factors import correlation_repository
from factors.correlation_compute import CorrelationFilters
from factors.correlation_service import compute_portfolio_correlations

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_corr_store_{worker_suffix()}_{uuid.uuid4().hex[:6]}"
    url = await make_migrated_database(pg_admin_url, name, SERVICES)
    database = Database(url, pool_size=3)
    await load_synthetic(database)
    yield database
    await database.close()
    await drop_database(pg_admin_url, name)


@pytest.fixture(autouse=True)
async def clean(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(sa.text("TRUNCATE factors.correlation_calculation CASCADE"))
    await set_exposure(db, BOOK[0], 30_000.0, VALUED_DAYS)


async def compute(db: Database, portfolio: uuid.UUID = P1, **kw):  # type: ignore[no-untyped-def]
    async with db.transaction() as s:
        return await compute_portfolio_correlations(s, portfolio_id=portfolio, as_of=kw.pop("as_of", T0), **kw)


async def rows(db: Database, sql: str, **params: object) -> list[dict]:
    async with db.session() as s:
        return [dict(r) for r in (await s.execute(sa.text(sql), params)).mappings().all()]


async def test_example_10b_book_is_stored_with_nodes_pairs_clusters_and_metrics(db: Database) -> None:
    out = await compute(db)
    assert out.status == "completed" and not out.reused and out.error is None
    assert (out.nodes_included, out.nodes_excluded, out.records) == (4, 3, 4)
    [calc] = await rows(db, "SELECT * FROM factors.api_correlation_calculation WHERE id = :id", id=out.calculation_id)
    assert calc["calculation_date"] == T0 and calc["duration_days"] == 90
    assert calc["weighted_average_correlation"] == pytest.approx(0.587714, abs=5e-7)
    assert calc["average_correlation"] == pytest.approx(0.416667, abs=5e-7)
    assert calc["direction_adjusted_correlation"] == pytest.approx(-0.0111429, abs=5e-8)
    assert calc["effective_positions_hhi"] == pytest.approx(3.33333, abs=5e-6)
    assert calc["effective_positions_corr"] == pytest.approx(1.40568, abs=5e-6)
    assert calc["concentration_gross"] == pytest.approx(0.90) and calc["concentration_net"] == pytest.approx(0.50)
    assert calc["data_quality"] == "limited"  # SHORTY passed the filter but has 20 returns
    assert float(calc["gross_exposure"]) == 115_500.0  # EEE's call has no delta and is not in G
    assert (calc["window_start_date"], calc["window_end_date"]) == (DAYS[-90], T0)
    assert calc["engine_version"] and "nodes_excluded_insufficient_history" in calc["flags"]

    nodes = {
        n["symbol"]: n
        for n in await rows(
            db, "SELECT * FROM factors.correlation_node WHERE calculation_id = :id", id=out.calculation_id
        )
    }
    assert set(nodes) == {"AAA", "BBB", "CCC", "DDD", "SHORTY", "TINY", "EEE"}
    assert float(nodes["AAA"]["exposure"]) == 40_000.0 and float(nodes["AAA"]["market_value"]) == 31_500.0
    assert sorted(nodes["AAA"]["position_types"]) == ["LC", "LONG"] and len(nodes["AAA"]["position_ids"]) == 2
    assert nodes["AAA"]["tags"] == ["Mega Tech"] and nodes["AAA"]["sector"] == "Technology"
    assert (nodes["SHORTY"]["included"], nodes["SHORTY"]["exclusion_reason"], nodes["SHORTY"]["observations"]) == (
        False,
        "insufficient_history",
        20,
    )
    assert nodes["TINY"]["exclusion_reason"] == "below_filter"
    assert nodes["EEE"]["exclusion_reason"] == "missing_exposure" and float(nodes["EEE"]["exposure"]) == 0.0
    assert nodes["DDD"]["observations"] == 90

    pairs = await rows(
        db,
        "SELECT * FROM factors.api_pairwise_correlation WHERE calculation_id = :id ORDER BY symbol_1, symbol_2",
        id=out.calculation_id,
    )
    assert [(p["symbol_1"], p["symbol_2"]) for p in pairs] == [
        ("AAA", "BBB"),
        ("AAA", "CCC"),
        ("AAA", "DDD"),
        ("BBB", "CCC"),
        ("BBB", "DDD"),
        ("CCC", "DDD"),
    ]
    expected = {("AAA", "BBB"): 0.82, ("AAA", "CCC"): 0.75, ("CCC", "DDD"): 0.20, ("BBB", "DDD"): -0.05}
    for p in pairs:
        assert p["observations"] == 90
        if (p["symbol_1"], p["symbol_2"]) in expected:
            assert p["correlation"] == pytest.approx(expected[(p["symbol_1"], p["symbol_2"])], abs=1e-9)
    by_pair = {(p["symbol_1"], p["symbol_2"]): p for p in pairs}
    assert by_pair[("AAA", "CCC")]["correlation_dir"] == pytest.approx(-0.75, abs=1e-9)  # short CCC hedges AAA
    assert by_pair[("AAA", "BBB")]["p_value"] == pytest.approx(
        2 * stats.t.sf(0.82 * np.sqrt(88) / np.sqrt(1 - 0.82**2), 88), rel=1e-6
    )

    clusters = await rows(
        db, "SELECT * FROM factors.correlation_cluster WHERE calculation_id = :id", id=out.calculation_id
    )
    assert len(clusters) == 1
    cluster = clusters[0]
    assert (cluster["nickname"], cluster["nickname_source"], cluster["cluster_number"]) == ("Mega Tech", "tag", 1)
    assert cluster["avg_correlation"] == pytest.approx(0.75, abs=1e-9) and cluster["threshold"] == 0.7
    assert (float(cluster["gross"]), float(cluster["net"])) == (90_000.0, 50_000.0)
    members = {
        m["symbol"]: m
        for m in await rows(
            db, "SELECT * FROM factors.correlation_cluster_member WHERE cluster_id = :id", id=cluster["id"]
        )
    }
    assert {s: round(m["correlation_to_cluster"], 6) for s, m in members.items()} == {
        "AAA": 0.785,
        "BBB": 0.75,
        "CCC": 0.715,
    }


async def test_pair_with_fewer_than_30_common_returns_is_stored_null_with_its_count(db: Database) -> None:
    out = await compute(db, P3)
    assert out.status == "completed" and out.data_quality == "limited"
    gap_pairs = await rows(
        db,
        "SELECT * FROM factors.api_pairwise_correlation WHERE calculation_id = :id AND symbol_1 = 'GAPA'",
        id=out.calculation_id,
    )
    # GAPA overlaps the hedges on 45 days (enough); with GAPB it shares no return at all.
    assert {(g["symbol_2"], g["observations"]) for g in gap_pairs} == {("GAPB", 0), ("HEDGE1", 45), ("HEDGE2", 45)}
    [gap] = [g for g in gap_pairs if g["symbol_2"] == "GAPB"]
    assert gap["symbol_2"] == "GAPB" and gap["observations"] == 0
    assert gap["correlation"] is None and gap["correlation_dir"] is None and gap["p_value"] is None
    [hedge] = await rows(
        db,
        "SELECT * FROM factors.api_pairwise_correlation WHERE calculation_id = :id AND symbol_1 = 'HEDGE1'"
        " AND symbol_2 = 'HEDGE2'",
        id=out.calculation_id,
    )
    assert hedge["correlation"] == pytest.approx(0.9, abs=1e-9) and hedge["correlation_dir"] == pytest.approx(-0.9)


async def test_p_values_are_computed_on_the_aligned_pair_sample(db: Database) -> None:
    out = await compute(db, P3)
    closes = synthetic_closes()
    window = slice(len(DAYS) - 91, len(DAYS))

    def returns(sym: str) -> np.ndarray:
        c = np.array([np.nan if v is None else v for v in closes[sym][window]], dtype=float)
        return c[1:] / c[:-1] - 1

    a, b = returns("GAPA"), returns("HEDGE1")
    both = np.isfinite(a) & np.isfinite(b)
    r, p = stats.pearsonr(a[both], b[both])
    [row] = await rows(
        db,
        "SELECT * FROM factors.api_pairwise_correlation WHERE calculation_id = :id AND symbol_1 = 'GAPA' "
        "AND symbol_2 = 'HEDGE1'",
        id=out.calculation_id,
    )
    assert row["observations"] == both.sum() == 45
    assert row["correlation"] == pytest.approx(r, abs=1e-6) and row["p_value"] == pytest.approx(p, rel=1e-4)


async def test_unchanged_inputs_reuse_the_calculation_and_force_recomputes_it(db: Database) -> None:
    first = await compute(db)
    created = await rows(
        db, "SELECT created_at FROM factors.correlation_calculation WHERE id = :id", id=first.calculation_id
    )
    again = await compute(db)
    assert again.reused and again.calculation_id == first.calculation_id and again.data_quality == "limited"
    assert (
        await rows(db, "SELECT created_at FROM factors.correlation_calculation WHERE id = :id", id=first.calculation_id)
        == created
    )
    forced = await compute(db, force=True)
    assert not forced.reused and forced.calculation_id == first.calculation_id
    after = await rows(
        db, "SELECT created_at FROM factors.correlation_calculation WHERE id = :id", id=first.calculation_id
    )
    assert after[0]["created_at"] > created[0]["created_at"]
    # Replaced, never duplicated.
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_calculation") == [{"n": 1}]
    assert await rows(db, "SELECT count(*) AS n FROM factors.api_pairwise_correlation") == [{"n": 6}]
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_node") == [{"n": 7}]
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_cluster_member") == [{"n": 3}]


async def test_changed_exposure_or_filters_recompute_under_the_same_key(db: Database) -> None:
    first = await compute(db)
    await set_exposure(db, BOOK[0], 60_000.0)  # AAA stock: node 70,000
    moved = await compute(db)
    assert not moved.reused and moved.calculation_id == first.calculation_id
    [node] = await rows(
        db,
        "SELECT exposure FROM factors.correlation_node WHERE calculation_id = :id AND symbol = 'AAA'",
        id=first.calculation_id,
    )
    assert float(node["exposure"]) == 70_000.0
    narrower = await compute(db, filters=CorrelationFilters(correlation_threshold=0.8))
    assert not narrower.reused
    [cluster] = await rows(db, "SELECT threshold FROM factors.correlation_cluster")
    assert cluster["threshold"] == 0.8
    other_window = await compute(db, duration_days=60)
    assert other_window.calculation_id != first.calculation_id
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_calculation") == [{"n": 2}]


async def test_only_the_last_8_calculations_per_portfolio_are_kept(db: Database) -> None:
    ids = [(await compute(db, as_of=d)).calculation_id for d in VALUED_DAYS]
    await compute(db, P3)
    kept = await rows(
        db,
        "SELECT id, calculation_date FROM factors.correlation_calculation WHERE portfolio_id = :p "
        "ORDER BY calculation_date",
        p=P1,
    )
    assert [r["calculation_date"] for r in kept] == VALUED_DAYS[-8:]
    assert [r["id"] for r in kept] == ids[-8:]
    orphans = await rows(
        db,
        "SELECT count(*) AS n FROM factors.correlation_node n LEFT JOIN factors.correlation_calculation c "
        "ON c.id = n.calculation_id WHERE c.id IS NULL",
    )
    assert orphans == [{"n": 0}]
    assert await rows(
        db, "SELECT count(*) AS n FROM factors.correlation_calculation WHERE portfolio_id = :p", p=P3
    ) == [{"n": 1}]


async def test_fewer_than_two_passing_nodes_is_skipped_and_drops_a_stale_calculation(db: Database) -> None:
    out = await compute(db, P2)
    assert out.status == "skipped" and out.calculation_id is None and "at least 2" in (out.reason or "")
    stored = await compute(db)
    assert stored.status == "completed"
    strict = await compute(db, filters=CorrelationFilters(min_position_value=__import__("decimal").Decimal("35000")))
    assert strict.status == "skipped"  # only AAA (40,000) passes
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_calculation") == [{"n": 0}]


async def test_a_failure_is_contained_and_the_callers_transaction_still_commits(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("bad pair matrix")

    monkeypatch.setattr(correlation_repository, "apply_retention", broken)
    async with db.transaction() as s:
        out = await compute_portfolio_correlations(s, portfolio_id=P1, as_of=T0)
        await s.execute(sa.text("CREATE TEMP TABLE caller_marker (x int) ON COMMIT PRESERVE ROWS"))
        await s.execute(
            sa.text("INSERT INTO factors.processed_event (consumer, event_id, routing_key) VALUES ('t', :e, 'x')"),
            {"e": uuid.uuid4()},
        )
    assert out.status == "failed" and out.calculation_id is None
    assert out.error is not None and out.error.code == "CORRELATIONS_FAILED" and "bad pair matrix" in out.error.message
    # The step's own writes were rolled back to its savepoint; the caller's write committed.
    assert await rows(db, "SELECT count(*) AS n FROM factors.correlation_calculation") == [{"n": 0}]
    assert (await rows(db, "SELECT count(*) AS n FROM factors.processed_event WHERE consumer = 't'"))[0]["n"] == 1


async def test_invalid_window_fails_without_touching_the_database(db: Database) -> None:
    out = await compute(db, duration_days=10)
    assert out.status == "failed" and out.error is not None and out.error.code == "INVALID_PARAMETERS"
