"""greeks.position_greek for many portfolios in two statements (the daily step's fast path).

Stores exactly what `repository.replace_position_greeks` stores portfolio by portfolio: the day's
rows of every portfolio in scope are upserted on (position_id, calculation_date) and rows of
positions no longer held are dropped. Rows travel as one array per column through `unnest`, so the
statement is the same text whatever the row count (no per-row bind parameters to compile).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from greeks.models import position_greek

_KEYS = ("position_id", "calculation_date")
# Every stored column but the key date (one value for all rows), flags (text[] per row: sent
# comma-joined, see below) and created_at (its default on insert, now() on update).
_COLUMNS = tuple(c.name for c in position_greek.columns if c.name not in ("calculation_date", "flags", "created_at"))
_PG_TYPES = {
    "position_id": "uuid",
    "portfolio_id": "uuid",
    "run_id": "uuid",
    "expiration_date": "date",
    "underlying_price_date": "date",
    "multiplier": "int4",
    "strike_price": "numeric",
    "quantity": "numeric",
    "dollar_delta": "numeric",
    "dollar_gamma_1pct": "numeric",
    "underlying_price": "numeric",
    "option_price": "numeric",
}
_FLOAT_COLUMNS = {c.name for c in position_greek.columns if isinstance(c.type, sa.Float)}


def _pg_type(name: str) -> str:
    return _PG_TYPES.get(name, "float8" if name in _FLOAT_COLUMNS else "text")


_UPSERT = f"""
INSERT INTO greeks.position_greek ({", ".join(_COLUMNS)}, calculation_date, flags)
SELECT {", ".join(f"u.{c}" for c in _COLUMNS)}, CAST(:calculation_date AS date), string_to_array(u.flags, ',')
FROM unnest({", ".join(f"CAST(:{c} AS {_pg_type(c)}[])" for c in _COLUMNS)}, CAST(:flags AS text[]))
  AS u({", ".join(_COLUMNS)}, flags)
ON CONFLICT (position_id, calculation_date) DO UPDATE SET
  {", ".join(f"{c} = EXCLUDED.{c}" for c in (*_COLUMNS, "flags") if c not in _KEYS)}, created_at = now()
"""

# Rows of the scope's portfolios for the day whose position is not among the new rows.
_DELETE_STALE = """
DELETE FROM greeks.position_greek
WHERE portfolio_id = ANY(CAST(:pids AS uuid[])) AND calculation_date = :calculation_date
  AND NOT (position_id = ANY(CAST(:ids AS uuid[])))
"""


async def replace_many(
    session: AsyncSession, *, portfolio_ids: Sequence[UUID], calculation_date: date, rows: Sequence[dict[str, Any]]
) -> None:
    """Replace the day's rows of every portfolio in `portfolio_ids` with `rows` (theirs, any order)."""
    if not portfolio_ids:
        return
    ids = [r["position_id"] for r in rows]
    await session.execute(
        sa.text(_DELETE_STALE), {"pids": list(portfolio_ids), "calculation_date": calculation_date, "ids": ids}
    )
    if not rows:
        return
    params: dict[str, Any] = {c: [r[c] for r in rows] for c in _COLUMNS}
    # Flag names never contain a comma; '' → '{}' (string_to_array of an empty string is empty).
    params["flags"] = [",".join(r["flags"]) for r in rows]
    params["calculation_date"] = calculation_date
    await session.execute(sa.text(_UPSERT), params)
