"""Alembic helpers: per-service migrations with the version table inside the service schema."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from common.db import sqlalchemy_url
from common.tables import JOB_STATUSES, _job_columns, _outbox_columns, _processed_event_columns

log = logging.getLogger(__name__)

MIGRATION_ORDER: tuple[str, ...] = ("gateway", "marketdata", "ingest", "greeks", "factors", "stress")


def create_plumbing(schema: str) -> None:
    """Inside a migration: create `job`, `outbox`, `processed_event` and their indexes in `schema`."""
    op.create_table("job", *_job_columns(), schema=schema)
    op.create_index("job_requested_by_idx", "job", ["requested_by", sa.text("created_at DESC")], schema=schema)
    op.create_index("job_expires_idx", "job", ["expires_at"], schema=schema)
    op.create_index(
        "job_dedupe_active_uq",
        "job",
        ["dedupe_key"],
        unique=True,
        schema=schema,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )
    op.create_index(
        "job_active_idx",
        "job",
        ["status"],
        schema=schema,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )
    op.create_table("outbox", *_outbox_columns(), schema=schema)
    op.create_index(
        "outbox_unpublished_idx",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table("processed_event", *_processed_event_columns(), schema=schema)
    assert JOB_STATUSES  # the CHECK constraint text is built from it


def run_env(schema: str, target_metadata: sa.MetaData | None = None) -> None:
    """Body of each service's `migrations/env.py` (online mode, async engine)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")

    def do_run(connection: sa.Connection) -> None:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(sqlalchemy_url(url))
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run())


def alembic_config(service: str, url: str) -> Config:
    """An Alembic config pointing at `<service>/migrations` (importable package)."""
    module = importlib.import_module(f"{service}.migrations")
    script_location = str(Path(module.__file__ or "").parent)
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Run one service's migrations (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(service, url), revision)


def upgrade_all(url: str, services: Sequence[str] = MIGRATION_ORDER) -> None:
    """Run every service's migrations in a stable order."""
    for service in services:
        log.info("migrating schema %s", service)
        upgrade(service, url)
