"""Tables of reports and exports in the `stress` schema (data-model.md §8.7–8.9).

`stored_file` holds the bytes of every report file and trade export (zlib-compressed, no local
filesystem state: pods run with read-only root filesystems); `report`/`report_file` describe
reports (api.md #66–#68, #75); `export` is the export history (#69–#71), which also records report
downloads. Migration `stress_0005` creates them.

Deviations from data-model.md, for retention (§11: "metadata kept with `expired` status"):
`report_file` keeps the file's name, media type, size and digest itself and its `stored_file_id`
becomes NULL when the housekeeping purges the bytes; `stored_file.content_encoding` says how
`content` is stored (`deflate` = zlib).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from stress.models import SCHEMA, metadata

MAX_FILE_BYTES = 52_428_800
REPORT_FORMATS = ("md", "json", "csv", "pdf")
REPORT_SECTIONS = ("summary", "exposures", "positions", "greeks", "factors", "correlations", "stress", "performance")
REPORT_STATUSES = ("queued", "running", "completed", "failed", "expired")
REPORT_TRIGGERS = ("api", "batch")
EXPORT_TYPES = ("trades", "report")
EXPORT_FORMATS = ("csv", "json", "fix", "upload_csv", "md", "pdf")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _uuid_pk() -> sa.Column[object]:
    return sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


stored_file = sa.Table(
    "stored_file",
    metadata,
    _uuid_pk(),
    sa.Column("owner_user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    # Size and digest of the file as downloaded (before compression).
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("sha256", sa.LargeBinary, nullable=False),
    sa.Column("content_encoding", sa.Text, nullable=False, server_default="deflate"),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"size_bytes BETWEEN 0 AND {MAX_FILE_BYTES}", name="stored_file_size_check"),
    sa.CheckConstraint("content_encoding IN ('identity','deflate')", name="stored_file_encoding_check"),
    schema=SCHEMA,
)

report = sa.Table(
    "report",
    metadata,
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(_in("trigger", REPORT_TRIGGERS), name="report_trigger_check"),
    sa.CheckConstraint(_in("status", REPORT_STATUSES), name="report_status_check"),
    sa.CheckConstraint("data_source IN ('live','fixture')", name="report_data_source_check"),
    schema=SCHEMA,
)

report_file = sa.Table(
    "report_file",
    metadata,
    sa.Column(
        "report_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.report.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("format", sa.Text, primary_key=True),
    sa.Column("stored_file_id", pg.UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.stored_file.id", ondelete="SET NULL")),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("sha256", sa.LargeBinary, nullable=False),
    sa.CheckConstraint(_in("format", REPORT_FORMATS), name="report_file_format_check"),
    schema=SCHEMA,
)

export = sa.Table(
    "export",
    metadata,
    _uuid_pk(),
    sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("export_type", sa.Text, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True)),
    sa.Column("session_id", pg.UUID(as_uuid=True)),
    sa.Column("report_id", pg.UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.report.id", ondelete="SET NULL")),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer),
    sa.Column("trade_count", sa.Integer),
    sa.Column("stored_file_id", pg.UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.stored_file.id", ondelete="SET NULL")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_in("export_type", EXPORT_TYPES), name="export_type_check"),
    sa.CheckConstraint(_in("format", EXPORT_FORMATS), name="export_format_check"),
    schema=SCHEMA,
)
