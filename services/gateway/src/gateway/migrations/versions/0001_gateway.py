"""Users, refresh tokens, idempotency keys, the monthly-partitioned activity log and gateway.api_user.

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from common.migrations import create_plumbing

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None

ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION gateway.ensure_activity_partitions(
    retention_days integer DEFAULT 90,
    months_ahead integer DEFAULT 1
) RETURNS TABLE (change text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    month_start date;
    part text;
    child record;
    upper_bound timestamptz;
BEGIN
    -- Serialise concurrent callers (several gateway replicas start at once).
    PERFORM pg_advisory_xact_lock(hashtext('gateway.ensure_activity_partitions'));
    FOR i IN 0..months_ahead LOOP
        month_start := (this_month + make_interval(months => i))::date;
        part := format('activity_log_%s', to_char(month_start, 'YYYY_MM'));
        IF to_regclass(format('gateway.%I', part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE gateway.%I PARTITION OF gateway.activity_log FOR VALUES FROM (%L) TO (%L)',
                part,
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'
            );
            change := 'created';
            partition_name := part;
            RETURN NEXT;
        END IF;
    END LOOP;
    FOR child IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'gateway' AND p.relname = 'activity_log'
    LOOP
        CONTINUE WHEN child.relname !~ '^activity_log_[0-9]{4}_[0-9]{2}$';
        upper_bound := (to_date(substr(child.relname, 14), 'YYYY_MM') + interval '1 month')::timestamp
                       AT TIME ZONE 'UTC';
        -- A partition goes once its newest possible row is older than the retention period.
        IF upper_bound <= now() - make_interval(days => retention_days) THEN
            EXECUTE format('DROP TABLE gateway.%I', child.relname);
            change := 'dropped';
            partition_name := child.relname;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
"""


def _email_type() -> sa.types.TypeEngine:
    """citext when the server has it (installing it if allowed), else text (e.g. embedded pgserver)."""
    bind = op.get_bind()
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'citext'")).first()
    if installed is None:
        available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'citext'")).first()
        if available is None:
            return sa.Text()
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS citext"))
        except sa.exc.DBAPIError:
            return sa.Text()
    return pg.CITEXT()


def upgrade() -> None:
    create_plumbing("gateway")
    op.create_table(
        "app_user",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("email", _email_type(), nullable=False),
        sa.Column("username", sa.Text),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("full_name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False, server_default="user"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("role IN ('user', 'admin')", name="app_user_role_check"),
        sa.CheckConstraint("char_length(email::text) BETWEEN 3 AND 320", name="app_user_email_check"),
        sa.UniqueConstraint("email", name="app_user_email_key"),
        sa.UniqueConstraint("username", name="app_user_username_key"),
        schema="gateway",
    )
    # Case-insensitive uniqueness and the login lookup, whatever the column type.
    op.create_index(
        "app_user_email_lower_uq", "app_user", [sa.text("lower(email::text)")], unique=True, schema="gateway"
    )

    op.create_table(
        "refresh_token",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "user_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("gateway.app_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("family_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", pg.BYTEA, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("replaced_by", pg.UUID(as_uuid=True), sa.ForeignKey("gateway.refresh_token.id")),
        sa.Column("access_jti", sa.Text),
        sa.Column("ip", pg.INET),
        sa.Column("user_agent", sa.Text),
        sa.UniqueConstraint("token_hash", name="refresh_token_token_hash_key"),
        sa.CheckConstraint("octet_length(token_hash) = 32", name="refresh_token_hash_check"),
        schema="gateway",
    )
    op.create_index("refresh_token_family_idx", "refresh_token", ["family_id"], schema="gateway")
    op.create_index("refresh_token_expires_idx", "refresh_token", ["expires_at"], schema="gateway")
    op.create_index("refresh_token_user_idx", "refresh_token", ["user_id"], schema="gateway")
    op.create_index(
        "refresh_token_access_jti_idx",
        "refresh_token",
        ["access_jti"],
        schema="gateway",
        postgresql_where=sa.text("access_jti IS NOT NULL"),
    )

    op.create_table(
        "idempotency_key",
        sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("request_hash", pg.BYTEA, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("response_status", sa.SmallInteger),
        sa.Column("response_body", pg.JSONB),
        sa.Column("response_headers", pg.JSONB),
        sa.Column("response_bytes", pg.BYTEA),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="idempotency_key_pkey"),
        sa.CheckConstraint("state IN ('in_progress', 'done')", name="idempotency_key_state_check"),
        sa.CheckConstraint("key ~ '^[A-Za-z0-9_-]{1,64}$'", name="idempotency_key_key_check"),
        sa.CheckConstraint("octet_length(request_hash) = 32", name="idempotency_key_hash_check"),
        schema="gateway",
    )
    op.create_index("idempotency_key_expires_idx", "idempotency_key", ["expires_at"], schema="gateway")

    op.create_table(
        "activity_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", pg.UUID(as_uuid=True)),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("method", sa.Text),
        sa.Column("route", sa.Text),
        sa.Column("path", sa.Text),
        sa.Column("status", sa.SmallInteger),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True)),
        sa.Column("ip", pg.INET),
        sa.Column("user_agent", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", "occurred_at", name="activity_log_pkey"),
        schema="gateway",
        postgresql_partition_by="RANGE (occurred_at)",
    )
    op.execute("CREATE INDEX activity_log_user_idx ON gateway.activity_log (user_id, occurred_at DESC)")
    op.execute("CREATE INDEX activity_log_occurred_brin ON gateway.activity_log USING brin (occurred_at)")
    op.execute(ENSURE_PARTITIONS)
    # Partitions for the current and the next month.
    op.execute("SELECT * FROM gateway.ensure_activity_partitions()")

    op.execute(
        """
        CREATE VIEW gateway.api_user AS
        SELECT id, email::text AS email, full_name, is_demo
        FROM gateway.app_user
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS gateway.api_user")
    op.execute("DROP FUNCTION IF EXISTS gateway.ensure_activity_partitions(integer, integer)")
    op.execute("DROP TABLE IF EXISTS gateway.activity_log CASCADE")
    op.drop_table("idempotency_key", schema="gateway")
    op.drop_table("refresh_token", schema="gateway")
    op.drop_table("app_user", schema="gateway")
    for table in ("processed_event", "outbox", "job"):
        op.drop_table(table, schema="gateway")
