"""Reports, report files, export history and stored files (data-model.md §8.7–8.9).

File bytes live in PostgreSQL (`stored_file.content`, zlib-compressed) so no pod keeps local state.
Report files keep their metadata when the housekeeping purges the bytes after 30 days (retention,
data-model.md §11), so `report_file.stored_file_id` and `export.stored_file_id` become NULL then.

Revision ID: stress_0005
Revises: stress_0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "stress_0005"
down_revision = "stress_0004"
branch_labels = None
depends_on = None

SCHEMA = "stress"
TS = sa.DateTime(timezone=True)


def _uuid_pk() -> sa.Column:
    return sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


def upgrade() -> None:
    op.create_table(
        "stored_file",
        _uuid_pk(),
        sa.Column("owner_user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.LargeBinary, nullable=False),
        sa.Column("content_encoding", sa.Text, nullable=False, server_default="deflate"),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TS, nullable=False),
        sa.CheckConstraint("size_bytes BETWEEN 0 AND 52428800", name="stored_file_size_check"),
        sa.CheckConstraint("content_encoding IN ('identity','deflate')", name="stored_file_encoding_check"),
        schema=SCHEMA,
    )
    op.create_index("stored_file_expires_idx", "stored_file", ["expires_at"], schema=SCHEMA)

    op.create_table(
        "report",
        _uuid_pk(),
        sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("formats", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("sections", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("data_source", sa.Text),
        sa.Column("progress_pct", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("progress_step", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("expires_at", TS),
        sa.CheckConstraint("trigger IN ('api','batch')", name="report_trigger_check"),
        sa.CheckConstraint("status IN ('queued','running','completed','failed','expired')", name="report_status_check"),
        sa.CheckConstraint("data_source IN ('live','fixture')", name="report_data_source_check"),
        schema=SCHEMA,
    )
    op.execute("CREATE INDEX report_user_created_idx ON stress.report (user_id, created_at DESC, id)")
    op.execute("CREATE INDEX report_portfolio_date_idx ON stress.report (portfolio_id, as_of_date)")
    # One daily report per portfolio and date: a re-run of the day replaces it (idempotent consumer).
    op.execute(
        "CREATE UNIQUE INDEX report_batch_uq ON stress.report (portfolio_id, as_of_date) WHERE trigger = 'batch'"
    )
    op.execute("CREATE INDEX report_expires_idx ON stress.report (expires_at) WHERE status = 'completed'")
    # The daily-report worker's queue (api.md §5.2): batch reports waiting to be built.
    op.execute(
        "CREATE INDEX report_batch_pending_idx ON stress.report (created_at, id)"
        " WHERE trigger = 'batch' AND status IN ('queued', 'running')"
    )

    op.create_table(
        "report_file",
        sa.Column(
            "report_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("stress.report.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("format", sa.Text, primary_key=True),
        sa.Column("stored_file_id", pg.UUID(as_uuid=True), sa.ForeignKey("stress.stored_file.id", ondelete="SET NULL")),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("format IN ('md','json','csv','pdf')", name="report_file_format_check"),
        schema=SCHEMA,
    )
    op.execute("CREATE INDEX report_file_stored_idx ON stress.report_file (stored_file_id)")

    op.create_table(
        "export",
        _uuid_pk(),
        sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("export_type", sa.Text, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True)),
        sa.Column("session_id", pg.UUID(as_uuid=True)),
        sa.Column("report_id", pg.UUID(as_uuid=True), sa.ForeignKey("stress.report.id", ondelete="SET NULL")),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer),
        sa.Column("trade_count", sa.Integer),
        sa.Column("stored_file_id", pg.UUID(as_uuid=True), sa.ForeignKey("stress.stored_file.id", ondelete="SET NULL")),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TS, nullable=False),
        sa.CheckConstraint("export_type IN ('trades','report')", name="export_type_check"),
        sa.CheckConstraint("format IN ('csv','json','fix','upload_csv','md','pdf')", name="export_format_check"),
        schema=SCHEMA,
    )
    op.execute("CREATE INDEX export_user_created_idx ON stress.export (user_id, created_at DESC, id)")
    op.execute("CREATE INDEX export_user_type_created_idx ON stress.export (user_id, export_type, created_at DESC)")
    op.execute("CREATE INDEX export_stored_idx ON stress.export (stored_file_id)")
    op.execute("CREATE INDEX export_report_idx ON stress.export (report_id)")


def downgrade() -> None:
    op.drop_table("export", schema=SCHEMA)
    op.drop_table("report_file", schema=SCHEMA)
    op.drop_table("report", schema=SCHEMA)
    op.drop_table("stored_file", schema=SCHEMA)
