"""The `ingest.notification` table (migration 0005), on ingest's shared MetaData."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ingest.models import _in, metadata

KINDS = ("onboarding_completed", "onboarding_failed", "upload_failed", "run_failed")
SEVERITIES = ("info", "warning", "error")
# pending = waiting for the mailer; skipped = SMTP not configured when the notification was created.
EMAIL_STATUSES = ("pending", "sent", "failed", "skipped")


notification = sa.Table(
    "notification",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), sa.ForeignKey("ingest.portfolio.id", ondelete="CASCADE")),
    sa.Column("link", sa.Text),
    sa.Column("details", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.Column("email_status", sa.Text, nullable=False),
    sa.Column("email_attempts", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("email_next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("email_sent_at", sa.DateTime(timezone=True)),
    sa.Column("email_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("user_id", "kind", "subject", name="notification_natural_key"),
    sa.CheckConstraint(_in("kind", KINDS), name="notification_kind_check"),
    sa.CheckConstraint(_in("severity", SEVERITIES), name="notification_severity_check"),
    sa.CheckConstraint(_in("email_status", EMAIL_STATUSES), name="notification_email_status_check"),
)

sa.Index(
    "notification_user_created_idx",
    notification.c.user_id,
    notification.c.created_at.desc(),
    notification.c.id.desc(),
)
sa.Index("notification_user_unread_idx", notification.c.user_id, postgresql_where=notification.c.read_at.is_(None))
sa.Index(
    "notification_email_due_idx",
    notification.c.email_next_attempt_at,
    postgresql_where=notification.c.email_status == "pending",
)
sa.Index("notification_created_idx", notification.c.created_at)
