"""Raw asyncpg access inside a SQLAlchemy transaction (COPY, array parameters) and JSON columns.

Bulk writes (10,000 positions, their tag links, staged rows and issues) go through COPY on the
transaction's own connection: one round trip per table, never one per row, and still atomic with
everything else the transaction writes.
"""

from __future__ import annotations

from typing import Any

import orjson

from common.db import session_driver_connection


def to_json(value: Any) -> str:
    """JSON text for a jsonb parameter or COPY column."""
    return orjson.dumps(value).decode()


def from_json(value: Any) -> Any:
    """A json/jsonb column as Python: asyncpg hands it over as text (no codec is registered)."""
    return orjson.loads(value) if isinstance(value, str) else value


# The asyncpg connection under a session, inside its transaction (common.db).
driver_connection = session_driver_connection
