"""The batched factors + correlations path stores exactly what the per-portfolio path stored.

Same book, same date: each portfolio computed alone (`compute_portfolios([pid])`, then
`compute_portfolio_correlations`) versus all of them in one batch. The batch mixes the three demo
books, a portfolio without positions, an option-only portfolio and one whose factors and
correlations both fail; every stored row (ids and created_at aside) and every outcome must match.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from tests.integration.factors.test_factor_pipeline import FACTOR_TABLES, HF, HNW, IND, T0, Env, db_url, env

from factors import correlation_batch, correlation_bulk_store, correlation_repository, repository
from factors.correlation_batch import compute_batch_correlations
from factors.correlation_compute import build_nodes, node_sums
from factors.correlation_service import compute_portfolio_correlations
from factors.service import FactorPipeline

pytestmark = pytest.mark.integration
__all__ = ["db_url", "env"]  # the pipeline tests' fixtures (a database of its own here)

EMPTY = uuid.uuid4()  # no positions at all (not even a portfolio row)
OPTIONS = uuid.UUID("0b7e5d2c-0000-4000-8000-00000000beef")  # HF's options only
FAILING = HNW

SNAPSHOT_SQL = {
    "position": "SELECT * FROM factors.position_factor_exposure ORDER BY position_id",
    "portfolio": "SELECT * FROM factors.portfolio_factor_exposure ORDER BY portfolio_id, factor_id",
    "calculation": "SELECT * FROM factors.correlation_calculation ORDER BY portfolio_id",
    "node": "SELECT c.portfolio_id, n.* FROM factors.correlation_node n "
    "JOIN factors.correlation_calculation c ON c.id = n.calculation_id ORDER BY c.portfolio_id, n.symbol",
    "pair": "SELECT c.portfolio_id, p.* FROM factors.api_pairwise_correlation p "
    "JOIN factors.correlation_calculation c ON c.id = p.calculation_id ORDER BY 1, p.symbol_1, p.symbol_2",
    "cluster": "SELECT c.portfolio_id, k.*, m.symbol AS member, m.exposure AS member_exposure, "
    "m.share_of_gross AS member_share, m.correlation_to_cluster FROM factors.correlation_cluster k "
    "JOIN factors.correlation_calculation c ON c.id = k.calculation_id "
    "JOIN factors.correlation_cluster_member m ON m.cluster_id = k.id ORDER BY 1, k.cluster_number, m.symbol",
}
VOLATILE = {"created_at", "id", "calculation_id", "cluster_id"}


async def add_option_only_portfolio(env: Env) -> None:
    """A copy of HF holding only its options (ids derived from the originals, same valuations)."""
    statements = (
        "CREATE TEMP TABLE p AS SELECT * FROM ingest.portfolio WHERE id = :hf",
        "UPDATE p SET id = :opt, name = name || ' (options)', is_default = false",
        "INSERT INTO ingest.portfolio ({portfolio}) SELECT {portfolio} FROM p",
        "CREATE TEMP TABLE q AS SELECT * FROM ingest.position WHERE portfolio_id = :hf AND option_type IS NOT NULL",
        "CREATE TEMP TABLE v AS SELECT v.* FROM ingest.position_valuation v JOIN q ON q.id = v.position_id",
        "UPDATE q SET id = md5(id::text || 'options')::uuid, portfolio_id = :opt",
        "UPDATE v SET position_id = md5(position_id::text || 'options')::uuid, portfolio_id = :opt",
        "INSERT INTO ingest.position ({position}) SELECT {position} FROM q",
        "INSERT INTO ingest.position_valuation ({position_valuation}) SELECT {position_valuation} FROM v",
    )
    columns = {}
    for table in ("portfolio", "position", "position_valuation"):  # generated columns are left out
        rows = await env.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ingest' "
            "AND table_name = :t AND is_generated = 'NEVER' ORDER BY ordinal_position",
            t=table,
        )
        columns[table] = ", ".join(r["column_name"] for r in rows)
    async with env.db.transaction() as s:
        for sql in statements:
            await s.execute(sa.text(sql.format(**columns)), {"hf": HF, "opt": OPTIONS})


def break_the_failing_portfolio(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAILING's valuation read (factors) and its correlation store raise, in either path."""
    valuations, store = repository.valuations, correlation_repository.store_calculation

    async def broken_valuations(session: Any, *, portfolio_ids: Any, as_of: Any) -> repository.Valuations:
        if FAILING in portfolio_ids:
            raise RuntimeError("valuation read failed")
        return await valuations(session, portfolio_ids=portfolio_ids, as_of=as_of)

    async def broken_store(session: Any, **kw: Any) -> uuid.UUID:
        if kw["portfolio_id"] == FAILING:
            raise RuntimeError("store failed")
        return await store(session, **kw)

    bulk_store = correlation_bulk_store.store_calculations

    async def broken_bulk_store(session: Any, **kw: Any) -> dict[uuid.UUID, uuid.UUID]:
        if FAILING in {i.portfolio_id for i in kw["items"]}:  # the batch write fails: redone one by one
            raise RuntimeError("bulk store failed")
        return await bulk_store(session, **kw)

    monkeypatch.setattr(repository, "valuations", broken_valuations)
    monkeypatch.setattr(correlation_repository, "store_calculation", broken_store)
    monkeypatch.setattr(correlation_bulk_store, "store_calculations", broken_bulk_store)


async def snapshot(env: Env) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, sql in SNAPSHOT_SQL.items():
        rows = await env.rows(sql)
        out[name] = [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]
    return out


def summary(outcome: Any) -> tuple[Any, ...]:
    steps = [s for s in (outcome.factors, outcome.correlations) if s is not None]
    return (
        outcome.coverage,
        [(s.name, s.status, s.records_processed, s.error and s.error.code) for s in steps],
    )


async def clear_results(env: Env) -> None:
    async with env.db.transaction() as s:
        await s.execute(
            sa.text(
                "TRUNCATE factors.position_factor_exposure, factors.portfolio_factor_exposure, "
                "factors.correlation_calculation CASCADE"
            )
        )


def compute_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every batch's correlation compute runs in a worker thread, overlapping the factors step's
    statements (large batches do; the demo books are below the threshold); the threads' names."""
    threads: list[str] = []
    compute_pass = correlation_batch.PreparedCorrelations.compute_pass

    def spy(self: correlation_batch.PreparedCorrelations) -> Any:
        threads.append(threading.current_thread().name)
        return compute_pass(self)

    monkeypatch.setattr(correlation_batch, "THREAD_THRESHOLD_CELLS", 0)
    monkeypatch.setattr(correlation_batch.PreparedCorrelations, "compute_pass", spy)
    return threads


@pytest.mark.parametrize("overlapped", [False, True])
async def test_batched_path_stores_what_the_per_portfolio_path_stored(
    env: Env, monkeypatch: pytest.MonkeyPatch, overlapped: bool
) -> None:
    if not await env.rows("SELECT 1 FROM ingest.portfolio WHERE id = :id", id=OPTIONS):  # the other case's
        await add_option_only_portfolio(env)
    assert FACTOR_TABLES  # the env fixture truncated every factors table
    ids = [HF, IND, EMPTY, OPTIONS, FAILING]
    pipeline: FactorPipeline = env.service.app.state.pipeline
    async with env.db.transaction() as s:  # the model of T0 first, so both runs share it
        await pipeline.ensure_market_model(s, as_of=T0, run_id=None)
    break_the_failing_portfolio(monkeypatch)

    alone = {}
    for pid in ids:
        async with env.db.transaction() as s:
            outcome = (
                await pipeline.compute_portfolios(s, portfolio_ids=[pid], as_of=T0, run_id=None, steps=("factors",))
            )[pid]
            outcome.correlations = None
            result = await compute_portfolio_correlations(s, portfolio_id=pid, as_of=T0)
        alone[pid] = (summary(outcome), result.status, result.records, result.error and result.error.code)
    expected = await snapshot(env)

    await clear_results(env)
    threads = compute_in_a_worker_thread(monkeypatch) if overlapped else []
    async with env.db.transaction() as s:
        outcomes = await pipeline.compute_portfolios(s, portfolio_ids=ids, as_of=T0, run_id=None)
    batched = await snapshot(env)
    assert batched == expected
    if overlapped:
        assert threads and threading.main_thread().name not in threads
    for pid in ids:
        o = outcomes[pid]
        corr = o.correlations
        assert corr is not None
        factors_only = summary(type(o)(pid, factors=o.factors, coverage=o.coverage))
        assert alone[pid][0] == factors_only
        assert alone[pid][2] == corr.records_processed
        assert alone[pid][3] == (corr.error and corr.error.code)

    # What the batch covered: real rows for the books, failures for FAILING, nothing for EMPTY.
    assert {r["portfolio_id"] for r in batched["position"]} == {HF, IND, OPTIONS}
    assert {r["portfolio_id"] for r in batched["calculation"]} >= {HF, IND}
    assert FAILING not in {r["portfolio_id"] for r in batched["portfolio"] + batched["calculation"]}
    assert outcomes[FAILING].factors.status == "failed"  # type: ignore[union-attr]
    assert outcomes[FAILING].correlations.status == "failed"  # type: ignore[union-attr]
    assert alone[EMPTY][1] == "skipped" and outcomes[EMPTY].correlations.status == "completed"  # type: ignore[union-attr]

    # A duplicate run of the batch changes nothing.
    async with env.db.transaction() as s:
        await pipeline.compute_portfolios(s, portfolio_ids=ids, as_of=T0, run_id=None)
    assert await snapshot(env) == batched


def spy_on_bulk_store(monkeypatch: pytest.MonkeyPatch) -> list[set[uuid.UUID]]:
    """The portfolios of every `store_calculations` call, in call order."""
    calls: list[set[uuid.UUID]] = []
    store = correlation_bulk_store.store_calculations

    async def spy(session: Any, **kw: Any) -> dict[uuid.UUID, uuid.UUID]:
        calls.append({i.portfolio_id for i in kw["items"]})
        return await store(session, **kw)

    monkeypatch.setattr(correlation_bulk_store, "store_calculations", spy)
    return calls


def brief(outcome: Any) -> tuple[Any, ...]:
    return (outcome.status, outcome.records, outcome.data_quality, outcome.nodes_included, outcome.nodes_excluded)


async def calculation_ids(env: Env) -> dict[uuid.UUID, uuid.UUID]:
    rows = await env.rows(
        "SELECT portfolio_id, id FROM factors.correlation_calculation WHERE calculation_date = :d", d=T0
    )
    return {r["portfolio_id"]: r["id"] for r in rows}


async def add_older_calculations(env: Env, portfolio_id: uuid.UUID, count: int) -> None:
    """`count` copies of the portfolio's calculation on the days before T0 (for retention)."""
    async with env.db.transaction() as s:
        await s.execute(
            sa.text(
                "CREATE TEMP TABLE old ON COMMIT DROP AS SELECT * FROM factors.correlation_calculation "
                "WHERE portfolio_id = :pid"
            ),
            {"pid": portfolio_id},
        )
        for _ in range(count):
            await s.execute(sa.text("UPDATE old SET id = gen_random_uuid(), calculation_date = calculation_date - 1"))
            await s.execute(sa.text("INSERT INTO factors.correlation_calculation SELECT * FROM old"))


async def test_fresh_date_bulk_write_stores_what_the_per_portfolio_path_stored(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not await env.rows("SELECT 1 FROM ingest.portfolio WHERE id = :id", id=OPTIONS):  # another test's
        await add_option_only_portfolio(env)
    ids = [HF, IND, HNW, EMPTY, OPTIONS]
    alone = {}
    for pid in ids:
        async with env.db.transaction() as s:
            alone[pid] = brief(await compute_portfolio_correlations(s, portfolio_id=pid, as_of=T0))
    expected = await snapshot(env)
    stored = {pid for pid, o in alone.items() if o[0] == "completed"}
    assert stored >= {HF, IND, HNW} and expected["pair"] and expected["cluster"]

    # Fresh date (no calculation stored yet): one compute pass, one bulk write, identical rows.
    await clear_results(env)
    calls = spy_on_bulk_store(monkeypatch)
    async with env.db.transaction() as s:
        fresh = await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    assert await snapshot(env) == expected
    assert calls == [stored]
    assert {pid: brief(o) for pid, o in fresh.items()} == alone
    assert all(not o.reused for o in fresh.values())
    first_ids = await calculation_ids(env)
    assert {pid: fresh[pid].calculation_id for pid in stored} == first_ids

    # Inputs changed since the stored calculations: recomputed in bulk over the same keys (ids kept).
    async with env.db.transaction() as s:
        await s.execute(sa.text("UPDATE factors.correlation_calculation SET inputs_hash = '\\x00'"))
    async with env.db.transaction() as s:
        again = await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    assert await snapshot(env) == expected
    assert calls[-1] == stored and await calculation_ids(env) == first_ids
    assert {pid: brief(o) for pid, o in again.items()} == alone

    # Steady state: every calculation reused, nothing written.
    async with env.db.transaction() as s:
        steady = await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    assert calls[-1] == set() and await snapshot(env) == expected
    assert all(steady[pid].reused for pid in stored)

    # Retention (the newest 8 per portfolio) is applied by the bulk write too.
    await add_older_calculations(env, HF, 9)
    async with env.db.transaction() as s:
        await s.execute(sa.text("UPDATE factors.correlation_calculation SET inputs_hash = '\\x00'"))
    async with env.db.transaction() as s:
        await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    kept = await env.rows(
        "SELECT calculation_date FROM factors.correlation_calculation WHERE portfolio_id = :pid "
        "ORDER BY calculation_date DESC",
        pid=HF,
    )
    assert len(kept) == 8 and kept[0]["calculation_date"] == T0
    assert await calculation_ids(env) == first_ids


async def test_reuse_check_reads_full_rows_only_of_changed_books(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [HF, IND, HNW, EMPTY]
    async with env.db.transaction() as s:
        await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    # The light read (no tags, sectors, ids) gives the numbers build_nodes hashes, bit for bit.
    async with env.db.transaction() as s:
        light = await correlation_repository.node_exposures_of(s, portfolio_ids=ids, as_of=T0)
        full = await correlation_repository.position_exposures_of(s, portfolio_ids=ids, as_of=T0)
    assert set(light) == set(full) >= {HF, IND, HNW}
    for pid, rows in full.items():
        nodes, sums = build_nodes(rows), node_sums(*light[pid])
        assert sums.symbols == nodes.symbols and sums.gross == nodes.gross
        assert np.array_equal(sums.exposure, nodes.exposure) and np.array_equal(sums.has_exposure, nodes.has_exposure)

    read: list[set[uuid.UUID]] = []
    original = correlation_repository.position_exposures_of

    async def spy(session: Any, *, portfolio_ids: Any, as_of: Any) -> Any:
        read.append(set(portfolio_ids))
        return await original(session, portfolio_ids=portfolio_ids, as_of=as_of)

    monkeypatch.setattr(correlation_batch.repo, "position_exposures_of", spy)
    async with env.db.transaction() as s:  # HF's stored inputs no longer match its book
        await s.execute(
            sa.text("UPDATE factors.correlation_calculation SET inputs_hash = '\\x00' WHERE portfolio_id = :p"),
            {"p": HF},
        )
    async with env.db.transaction() as s:
        out = await compute_batch_correlations(s, portfolio_ids=ids, as_of=T0)
    assert out[IND].reused and out[HNW].reused and not out[HF].reused and out[HF].status == "completed"
    assert out[EMPTY].status == "skipped"
    assert read == [{HF, EMPTY}]  # full rows of the changed book and of the one without a calculation
