"""One-statement upserts of many rows: the rows travel as one JSON document (`jsonb_to_recordset`).

An executemany runs the INSERT once per row (≈ 1,150 stress results per batch): the per-statement
executor cost dominated the write. Here PostgreSQL types every value from the JSON with the
column's own input function, so what is stored is what the per-row path stored:

* Decimal money goes as its exact string (`numeric_in`), floats as their shortest repr (the same
  double back), UUIDs and dates as their canonical text, lists into `text[]` columns;
* a Python None in a json/jsonb column is stored as JSON `null`, as SQLAlchemy's JSON types do
  (`none_as_null=False`), and as SQL NULL elsewhere;
* a json/jsonb value already serialised (`RawJson`, built column-wise by the stress results) is sent
  as is;
* a non-finite float (stored as NaN by the per-row path, but not representable in JSON) sends the
  rows through that per-row path instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

_DIALECT = pg.dialect()


class RawJson(str):
    """The JSON text of a jsonb value, exactly as `orjson.dumps` of the value would give it."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, UUID):  # asyncpg's own UUID type, read back from another row
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_safe(rows: Sequence[dict[str, Any]]) -> bool:
    return all(map(math.isfinite, [v for row in rows for v in row.values() if isinstance(v, float)]))


def _documents(table: sa.Table, columns: list[str]) -> list[str]:
    return [c for c in columns if isinstance(table.c[c].type, sa.JSON)]  # json and jsonb columns


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@functools.lru_cache(maxsize=64)
def _upsert_statement(
    table: sa.Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    index_where: str | None,
    keep: tuple[str, ...],
    returning: tuple[str, ...],
) -> sa.TextClause:
    """The upsert of `_upsert_sql`, built (and its bind parameters parsed) once per shape of rows."""
    return sa.text(_upsert_sql(table, list(columns), conflict, index_where, keep, returning))


def _upsert_sql(
    table: sa.Table,
    columns: list[str],
    conflict: Sequence[str],
    index_where: str | None,
    keep: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> str:
    """Scalars come from one `jsonb_to_recordset`; jsonb documents (the bulk of the bytes) from one
    text[] each, parsed once per value — parsing them inside the record-set document cost ~2.5× more."""
    documents = _documents(table, columns)
    scalars = [c for c in columns if c not in documents]
    record = ", ".join(f'"{c}" {table.c[c].type.compile(dialect=_DIALECT)}' for c in scalars)
    source = (
        f"ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS ({record})) WITH ORDINALITY AS x({_names(scalars)}, n)"
    )
    if documents:
        arrays = ", ".join(f"CAST(:doc_{i} AS text[])" for i in range(len(documents)))
        source += f" JOIN unnest({arrays}) WITH ORDINALITY AS d({_names(documents)}, n) USING (n)"

    def document(c: str) -> str:  # the column's own type: jsonb parses the text, json only checks it
        kind = table.c[c].type.compile(dialect=_DIALECT)
        return f"""coalesce(CAST(d."{c}" AS {kind}), 'null'::{kind})"""

    select = ", ".join(document(c) if c in documents else f'x."{c}"' for c in columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in conflict and c not in keep)
    where = f" WHERE {index_where}" if index_where else ""
    tail = f" RETURNING {_names(list(returning))}" if returning else ""
    return (
        f"INSERT INTO {table.fullname} ({_names(columns)}) SELECT {select} FROM {source} "
        f"ON CONFLICT ({', '.join(conflict)}){where} DO UPDATE SET {updates}, created_at = now(){tail}"
    )


def json_text(value: Any) -> RawJson:
    """A value's JSON text as the bulk upsert sends it (RawJson unchanged)."""
    if isinstance(value, RawJson):
        return value
    return RawJson(orjson.dumps(value, default=_default).decode())


def _document(value: Any) -> str | None:
    return None if value is None else json_text(value)


def _per_row_value(table: sa.Table, column: str, value: Any) -> Any:
    """A value as the SQLAlchemy column type takes it: JSON text parsed back, money text as Decimal."""
    if isinstance(value, RawJson):
        return orjson.loads(value.encode())
    column_type = table.c[column].type
    if isinstance(value, str) and isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        return Decimal(value)
    return value


def _params(table: sa.Table, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    documents = _documents(table, columns)
    scalars = [c for c in columns if c not in documents]
    records = [{c: row[c] for c in scalars} for row in rows] if documents else rows  # matched by name
    params: dict[str, Any] = {"rows": orjson.dumps(records, default=_default).decode()}
    for i, c in enumerate(documents):
        params[f"doc_{i}"] = [_document(row[c]) for row in rows]
    return params


async def upsert_rows(
    session: AsyncSession,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    *,
    index_where: str | None = None,
    keep: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[sa.Row[Any]]:
    """INSERT … ON CONFLICT (conflict) DO UPDATE every other given column (but `keep`) and
    `created_at = now()`; returns the `returning` columns of the rows written (none when empty).
    Every row must carry the same keys."""
    if not rows:
        return []
    columns = list(rows[0])
    if _json_safe(rows):
        statement = _upsert_statement(
            table, tuple(columns), tuple(conflict), index_where, tuple(keep), tuple(returning)
        )
        result = await session.execute(statement, _params(table, rows))
        return list(result.all()) if returning else []
    stmt = pg.insert(table)
    update: dict[str, Any] = {c: stmt.excluded[c] for c in columns if c not in conflict and c not in keep}
    update["created_at"] = sa.func.now()
    upsert = stmt.on_conflict_do_update(
        index_elements=list(conflict), index_where=sa.text(index_where) if index_where else None, set_=update
    )
    values = [{c: _per_row_value(table, c, v) for c, v in row.items()} for row in rows]
    if returning:  # one statement per row: executemany returns no rows
        out: list[sa.Row[Any]] = []
        for value in values:
            out.extend((await session.execute(upsert.values(value).returning(*(table.c[c] for c in returning)))).all())
        return out
    await session.execute(upsert, values)
    return []
