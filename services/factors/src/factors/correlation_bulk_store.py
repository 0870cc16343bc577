"""Set-based writes of a batch's position correlations: one statement per table for every portfolio.

`store_calculations` writes exactly the rows `correlation_repository.store_calculation` writes for
each portfolio (same builders in `correlation_rows`): the calculation is upserted on its natural key
(a recomputed key keeps its id; created_at = now()), the children of an updated key are deleted, and
nodes, pairs, clusters and members are inserted — calculations through unnest() arrays, nodes and
pairs through binary COPY streams built a column at a time (`nodes_copy_stream`, `pairs_copy_stream`;
money as numeric cents rounded as `round_money` rounds), the cluster tables through COPY records. Runs
on the asyncpg connection under the caller's session, inside its transaction/savepoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common import pg_binary as pgb
from common.db import parent_key_probes
from factors.correlation_compute import CorrelationFilters, CorrelationResult
from factors.correlation_repository import KEEP_CALCULATIONS
from factors.correlation_rows import (
    CLUSTER_COLUMNS,
    MEMBER_COLUMNS,
    NODE_COLUMNS,
    PAIR_COLUMNS,
    calculation_values,
    cluster_rows,
    node_columns,
    pair_columns,
)
from factors.pg_numeric import fixed_fields, numeric_cents
from factors.repository import raw_connection

SCHEMA = "factors"
FLAG_SEPARATOR = "\x1f"  # flags (text[] per row) travel joined: unnest() cannot take ragged arrays

# Column → element type of its unnest() array, in calculation_values() order.
_CALC_TYPES = {
    "average_correlation": "float8",
    "weighted_average_correlation": "float8",
    "direction_adjusted_correlation": "float8",
    "effective_positions_hhi": "float8",
    "effective_positions_corr": "float8",
    "concentration_gross": "float8",
    "concentration_net": "float8",
    "data_quality": "text",
    "min_position_value": "numeric",
    "min_portfolio_weight": "float8",
    "filter_mode": "text",
    "correlation_threshold": "float8",
    "nodes_included": "int4",
    "nodes_excluded": "int4",
    "inputs_hash": "bytea",
    "run_id": "uuid",
    "gross_exposure": "numeric",
    "valid_pairs": "int4",
    "null_pairs": "int4",
    "window_start_date": "date",
    "window_end_date": "date",
    "flags": "text",
    "engine_version": "text",
}
_CALC_COLS = list(_CALC_TYPES)
_ARGS = ", ".join(f"${i + 5}::{t}[]" for i, t in enumerate(_CALC_TYPES.values()))
_SELECT = ", ".join(
    "CASE WHEN t.flags = '' THEN '{}'::text[] ELSE string_to_array(t.flags, chr(31)) END" if c == "flags" else f"t.{c}"
    for c in _CALC_COLS
)
_UPSERT_SQL = f"""
INSERT INTO factors.correlation_calculation (id, portfolio_id, calculation_date, duration_days, {", ".join(_CALC_COLS)})
SELECT t.id, t.portfolio_id, $2, $3, {_SELECT}
FROM unnest($1::uuid[], $4::uuid[], {_ARGS}) AS t(id, portfolio_id, {", ".join(_CALC_COLS)})
ON CONFLICT ON CONSTRAINT correlation_calculation_portfolio_window_date_uq DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _CALC_COLS)}, created_at = now()
RETURNING id, portfolio_id, (xmax = 0) AS inserted
"""


@dataclass(frozen=True)
class ComputedCalculation:
    """One portfolio's computed calculation, ready to store."""

    portfolio_id: UUID
    result: CorrelationResult
    rho_dir: np.ndarray
    digest: bytes


def _upsert_args(
    items: Sequence[ComputedCalculation], *, filters: CorrelationFilters, run_id: UUID | None
) -> list[list[Any]]:
    values = [calculation_values(filters=filters, result=i.result, digest=i.digest, run_id=run_id) for i in items]
    columns = [[v[c] for v in values] for c in _CALC_COLS]
    flags = _CALC_COLS.index("flags")
    columns[flags] = [FLAG_SEPARATOR.join(f) for f in columns[flags]]
    return columns


async def store_calculations(
    session: AsyncSession,
    *,
    items: Sequence[ComputedCalculation],
    as_of: date,
    duration_days: int,
    filters: CorrelationFilters,
    run_id: UUID | None,
) -> dict[UUID, UUID]:
    """Store every item's calculation (portfolio ids must be distinct); {portfolio_id: calculation_id}."""
    if not items:
        return {}
    conn = await raw_connection(session)
    ids = [uuid4() for _ in items]
    columns = _upsert_args(items, filters=filters, run_id=run_id)
    portfolio_ids = [i.portfolio_id for i in items]
    upserted = await conn.fetch(_UPSERT_SQL, ids, as_of, duration_days, portfolio_ids, *columns)
    cid = {r["portfolio_id"]: r["id"] for r in upserted}
    updated = [r["id"] for r in upserted if not r["inserted"]]
    if updated:  # a recomputed key: its old children go (members cascade from their clusters)
        for table in ("correlation_node", "pairwise_correlation", "correlation_cluster"):
            await conn.execute(f"DELETE FROM factors.{table} WHERE calculation_id = ANY($1::uuid[])", updated)

    async with parent_key_probes(conn):
        await _insert_children(conn, items, cid, filters)
    return cid


async def _insert_children(
    conn: Any, items: Sequence[ComputedCalculation], cid: dict[UUID, UUID], filters: CorrelationFilters
) -> None:
    """Every item's nodes, pairs, clusters and members (one COPY per table)."""
    nodes = nodes_copy_stream(items, cid)
    if nodes is not None:
        await pgb.copy_binary(
            conn, "correlation_node", schema=SCHEMA, columns=["calculation_id", *NODE_COLUMNS], stream=nodes
        )
    await _insert_pairs(conn, items, cid)
    clusters: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    for i in items:
        c, m = cluster_rows(i.result, filters)
        clusters.extend((cid[i.portfolio_id], *row) for row in c)
        members.extend(m)
    if clusters:
        await conn.copy_records_to_table(
            "correlation_cluster", schema_name=SCHEMA, columns=["calculation_id", *CLUSTER_COLUMNS], records=clusters
        )
        await conn.copy_records_to_table(
            "correlation_cluster_member", schema_name=SCHEMA, columns=list(MEMBER_COLUMNS), records=members
        )


# asyncpg encodes COPY records and array parameters element by element; the node rows (~20 per
# calculation, with three array columns) and the pair arrays (thousands of floats per calculation) go
# instead as binary COPY streams built column-wise (common.pg_binary).


def booleans(values: np.ndarray) -> pgb.Fields:
    rows = np.zeros(len(values), dtype=[("length", ">i4"), ("value", "u1")])
    rows["length"] = 1
    rows["value"] = np.asarray(values, dtype=bool)
    return fixed_fields(rows, np.zeros(len(values), dtype=bool))


def _repeated(fields: pgb.Fields, counts: Sequence[int]) -> pgb.Fields:
    """Fixed-width non-NULL fields, row i repeated counts[i] times."""
    n = len(fields)
    width = int(fields.sizes[0]) if n else 0
    reps = np.asarray(counts, dtype=np.int64)
    data = np.repeat(fields.data.reshape(n, width), reps, axis=0).reshape(-1)
    return pgb.Fields(data, np.full(int(reps.sum()), width, dtype=np.int64), np.zeros(int(reps.sum()), dtype=bool))


def nodes_copy_stream(items: Sequence[ComputedCalculation], cid: dict[UUID, UUID]) -> bytes | None:
    """The binary COPY of every item's factors.correlation_node rows (calculation_id, *NODE_COLUMNS):
    the values `node_rows` gives, built a column at a time (`correlation_rows.node_columns`)."""
    columns = node_columns([i.result for i in items])
    if not columns.symbol:
        return None
    return pgb.copy_stream(
        _repeated(pgb.uuids([cid[i.portfolio_id] for i in items]), columns.counts),
        pgb.text(columns.symbol),
        pgb.array(pgb.uuids(columns.position_ids), columns.position_id_counts, pgb.OID_UUID),
        pgb.array(pgb.text(columns.position_types), columns.position_type_counts, pgb.OID_TEXT),
        numeric_cents(columns.exposure_cents, columns.exposure_null),
        numeric_cents(columns.market_value_cents, columns.market_value_null),
        pgb.int2(columns.observations),
        booleans(columns.included),
        pgb.text(columns.exclusion_reason),
        pgb.array(pgb.text(columns.tags), columns.tag_counts, pgb.OID_TEXT),
        pgb.text(columns.sector),
    )


def pairs_copy_stream(items: Sequence[ComputedCalculation], cid: dict[UUID, UUID]) -> bytes | None:
    """The binary COPY of one factors.pairwise_correlation row per calculation with at least one pair
    (NaN correlations and p-values as NULL elements, as `PairColumns.stored_columns`)."""
    ids: list[UUID] = []
    counts: list[int] = []
    symbol_1: list[str] = []
    symbol_2: list[str] = []
    numbers: tuple[list[np.ndarray], ...] = ([], [], [], [])  # rho, rho_dir, observations, p_value
    for i in items:
        pairs = pair_columns(i.result, i.rho_dir)
        if not len(pairs):
            continue
        ids.append(cid[i.portfolio_id])
        counts.append(len(pairs))
        symbol_1.extend(pairs.symbol_1)
        symbol_2.extend(pairs.symbol_2)
        for target, source in zip(numbers, (pairs.rho, pairs.rho_dir, pairs.observations, pairs.p_value), strict=True):
            target.append(np.asarray(source))
    if not ids:
        return None
    rho, rho_dir, observations, p_value = (np.concatenate(parts) for parts in numbers)
    return copy_stream_by_rows(
        pgb.uuids(ids),
        pgb.array(pgb.text(symbol_1), counts, pgb.OID_TEXT),
        pgb.array(pgb.text(symbol_2), counts, pgb.OID_TEXT),
        pgb.array(pgb.float8(rho), counts, pgb.OID_FLOAT8),
        pgb.array(pgb.float8(rho_dir), counts, pgb.OID_FLOAT8),
        pgb.array(pgb.int2(observations), counts, pgb.OID_INT2),
        pgb.array(pgb.float8(p_value), counts, pgb.OID_FLOAT8),
    )


def copy_stream_by_rows(*columns: pgb.Column) -> bytes:
    """`pg_binary.copy_stream` of the same columns, the same bytes, assembled row by row with slices:
    for a few rows of large fields (a calculation's pair arrays) that beats placing every byte with
    numpy as copy_stream does for many small rows."""
    parts = [p for c in columns for p in ((c,) if isinstance(c, pgb.Fields) else c)]
    bounds = [np.concatenate(([0], np.cumsum(p.sizes))).tolist() for p in parts]
    data = [p.data.tobytes() for p in parts]
    field_count = len(columns).to_bytes(2, "big", signed=True)
    chunks = [pgb.HEADER]
    for row in range(len(parts[0])):
        chunks.append(field_count)
        chunks.extend(d[b[row] : b[row + 1]] for d, b in zip(data, bounds, strict=True))
    chunks.append(pgb.TRAILER)
    return b"".join(chunks)


async def _insert_pairs(conn: Any, items: Sequence[ComputedCalculation], cid: dict[UUID, UUID]) -> None:
    """One factors.pairwise_correlation row (arrays) per calculation with at least one pair."""
    stream = pairs_copy_stream(items, cid)
    if stream is not None:
        await pgb.copy_binary(conn, "pairwise_correlation", schema=SCHEMA, columns=PAIR_COLUMNS, stream=stream)


async def delete_calculations(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], duration_days: int, as_of: date
) -> None:
    """Remove the calculations of these portfolios' keys (children cascade)."""
    if not portfolio_ids:
        return
    conn = await raw_connection(session)
    await conn.execute(
        """
        DELETE FROM factors.correlation_calculation
        WHERE portfolio_id = ANY($1::uuid[]) AND duration_days = $2 AND calculation_date = $3
        """,
        list(portfolio_ids),
        duration_days,
        as_of,
    )


async def apply_retention_of(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], keep: int = KEEP_CALCULATIONS
) -> None:
    """`apply_retention` of many portfolios in one statement (same order: date, creation, id)."""
    if not portfolio_ids:
        return
    conn = await raw_connection(session)
    await conn.execute(
        """
        DELETE FROM factors.correlation_calculation WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (
                    PARTITION BY portfolio_id ORDER BY calculation_date DESC, created_at DESC, id DESC
                ) AS rank
                FROM factors.correlation_calculation WHERE portfolio_id = ANY($1::uuid[])
            ) ranked WHERE rank > $2
        )
        """,
        list(portfolio_ids),
        keep,
    )
