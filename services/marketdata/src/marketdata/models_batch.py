"""Batch tables of the `marketdata` schema (data-model.md §5.7–5.9), on the shared `metadata`.

Migration 0002 creates exactly these tables, their constraints and indexes, and the published
view `marketdata.api_batch_run` (docs/contracts.md); 0003 adds `batch_run.job_run_rows`. Additive
columns beyond the spec: `batch_run.steps` (planned step names, needed to decide completion),
`batch_run.updated_at`, `batch_run.job_run_rows` (step rows inserted for the run, see below),
`batch_job_run.created_at` (data-model.md §1.2 asks it of every table).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from marketdata.batch_compute import JOB_RUN_STATUSES, RUN_JOB_NAMES, RUN_STATUSES, TRIGGERS
from marketdata.models import SCHEMA, metadata

JOB_RUN_JOBS = tuple(n for n in RUN_JOB_NAMES if n != "run_all")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


batch_run = sa.Table(
    "batch_run",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("job_name", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("requested_by", pg.UUID(as_uuid=True)),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("portfolio_ids", pg.ARRAY(pg.UUID(as_uuid=True))),
    sa.Column("cascade", sa.Boolean, nullable=False),
    sa.Column("force", sa.Boolean, nullable=False),
    sa.Column("include_correlations", sa.Boolean, nullable=False),
    sa.Column("params", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("steps", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("scope_hash", pg.BYTEA, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("error_summary", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # batch_job_run rows inserted for this run so far, kept by the step-row upsert (the only writer
    # that inserts them, in batch_repository) and never lowered (retention deletes leave it above the live count). An
    # upper bound of the run's final step rows: while it is below the rows the run needs, a batch of
    # step reports knows the run cannot be complete without counting its rows.
    sa.Column("job_run_rows", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint(_in("job_name", RUN_JOB_NAMES), name="batch_run_job_name_check"),
    sa.CheckConstraint(_in("trigger", TRIGGERS), name="batch_run_trigger_check"),
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="batch_run_status_check"),
    sa.Index(
        "batch_run_dedupe_uq",
        "scope_hash",
        unique=True,
        postgresql_where=sa.text("status IN ('queued','running')"),
    ),
    sa.Index("batch_run_scope_hash_idx", "scope_hash", sa.text("created_at DESC")),
    sa.Index("batch_run_created_idx", sa.text("created_at DESC")),
    sa.Index("batch_run_as_of_job_idx", "as_of_date", "job_name"),
    schema=SCHEMA,
)

batch_job_run = sa.Table(
    "batch_job_run",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column(
        "run_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("marketdata.batch_run.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True)),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("trigger", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempt", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("records_processed", sa.Integer),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.String(1000)),
    sa.Column("details", pg.JSONB),
    sa.Column("last_event_id", pg.UUID(as_uuid=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("job", JOB_RUN_JOBS), name="batch_job_run_job_check"),
    sa.CheckConstraint(_in("status", JOB_RUN_STATUSES), name="batch_job_run_status_check"),
    sa.UniqueConstraint(
        "run_id", "job", "portfolio_id", name="batch_job_run_run_job_portfolio_uq", postgresql_nulls_not_distinct=True
    ),
    sa.Index("batch_job_run_started_idx", sa.text("started_at DESC"), "id"),
    sa.Index("batch_job_run_job_started_idx", "job", sa.text("started_at DESC")),
    sa.Index("batch_job_run_portfolio_started_idx", "portfolio_id", sa.text("started_at DESC")),
    sa.Index(
        "batch_job_run_active_idx",
        "status",
        postgresql_where=sa.text("status IN ('queued','running')"),
    ),
    schema=SCHEMA,
)

batch_schedule = sa.Table(
    "batch_schedule",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("job_name", sa.Text, nullable=False),
    sa.Column("cron", sa.Text, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False, server_default="America/New_York"),
    sa.Column("trading_days_only", sa.Boolean, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("params", pg.JSONB),
    sa.Column("last_run_at", sa.DateTime(timezone=True)),
    sa.Column(
        "last_run_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("marketdata.batch_run.id", ondelete="SET NULL"),
    ),
    sa.Column("last_status", sa.Text),
    sa.Column("next_run_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        "array_length(regexp_split_to_array(btrim(cron), '\\s+'), 1) = 5", name="batch_schedule_cron_check"
    ),
    schema=SCHEMA,
)
