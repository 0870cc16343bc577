"""Batch runs, per-step job runs, schedules and the published view api_batch_run.

data-model.md §5.7–5.9; docs/contracts.md (`marketdata.api_batch_run`). Additive columns beyond
the spec: batch_run.steps (planned step names), batch_run.updated_at, batch_job_run.created_at.

Revision ID: marketdata_0002
Revises: marketdata_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "marketdata_0002"
down_revision = "marketdata_0001"
branch_labels = None
depends_on = None

S = "marketdata"

RUN_JOB_NAMES = (
    "run_all",
    "market_data",
    "greeks",
    "aggregations",
    "factors",
    "correlations",
    "risk_scenarios",
    "stress_tests",
    "snapshots",
)
TRIGGERS = ("schedule", "manual", "api", "onboarding", "demo_reset")
RUN_STATUSES = ("queued", "running", "completed", "partial", "failed", "cancelled")
JOB_RUN_STATUSES = ("queued", "running", "completed", "failed", "skipped", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True))
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "batch_run",
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
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error_summary", sa.Text),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(_in("job_name", RUN_JOB_NAMES), name="batch_run_job_name_check"),
        sa.CheckConstraint(_in("trigger", TRIGGERS), name="batch_run_trigger_check"),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="batch_run_status_check"),
        schema=S,
    )
    # Deduplication: one queued/running run per scope (api.md §2.10).
    op.create_index(
        "batch_run_dedupe_uq",
        "batch_run",
        ["scope_hash"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )
    op.create_index("batch_run_scope_hash_idx", "batch_run", ["scope_hash", sa.text("created_at DESC")], schema=S)
    op.create_index("batch_run_created_idx", "batch_run", [sa.text("created_at DESC")], schema=S)
    op.create_index("batch_run_as_of_job_idx", "batch_run", ["as_of_date", "job_name"], schema=S)

    op.create_table(
        "batch_job_run",
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
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("records_processed", sa.Integer),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.String(1000)),
        sa.Column("details", pg.JSONB),
        sa.Column("last_event_id", pg.UUID(as_uuid=True)),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(_in("job", RUN_JOB_NAMES[1:]), name="batch_job_run_job_check"),
        sa.CheckConstraint(_in("status", JOB_RUN_STATUSES), name="batch_job_run_status_check"),
        schema=S,
    )
    # Upsert target; market-wide steps have portfolio_id NULL, so NULLs must not be distinct.
    op.execute(
        "ALTER TABLE marketdata.batch_job_run ADD CONSTRAINT batch_job_run_run_job_portfolio_uq "
        "UNIQUE NULLS NOT DISTINCT (run_id, job, portfolio_id)"
    )
    op.create_index("batch_job_run_started_idx", "batch_job_run", [sa.text("started_at DESC"), "id"], schema=S)
    op.create_index("batch_job_run_job_started_idx", "batch_job_run", ["job", sa.text("started_at DESC")], schema=S)
    op.create_index(
        "batch_job_run_portfolio_started_idx", "batch_job_run", ["portfolio_id", sa.text("started_at DESC")], schema=S
    )
    op.create_index(
        "batch_job_run_active_idx",
        "batch_job_run",
        ["status"],
        schema=S,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )

    op.create_table(
        "batch_schedule",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("description", sa.Text),
        sa.Column("job_name", sa.Text, nullable=False),
        sa.Column("cron", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False, server_default="America/New_York"),
        sa.Column("trading_days_only", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("params", pg.JSONB),
        _ts("last_run_at"),
        sa.Column(
            "last_run_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("marketdata.batch_run.id", ondelete="SET NULL"),
        ),
        sa.Column("last_status", sa.Text),
        _ts("next_run_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(
            "array_length(regexp_split_to_array(btrim(cron), '\\s+'), 1) = 5", name="batch_schedule_cron_check"
        ),
        schema=S,
    )

    op.execute(
        """
        CREATE VIEW marketdata.api_batch_run AS
        SELECT id, job_name, trigger, as_of_date, portfolio_ids, cascade, force, params, status, created_at
        FROM marketdata.batch_run
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS marketdata.api_batch_run")
    op.drop_table("batch_schedule", schema=S)
    op.drop_table("batch_job_run", schema=S)
    op.drop_table("batch_run", schema=S)
