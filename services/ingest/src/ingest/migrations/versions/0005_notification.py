"""User notifications: ingest.notification and the published view ingest.api_notification.

One row per (user, kind, subject): onboarding completed / failed, a failed upload, a failed run
step of a portfolio. The unique natural key makes every producer idempotent under repeated
deliveries (INSERT … ON CONFLICT DO NOTHING). The `email_*` columns are a small outbox: a row is
created `pending` when SMTP is configured and the mailer marks it `sent` after the server accepted
it (`skipped` when SMTP was not configured at creation, `failed` after the last attempt).
The gateway reads `ingest.api_notification` for GET /api/v1/auth/me.

Revision ID: ingest_0005
Revises: ingest_0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0005"
down_revision: str | None = "ingest_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = [
    """
CREATE TABLE ingest.notification (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id               uuid NOT NULL,
    kind                  text NOT NULL,
    subject               text NOT NULL,
    severity              text NOT NULL,
    title                 text NOT NULL,
    message               text NOT NULL,
    portfolio_id          uuid REFERENCES ingest.portfolio (id) ON DELETE CASCADE,
    link                  text,
    details               jsonb NOT NULL DEFAULT '{}'::jsonb,
    read_at               timestamptz,
    email_status          text NOT NULL,
    email_attempts        smallint NOT NULL DEFAULT 0,
    email_next_attempt_at timestamptz,
    email_sent_at         timestamptz,
    email_error           text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_natural_key UNIQUE (user_id, kind, subject),
    CONSTRAINT notification_kind_check
        CHECK (kind IN ('onboarding_completed', 'onboarding_failed', 'upload_failed', 'run_failed')),
    CONSTRAINT notification_severity_check CHECK (severity IN ('info', 'warning', 'error')),
    CONSTRAINT notification_email_status_check CHECK (email_status IN ('pending', 'sent', 'failed', 'skipped'))
)
""",
    # A user's list, newest first (GET /api/v1/notifications, /auth/me).
    "CREATE INDEX notification_user_created_idx ON ingest.notification (user_id, created_at DESC, id DESC)",
    # The unread count.
    "CREATE INDEX notification_user_unread_idx ON ingest.notification (user_id) WHERE read_at IS NULL",
    # The mailer's queue: only pending rows are indexed.
    "CREATE INDEX notification_email_due_idx ON ingest.notification (email_next_attempt_at) "
    "WHERE email_status = 'pending'",
    # Retention purge.
    "CREATE INDEX notification_created_idx ON ingest.notification (created_at)",
    # Published view (columns are only ever added).
    """
CREATE VIEW ingest.api_notification AS
SELECT id, user_id, kind, severity, title, message, portfolio_id, link, details, read_at,
       email_status, email_sent_at, created_at
FROM ingest.notification
""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ingest.api_notification")
    op.execute("DROP TABLE IF EXISTS ingest.notification")
