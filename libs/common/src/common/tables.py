"""The plumbing tables every service schema has: `job`, `outbox`, `processed_event`.

`plumbing_tables(metadata, schema)` builds the SQLAlchemy Core tables; the same definitions
create them in each service's first migration (`common.migrations.create_plumbing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.schema import SchemaItem

JOB_STATUSES = ("queued", "running", "completed", "partial", "failed", "cancelled")


@dataclass(frozen=True)
class PlumbingTables:
    """Handles on one schema's plumbing tables."""

    schema: str
    job: sa.Table
    outbox: sa.Table
    processed_event: sa.Table


def _job_columns() -> list[SchemaItem]:
    return [
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("requested_by", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("scope", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("request", pg.JSONB),
        sa.Column("dedupe_key", sa.Text, nullable=False),
        sa.Column("progress_pct", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("progress_step", sa.Text),
        sa.Column("progress_message", sa.Text),
        sa.Column("result", pg.JSONB),
        sa.Column("result_url", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("retryable", sa.Boolean),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("steps", pg.JSONB),
        sa.Column("runner_id", sa.Text),  # process running the job (not in the spec: orphan detection)
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now() + interval '30 days'"),
        ),
        sa.CheckConstraint(f"status IN {JOB_STATUSES}", name="job_status_check"),
        sa.CheckConstraint("progress_pct BETWEEN 0 AND 100", name="job_progress_check"),
    ]


def _outbox_columns() -> list[SchemaItem]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("producer", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Text),
        sa.Column("body", pg.BYTEA, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    ]


def _processed_event_columns() -> list[SchemaItem]:
    return [
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def plumbing_tables(metadata: sa.MetaData, schema: str) -> PlumbingTables:
    """Core Table objects for `<schema>.job`, `<schema>.outbox`, `<schema>.processed_event`."""

    def table(name: str, columns: list[SchemaItem]) -> sa.Table:
        # Building a service twice in one process (tests, all-in-one) reuses the registered tables.
        existing = metadata.tables.get(f"{schema}.{name}")
        return existing if existing is not None else sa.Table(name, metadata, *columns, schema=schema)

    job = table("job", _job_columns())
    outbox = table("outbox", _outbox_columns())
    processed = table("processed_event", _processed_event_columns())
    return PlumbingTables(schema, job, outbox, processed)
