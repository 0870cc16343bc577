"""Raw asyncpg access inside a SQLAlchemy transaction (COPY, array parameters) and JSON columns.

Bulk writes (10,000 positions, their tag links, staged rows and issues) go through COPY on the
transaction's own connection: one round trip per table, never one per row, and still atomic with
everything else the transaction writes.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


def to_json(value: Any) -> str:
    """JSON text for a jsonb parameter or COPY column."""
    return orjson.dumps(value).decode()


def from_json(value: Any) -> Any:
    """A json/jsonb column as Python: asyncpg hands it over as text (no codec is registered)."""
    return orjson.loads(value) if isinstance(value, str) else value


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, already inside its transaction (for COPY)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the transaction lazily, at the first statement.
        await session.execute(sa.text("SELECT 1"))
    if not driver.is_in_transaction():
        raise RuntimeError("bulk writes must run inside the session's transaction")
    return driver
