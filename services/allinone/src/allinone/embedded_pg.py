"""Embedded PostgreSQL for all-in-one mode when DATABASE_URL is not set (pgserver package)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "sigmasight"


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or attach to) the embedded server under `data_dir/pgdata`; return (url, handle).

    The server keeps running while the handle lives; pgserver stops it when the last process
    using it exits. The `sigmasight` database is created on first use.
    """
    import pgserver

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        log.info("created embedded database %s", DATABASE_NAME)
    base = server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    url = base.replace("/postgres?", f"/{DATABASE_NAME}?", 1)
    return url, server
