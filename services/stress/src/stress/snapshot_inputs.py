"""Snapshot inputs of a whole batch of portfolios of one date: one query per input kind, and the
figures built from them (pure, one worker-thread pass per batch).

The same reads as `stress.repository` (load_held, load_closed, snapshot_analytics, chain_context,
portfolio_cash), grouped by portfolio with `= ANY(:ids)` / LATERAL joins, so a batch of 64
portfolios costs a handful of round trips instead of ~8 per portfolio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from stress.compute.snapshot import (
    ChainAnchor,
    ChainResult,
    ClosedPositions,
    HeldPositions,
    SnapshotAnalytics,
    SnapshotFigures,
    build_snapshot,
    chain_returns,
)
from stress.compute.snapshot_batch import build_snapshots, chainable, concat_closed, concat_held, first_day_chains
from stress.errors import PortfolioUnavailable
from stress.repository import (
    CLOSED_SQL,
    HELD_SQL,
    LaterSnapshots,
    analytics_from_rows,
    closed_from_row,
    held_from_row,
)

_FACTOR_SQL = sa.text(
    """
    SELECT portfolio_id,
           jsonb_object_agg(factor_code, exposure_dollar::text ORDER BY factor_code)
               FILTER (WHERE status = 'ok' AND exposure_dollar IS NOT NULL) AS exposures,
           max(beta) FILTER (WHERE factor_code = 'market' AND status = 'ok') AS market_beta,
           max(exposure_dollar) FILTER (WHERE factor_code = 'market' AND status = 'ok') AS market_exposure,
           max(coverage_pct) FILTER (WHERE factor_code = 'market') AS coverage
    FROM factors.api_portfolio_factor_exposure
    WHERE portfolio_id = ANY(CAST(:ids AS uuid[])) AND calculation_date = :d
    GROUP BY portfolio_id
    """
)

_STRESS_SQL = sa.text(
    """
    SELECT x.pid AS portfolio_id,
           m.var_95_hist, m.var_99_hist, m.es_95_hist, m.es_99_hist, m.ex_ante_volatility, m.max_drawdown,
           m.beta_ex_ante, m.flags, m.calculation_date IS NOT NULL AS has_metrics,
           w.scenario_key AS worst_id, w.pnl AS worst_pnl
    FROM unnest(CAST(:ids AS uuid[]), CAST(:runs AS uuid[])) AS x(pid, run)
    LEFT JOIN stress.risk_metric m ON m.portfolio_id = x.pid AND m.calculation_date = :d
    LEFT JOIN LATERAL (
        SELECT sc.scenario_key, coalesce(r.correlated_pnl, r.direct_pnl) AS pnl
        FROM stress.stress_result r
        JOIN stress.stress_scenario sc ON sc.id = r.scenario_id
        WHERE r.stress_run_id = coalesce(
                x.run,
                (SELECT id FROM stress.stress_run
                 WHERE portfolio_id = x.pid AND calculation_date = :d
                 ORDER BY created_at DESC, id LIMIT 1))
        ORDER BY coalesce(r.correlated_pnl, r.direct_pnl), sc.scenario_key
        LIMIT 1
    ) w ON true
    """
)

_ANCHOR_SQL = sa.text(
    """
    SELECT x.pid AS portfolio_id, a.equity, a.cumulative_pnl, a.cumulative_return
    FROM unnest(CAST(:ids AS uuid[])) AS x(pid)
    CROSS JOIN LATERAL (
        SELECT (equity * 100)::float8 AS equity, (cumulative_pnl * 100)::float8 AS cumulative_pnl, cumulative_return
        FROM stress.portfolio_snapshot
        WHERE portfolio_id = x.pid AND snapshot_date < :d
        ORDER BY snapshot_date DESC LIMIT 1
    ) a
    """
)

_LATER_SQL = sa.text(
    """
    SELECT portfolio_id, id, (equity * 100)::float8 AS equity, (daily_pnl * 100)::float8 AS daily_pnl
    FROM stress.portfolio_snapshot
    WHERE portfolio_id = ANY(CAST(:ids AS uuid[])) AND snapshot_date > :d
    ORDER BY portfolio_id, snapshot_date
    """
)


@dataclass(frozen=True)
class SnapshotInputs:
    """Everything stored about one portfolio that its snapshot of the date needs."""

    live: bool
    cash: float | None  # cents
    held: HeldPositions
    closed: ClosedPositions
    analytics: SnapshotAnalytics
    anchor: ChainAnchor | None
    later: LaterSnapshots


async def lock_portfolios(session: AsyncSession, ids: list[UUID]) -> None:
    """The per-portfolio advisory locks of `repository.lock_portfolio`, taken in the given (sorted) order."""
    await session.execute(
        sa.text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k.key, 0))) FROM ("
            " SELECT key FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(key, n) ORDER BY n) AS k"
        ),
        {"keys": [f"stress.snapshot:{pid}" for pid in ids]},
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


async def load_inputs(
    session: AsyncSession,
    ids: list[UUID],
    as_of: date,
    previous: date,
    stress_runs: dict[UUID, UUID | None],
    *,
    factors_present: bool,
) -> dict[UUID, SnapshotInputs]:
    """Inputs of every portfolio of `ids` on `as_of` (prev(t) = `previous`)."""
    params = {"ids": ids, "d": as_of}
    cash_rows = await session.execute(
        sa.text(
            "SELECT id, (cash_balance * 100)::float8 AS cash FROM ingest.api_portfolio"
            " WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        params,
    )
    cash = {r.id: r.cash for r in cash_rows}
    held = {r.portfolio_id: r for r in await session.execute(HELD_SQL, {"ids": ids, "as_of": as_of})}
    closed_params = {"ids": ids, "as_of": as_of, "prev": previous}
    closed = {r.portfolio_id: r for r in await session.execute(CLOSED_SQL, closed_params)}
    factors = {r.portfolio_id: r for r in await session.execute(_FACTOR_SQL, params)} if factors_present else {}
    stress = {
        r.portfolio_id: r
        for r in await session.execute(_STRESS_SQL, {**params, "runs": [stress_runs.get(p) for p in ids]})
    }
    anchors = {r.portfolio_id: r for r in await session.execute(_ANCHOR_SQL, params)}
    later: dict[UUID, list[Any]] = {}
    for r in await session.execute(_LATER_SQL, params):
        later.setdefault(r.portfolio_id, []).append(r)
    out = {}
    for pid in ids:
        a = anchors.get(pid)
        mine = later.get(pid, [])
        out[pid] = SnapshotInputs(
            live=pid in cash,
            cash=cash.get(pid),
            held=held_from_row(held.get(pid)),
            closed=closed_from_row(closed.get(pid)),
            analytics=analytics_from_rows(factors.get(pid), stress[pid], factors_present),
            anchor=None if a is None else ChainAnchor(a.equity, _nan(a.cumulative_pnl), _nan(a.cumulative_return)),
            later=LaterSnapshots(
                ids=[r.id for r in mine], equity=[r.equity for r in mine], daily_pnl=[_nan(r.daily_pnl) for r in mine]
            ),
        )
    return out


def _chain(inputs: SnapshotInputs, figures: SnapshotFigures) -> ChainResult:
    """The return chain from this day's figures through the later snapshots (§9)."""
    later = inputs.later
    return chain_returns(
        inputs.anchor,
        [figures.equity, *later.equity],
        np.array([figures.daily_pnl, *later.daily_pnl], dtype=np.float64),
    )


def _build_one(portfolio_id: UUID, inputs: SnapshotInputs, upstream_failed: bool) -> tuple[SnapshotFigures, Any]:
    """Figures and return chain of one portfolio, as `_write_snapshot` computes them."""
    if not inputs.live:
        raise PortfolioUnavailable(f"portfolio {portfolio_id} is not a live portfolio")
    figures = build_snapshot(inputs.held, inputs.closed, inputs.cash)
    missing = list(figures.missing) + list(inputs.analytics.missing())
    if upstream_failed:
        missing.append("upstream_step_failed")
    figures = replace(figures, missing=tuple(missing))
    return figures, _chain(inputs, figures)


def _aligned(positions: HeldPositions | ClosedPositions) -> bool:
    """True when the parallel position arrays are 1-D and of one length (what the batched pass needs)."""
    shapes = {getattr(positions, name).shape for name in positions.__dataclass_fields__}
    return len(shapes) == 1 and len(shapes.pop()) == 1


def _build_batch(
    inputs: list[SnapshotInputs], upstream_failed: list[bool]
) -> list[tuple[SnapshotFigures, Any] | BaseException]:
    """`_build_one` of live portfolios with aligned arrays, in one array pass over all their positions."""
    figures = build_snapshots(
        concat_held([one.held for one in inputs]),
        np.array([one.held.quantity.size for one in inputs], dtype=np.int64),
        concat_closed([one.closed for one in inputs]),
        np.array([one.closed.quantity.size for one in inputs], dtype=np.int64),
        [one.cash for one in inputs],
        [
            (*one.analytics.missing(), *(("upstream_step_failed",) if failed else ()))
            for one, failed in zip(inputs, upstream_failed, strict=True)
        ],
    )
    out: dict[int, tuple[SnapshotFigures, Any] | BaseException] = {}
    # Most books have no later snapshot to re-chain: their one-day chains are one array pass too.
    one_day = [j for j, one in enumerate(inputs) if not one.later.ids and chainable(one.anchor)]
    chains = first_day_chains([inputs[j].anchor for j in one_day], [figures[j].daily_pnl for j in one_day])
    out.update((j, (figures[j], chain)) for j, chain in zip(one_day, chains, strict=True))
    for j in sorted(set(range(len(inputs))) - set(one_day)):
        try:
            out[j] = (figures[j], _chain(inputs[j], figures[j]))
        except Exception as exc:  # reported per portfolio by the caller
            out[j] = exc
    return [out[j] for j in range(len(inputs))]


def build_all(
    inputs: dict[UUID, SnapshotInputs], upstream_failed: dict[UUID, bool]
) -> dict[UUID, tuple[SnapshotFigures, Any] | BaseException]:
    """Every portfolio's figures (pure; one worker thread per batch), as `_build_one` computes them.
    A failure is returned, not raised."""
    out: dict[UUID, tuple[SnapshotFigures, Any] | BaseException] = {}
    batchable = {pid: one.live and _aligned(one.held) and _aligned(one.closed) for pid, one in inputs.items()}
    for pid in (pid for pid, ok in batchable.items() if not ok):
        try:  # not live, or arrays the batched pass cannot line up: the one-portfolio code decides
            out[pid] = _build_one(pid, inputs[pid], upstream_failed[pid])
        except Exception as exc:  # reported per portfolio by the caller
            out[pid] = exc
    batch = [pid for pid, ok in batchable.items() if ok]
    built = _build_batch([inputs[pid] for pid in batch], [upstream_failed[pid] for pid in batch]) if batch else []
    out.update(zip(batch, built, strict=True))
    return {pid: out[pid] for pid in inputs}
