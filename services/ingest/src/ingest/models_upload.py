"""Upload and onboarding tables of schema `ingest` (data-model.md §4.6-4.9), on the shared MetaData.

Names of constraints and indexes match migration 0002 exactly. Columns beyond data-model.md are
marked; they keep what the status and results endpoints (api.md #59, #60) report.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ingest.models import MONEY, PRICE, QTY, STRIKE, metadata

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_MODES = ("new", "append", "replace")
UPLOAD_STATUSES = ("queued", "processing", "completed", "rejected", "failed")
UPLOAD_PHASES = ("parsing", "verifying_symbols", "committing")
ISSUE_SEVERITIES = ("error", "warning")
COLLECTION_STEPS = ("security_master", "current_prices", "price_history", "option_inputs")
ONBOARDING_STEPS = (*COLLECTION_STEPS, "initial_run", "first_snapshot")
STEP_STATUSES = ("pending", "running", "completed", "failed", "skipped")
ACTIVE_UPLOAD_STATUSES = ("queued", "processing")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


upload = sa.Table(
    "upload",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), sa.ForeignKey("ingest.portfolio.id", ondelete="CASCADE")),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("target_portfolio_name", sa.Text),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("file_size_bytes", sa.Integer, nullable=False),
    sa.Column("file_sha256", pg.BYTEA, nullable=False),
    sa.Column("content", pg.BYTEA),
    sa.Column("upload_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("phase", sa.Text),
    sa.Column("rows_total", sa.Integer),
    # Not in data-model.md: progress of #59 (`progress.rows_processed`).
    sa.Column("rows_processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_valid", sa.Integer),
    sa.Column("rows_invalid", sa.Integer),
    sa.Column("error_count", sa.Integer),
    sa.Column("warning_count", sa.Integer),
    sa.Column("positions_created", sa.Integer),
    sa.Column("positions_closed", sa.Integer),
    sa.Column("header_map", pg.JSONB),
    sa.Column("ignored_columns", pg.ARRAY(sa.Text)),
    sa.Column("cash_balance", MONEY),
    sa.Column("auto_complete", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    # Not in data-model.md: whether a `failed` upload may succeed when submitted again (#59 error).
    sa.Column("retryable", sa.Boolean),
    # Not in data-model.md: #60 blocks of a completed upload (positions_by_type, tags, securities)
    # and the onboarding job started by auto_complete.
    sa.Column("outcome", pg.JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("purge_after", sa.DateTime(timezone=True)),
    sa.CheckConstraint(_in("mode", UPLOAD_MODES), name="upload_mode_check"),
    sa.CheckConstraint(f"file_size_bytes BETWEEN 0 AND {MAX_UPLOAD_BYTES}", name="upload_file_size_check"),
    sa.CheckConstraint(_in("status", UPLOAD_STATUSES), name="upload_status_check"),
    sa.CheckConstraint(f"phase IS NULL OR {_in('phase', UPLOAD_PHASES)}", name="upload_phase_check"),
    sa.CheckConstraint("cash_balance IS NULL OR cash_balance >= 0", name="upload_cash_check"),
    sa.CheckConstraint("mode = 'new' OR portfolio_id IS NOT NULL", name="upload_target_check"),
)

upload_row = sa.Table(
    "upload_row",
    metadata,
    sa.Column(
        "upload_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("ingest.upload.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("row_number", sa.Integer, primary_key=True),
    sa.Column("raw", pg.JSONB),
    sa.Column("symbol", sa.Text),
    sa.Column("instrument_type", sa.Text),
    sa.Column("position_type", sa.Text),
    sa.Column("quantity", QTY),
    sa.Column("entry_price", PRICE),
    sa.Column("multiplier", sa.SmallInteger),
    sa.Column("underlying_symbol", sa.Text),
    sa.Column("option_type", sa.CHAR(1)),
    sa.Column("strike_price", STRIKE),
    sa.Column("expiration_date", sa.Date),
    sa.Column("entry_date", sa.Date),
    sa.Column("tags", pg.JSONB),
    sa.Column("is_valid", sa.Boolean, nullable=False),
)

upload_issue = sa.Table(
    "upload_issue",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "upload_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("ingest.upload.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("column_name", sa.Text),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("value", sa.Text),
    # Not in data-model.md: position in the report order (row, then column order ticker … tags).
    sa.Column("seq", sa.Integer, nullable=False),
    sa.CheckConstraint(_in("severity", ISSUE_SEVERITIES), name="upload_issue_severity_check"),
    sa.CheckConstraint("value IS NULL OR char_length(value) <= 100", name="upload_issue_value_check"),
)

onboarding_step = sa.Table(
    "onboarding_step",
    metadata,
    sa.Column(
        "portfolio_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("ingest.portfolio.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("step", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("details", pg.JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("step", ONBOARDING_STEPS), name="onboarding_step_step_check"),
    sa.CheckConstraint(_in("status", STEP_STATUSES), name="onboarding_step_status_check"),
)

sa.Index(
    "upload_portfolio_active_uq",
    upload.c.portfolio_id,
    unique=True,
    postgresql_where=sa.and_(upload.c.status.in_(ACTIVE_UPLOAD_STATUSES), upload.c.portfolio_id.isnot(None)),
)
sa.Index("upload_user_created_idx", upload.c.user_id, upload.c.created_at.desc())
sa.Index("upload_purge_idx", upload.c.purge_after)
sa.Index("upload_issue_report_idx", upload_issue.c.upload_id, upload_issue.c.severity, upload_issue.c.row_number)
