"""I/O of position correlations: reads through the published views of ingest and marketdata
(docs/contracts.md) and reads/writes factors.correlation_* tables.

Functions are keyword-only and take the caller's session, so a portfolio's factor exposures and its
correlations are stored in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import parent_key_probes
from factors import correlation_rows
from factors.correlation_compute import CorrelationFilters, CorrelationResult, PositionColumns, PositionRow
from factors.models_correlations import (
    correlation_calculation,
    correlation_cluster,
    correlation_cluster_member,
    correlation_node,
    pairwise_correlation,
)
from factors.price_series import PACKED_CLOSES, PACKED_OFFSETS, scatter_series
from factors.repository import raw_connection

KEEP_CALCULATIONS = 8  # data-model.md §11: the last 8 calculations per portfolio


async def _rows(session: AsyncSession, sql: str, **params: Any) -> Sequence[sa.RowMapping]:
    return (await session.execute(sa.text(sql), params)).mappings().all()


async def _select(session: AsyncSession, query: sa.Select[Any]) -> Sequence[sa.RowMapping]:
    return (await session.execute(query)).mappings().all()


# ---------------------------------------------------------------- ingest views


async def latest_valuation_date(session: AsyncSession, *, portfolio_id: UUID) -> date | None:
    """Newest valuation date of a portfolio (the default as-of of an on-demand calculation)."""
    rows = await _rows(
        session,
        "SELECT max(valuation_date) AS d FROM ingest.api_position_valuation WHERE portfolio_id = :pid",
        pid=portfolio_id,
    )
    return rows[0]["d"] if rows else None


async def position_exposures(session: AsyncSession, *, portfolio_id: UUID, as_of: date) -> list[PositionRow]:
    """Valued positions of a portfolio at `as_of` with their underlying, tags and the underlying's sector."""
    rows = await _rows(
        session,
        """
        SELECT v.position_id, COALESCE(NULLIF(v.underlying_symbol, ''), v.symbol) AS underlying,
               v.position_type, v.dollar_exposure, v.market_value,
               COALESCE(tg.tags, '{}'::text[]) AS tags, s.sector
        FROM ingest.api_position_valuation v
        LEFT JOIN LATERAL (
            SELECT array_agg(DISTINCT t.name ORDER BY t.name) AS tags
            FROM ingest.api_position_tag t WHERE t.position_id = v.position_id
        ) tg ON true
        LEFT JOIN marketdata.api_security s ON s.symbol = COALESCE(NULLIF(v.underlying_symbol, ''), v.symbol)
        WHERE v.portfolio_id = :pid AND v.valuation_date = :d
        ORDER BY v.position_id
        """,
        pid=portfolio_id,
        d=as_of,
    )
    return [
        PositionRow(
            position_id=r["position_id"],
            underlying=r["underlying"],
            position_type=r["position_type"],
            dollar_exposure=None if r["dollar_exposure"] is None else float(r["dollar_exposure"]),
            market_value=None if r["market_value"] is None else float(r["market_value"]),
            tags=tuple(r["tags"] or ()),
            sector=r["sector"],
        )
        for r in rows
    ]


# One row per portfolio, each column an array in position_id order (the order of
# `position_exposures`): asyncpg decodes arrays in C, where one record per position (with two numerics
# through Decimal) cost ~8 µs each. numeric → float8 in SQL is correctly rounded, as is Python's
# float(Decimal); tags are ragged, so they travel as one JSON array of text arrays (null = no tag).
_POSITIONS_OF_SQL = """
SELECT v.portfolio_id,
       array_agg(v.position_id ORDER BY v.position_id),
       array_agg(COALESCE(NULLIF(v.underlying_symbol, ''), v.symbol) ORDER BY v.position_id),
       array_agg(v.position_type ORDER BY v.position_id),
       array_agg(v.dollar_exposure::float8 ORDER BY v.position_id),
       array_agg(v.market_value::float8 ORDER BY v.position_id),
       json_agg(tg.tags ORDER BY v.position_id)::text,
       array_agg(s.sector ORDER BY v.position_id)
FROM ingest.api_position_valuation v
LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT t.name ORDER BY t.name) AS tags
    FROM ingest.api_position_tag t WHERE t.position_id = v.position_id
) tg ON true
LEFT JOIN marketdata.api_security s ON s.symbol = COALESCE(NULLIF(v.underlying_symbol, ''), v.symbol)
WHERE v.portfolio_id = ANY($1::uuid[]) AND v.valuation_date = $2
GROUP BY v.portfolio_id
"""


async def position_exposures_of(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date
) -> dict[UUID, PositionColumns]:
    """`position_exposures` of many portfolios in one read, as columns: {portfolio_id: positions}
    (portfolios without a valued position are absent)."""
    conn = await raw_connection(session)
    out: dict[UUID, PositionColumns] = {}
    for r in await conn.fetch(_POSITIONS_OF_SQL, list(portfolio_ids), as_of):
        out[r[0]] = PositionColumns(
            position_ids=r[1],
            underlyings=r[2],
            position_types=r[3],
            dollar_exposure=np.array(r[4], dtype=np.float64),  # NULL → NaN
            market_value=np.array(r[5], dtype=np.float64),
            tags=[tuple(t) if t else () for t in json.loads(r[6])],
            sectors=r[7],
        )
    return out


# Only what the reuse check hashes (underlying, exposure), one row per portfolio: no tag or sector
# joins, and asyncpg decodes the arrays in C (numeric → float8 in SQL is correctly rounded, as is
# Python's float(Decimal), so the sums equal those of `position_exposures_of`).
_NODE_EXPOSURES_OF_SQL = """
SELECT v.portfolio_id,
       array_agg(COALESCE(NULLIF(v.underlying_symbol, ''), v.symbol) ORDER BY v.position_id),
       array_agg(v.dollar_exposure::float8 ORDER BY v.position_id)
FROM ingest.api_position_valuation v
WHERE v.portfolio_id = ANY($1::uuid[]) AND v.valuation_date = $2
GROUP BY v.portfolio_id
"""


async def node_exposures_of(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date
) -> dict[UUID, tuple[list[str], np.ndarray]]:
    """{portfolio_id: (underlying of each position, its dollar_exposure or NaN)} in position_id order,
    the order of `position_exposures_of` (portfolios without a valued position are absent)."""
    conn = await raw_connection(session)
    rows = await conn.fetch(_NODE_EXPOSURES_OF_SQL, list(portfolio_ids), as_of)
    return {r[0]: (list(r[1]), np.array(r[2], dtype=np.float64)) for r in rows}


# ---------------------------------------------------------------- marketdata views


_WINDOW_DAYS_SQL = """
    SELECT trading_date FROM marketdata.api_trading_day
    WHERE trading_date <= :d ORDER BY trading_date DESC LIMIT :n
"""
# Master date index when the calendar view is empty: SPY's close dates.
_SPY_DAYS_SQL = """
    SELECT price_date FROM marketdata.api_daily_price
    WHERE symbol = 'SPY' AND price_date <= :d ORDER BY price_date DESC LIMIT :n
"""
# One row per priced symbol (`price_series`): the (symbol, price_date) key serves `symbol = ANY …
# AND price_date BETWEEN` (the old join to the calendar scanned the whole table). numeric → float8
# goes through the decimal text, correctly rounded, exactly as float(Decimal) did.
_CLOSES_SQL = f"""
    SELECT symbol, {PACKED_OFFSETS.format(lo="CAST(:lo AS date)")} AS offsets,
           {PACKED_CLOSES.format(close="CAST(adj_close AS float8)")} AS closes
    FROM marketdata.api_daily_price
    WHERE symbol = ANY(:syms) AND price_date BETWEEN :lo AND :hi AND adj_close IS NOT NULL
    GROUP BY symbol
"""


async def price_grid(
    session: AsyncSession, *, symbols: Sequence[str], as_of: date, days: int
) -> tuple[list[date], np.ndarray]:
    """Adjusted closes of `symbols` on the last `days` NYSE trading days ≤ as_of (oldest first).

    Returns the dates and a len(dates) × len(symbols) matrix with NaN where no adjusted close is
    stored. Falls back to SPY's close dates (the master date index) when the calendar view is empty."""
    window = (await session.execute(sa.text(_WINDOW_DAYS_SQL), {"d": as_of, "n": days})).scalars().all()
    if not window:
        window = (await session.execute(sa.text(_SPY_DAYS_SQL), {"d": as_of, "n": days})).scalars().all()
    dates = sorted(window)
    if not dates or not symbols:
        return dates, np.full((len(dates), len(symbols)), np.nan)
    rows = (await session.execute(sa.text(_CLOSES_SQL), {"syms": list(symbols), "lo": dates[0], "hi": dates[-1]})).all()
    return dates, scatter_series(rows, days=dates, symbols=symbols)


async def data_source(session: AsyncSession, *, as_of: date) -> str:
    """`fixture` when SPY's close on as_of came from the fixture, else `live` (docs/contracts.md)."""
    rows = await _rows(
        session, "SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' AND price_date = :d", d=as_of
    )
    return "fixture" if rows and rows[0]["source"] == "fixture" else "live"


async def latest_market_date(session: AsyncSession) -> date | None:
    """Latest SPY close date (the master date index): a calculation for it is `fresh`."""
    rows = await _rows(session, "SELECT max(price_date) AS d FROM marketdata.api_daily_price WHERE symbol = 'SPY'")
    return rows[0]["d"] if rows else None


# ---------------------------------------------------------------- factors.correlation_* writes


@dataclass(frozen=True)
class ExistingCalculation:
    """The stored calculation of a (portfolio, window, date) key."""

    id: UUID
    inputs_hash: bytes
    nodes_included: int
    nodes_excluded: int
    data_quality: str


async def existing_calculation(
    session: AsyncSession, *, portfolio_id: UUID, duration_days: int, as_of: date
) -> ExistingCalculation | None:
    """The calculation stored under the natural key, if any."""
    found = await existing_calculations(session, portfolio_ids=[portfolio_id], duration_days=duration_days, as_of=as_of)
    return found.get(portfolio_id)


async def existing_calculations(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], duration_days: int, as_of: date
) -> dict[UUID, ExistingCalculation]:
    """`existing_calculation` of many portfolios in one read: {portfolio_id: calculation}."""
    conn = await raw_connection(session)
    rows = await conn.fetch(
        """
        SELECT portfolio_id, id, inputs_hash, nodes_included, nodes_excluded, data_quality
        FROM factors.correlation_calculation
        WHERE portfolio_id = ANY($1::uuid[]) AND duration_days = $2 AND calculation_date = $3
        """,
        list(portfolio_ids),
        duration_days,
        as_of,
    )
    return {r[0]: ExistingCalculation(r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows}


async def delete_calculation(session: AsyncSession, *, portfolio_id: UUID, duration_days: int, as_of: date) -> int:
    """Remove the calculation of a key (its nodes, pairs and clusters cascade)."""
    c = correlation_calculation.c
    result = await session.execute(
        sa.delete(correlation_calculation).where(
            c.portfolio_id == portfolio_id, c.duration_days == duration_days, c.calculation_date == as_of
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def store_calculation(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    as_of: date,
    duration_days: int,
    filters: CorrelationFilters,
    result: CorrelationResult,
    rho_dir: np.ndarray,
    digest: bytes,
    run_id: UUID | None,
) -> UUID:
    """Upsert the calculation on (portfolio_id, duration_days, calculation_date) and replace its nodes,
    pairs and clusters, so a re-run replaces the day and never duplicates it."""
    values = correlation_rows.calculation_values(filters=filters, result=result, digest=digest, run_id=run_id)
    insert = pg.insert(correlation_calculation).values(
        id=uuid.uuid4(), portfolio_id=portfolio_id, calculation_date=as_of, duration_days=duration_days, **values
    )
    stmt = insert.on_conflict_do_update(
        constraint="correlation_calculation_portfolio_window_date_uq",
        set_={**{k: insert.excluded[k] for k in values}, "created_at": sa.func.now()},
    ).returning(correlation_calculation.c.id, sa.literal_column("(xmax = 0)").label("inserted"))
    row = (await session.execute(stmt)).one()
    cid: UUID = row[0]
    if not row[1]:
        await session.execute(sa.delete(correlation_node).where(correlation_node.c.calculation_id == cid))
        await session.execute(sa.delete(pairwise_correlation).where(pairwise_correlation.c.calculation_id == cid))
        await session.execute(sa.delete(correlation_cluster).where(correlation_cluster.c.calculation_id == cid))

    async with parent_key_probes(await raw_connection(session)):
        await _insert_children(session, cid, filters=filters, result=result, rho_dir=rho_dir)
    return cid


async def _insert_children(
    session: AsyncSession, cid: UUID, *, filters: CorrelationFilters, result: CorrelationResult, rho_dir: np.ndarray
) -> None:
    """The nodes, pairs, clusters and members of calculation `cid`."""
    node_rows = [
        {"calculation_id": cid, **dict(zip(correlation_rows.NODE_COLUMNS, r, strict=True))}
        for r in correlation_rows.node_rows(result)
    ]
    if node_rows:
        await session.execute(pg.insert(correlation_node).values(node_rows))

    pairs = correlation_rows.pair_columns(result, rho_dir)
    if len(pairs):
        await session.execute(
            pg.insert(pairwise_correlation).values(
                dict(zip(correlation_rows.PAIR_COLUMNS, pairs.record(cid), strict=True))
            )
        )

    clusters, members = correlation_rows.cluster_rows(result, filters)
    if clusters:
        await session.execute(
            pg.insert(correlation_cluster).values(
                [
                    {"calculation_id": cid, **dict(zip(correlation_rows.CLUSTER_COLUMNS, c, strict=True))}
                    for c in clusters
                ]
            )
        )
        await session.execute(
            pg.insert(correlation_cluster_member).values(
                [dict(zip(correlation_rows.MEMBER_COLUMNS, m, strict=True)) for m in members]
            )
        )


async def apply_retention(session: AsyncSession, *, portfolio_id: UUID, keep: int = KEEP_CALCULATIONS) -> int:
    """Keep the newest `keep` calculations of a portfolio (by date, then creation)."""
    result = await session.execute(
        sa.text(
            """
            DELETE FROM factors.correlation_calculation
            WHERE portfolio_id = :pid AND id NOT IN (
                SELECT id FROM factors.correlation_calculation WHERE portfolio_id = :pid
                ORDER BY calculation_date DESC, created_at DESC, id DESC LIMIT :keep
            )
            """
        ),
        {"pid": portfolio_id, "keep": keep},
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- reads for the API


async def latest_calculation(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    duration_days: int | None = None,
    as_of: date | None = None,
    calculation_id: UUID | None = None,
) -> dict[str, Any] | None:
    """The newest calculation of a portfolio (optionally for one window length, date or id)."""
    c = correlation_calculation.c
    query = sa.select(correlation_calculation).where(c.portfolio_id == portfolio_id)
    if calculation_id is not None:
        query = query.where(c.id == calculation_id)
    if duration_days is not None:
        query = query.where(c.duration_days == duration_days)
    if as_of is not None:
        query = query.where(c.calculation_date == as_of)
    query = query.order_by(c.calculation_date.desc(), c.created_at.desc(), c.id.desc()).limit(1)
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


async def calculation_nodes(session: AsyncSession, *, calculation_id: UUID) -> list[dict[str, Any]]:
    """Every node of a calculation in symbol order."""
    node = correlation_node.c
    rows = await _select(
        session, sa.select(correlation_node).where(node.calculation_id == calculation_id).order_by(node.symbol)
    )
    return [dict(r) for r in rows]


async def calculation_pairs(
    session: AsyncSession, *, calculation_id: UUID
) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stored pairs as columns: symbol_1, symbol_2, ρ, ρ^dir, n, p (NaN where NULL)."""
    t = pairwise_correlation.c
    row = (
        await session.execute(
            sa.select(t.symbols_1, t.symbols_2, t.correlations, t.correlations_dir, t.observations, t.p_values).where(
                t.calculation_id == calculation_id
            )
        )
    ).one_or_none()
    if row is None:
        empty = np.zeros(0)
        return [], [], empty, empty, np.zeros(0, dtype=np.int64), empty
    s1, s2, r, rd, n, p = row
    as_float = lambda col: np.array([np.nan if v is None else v for v in col], dtype=float)  # noqa: E731
    return list(s1), list(s2), as_float(r), as_float(rd), np.array(n, dtype=np.int64), as_float(p)


async def calculation_clusters(session: AsyncSession, *, calculation_id: UUID) -> list[dict[str, Any]]:
    """Stored clusters (by number) with their members (by descending |exposure|)."""
    cl = correlation_cluster.c
    clusters = await _select(
        session,
        sa.select(correlation_cluster).where(cl.calculation_id == calculation_id).order_by(cl.cluster_number),
    )
    if not clusters:
        return []
    mem = correlation_cluster_member.c
    members = await _select(
        session,
        sa.select(correlation_cluster_member)
        .where(mem.cluster_id.in_([c["id"] for c in clusters]))
        .order_by(mem.cluster_id, sa.func.abs(mem.exposure).desc(), mem.symbol),
    )
    by_cluster: dict[UUID, list[dict[str, Any]]] = {}
    for m in members:
        by_cluster.setdefault(m["cluster_id"], []).append(dict(m))
    return [{**dict(c), "members": by_cluster.get(c["id"], [])} for c in clusters]
