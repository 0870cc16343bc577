"""Tables of the `gateway` schema (data-model.md §3) as SQLAlchemy Core tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SCHEMA = "gateway"
metadata = sa.MetaData()

ROLES = ("user", "admin")
IDEMPOTENCY_STATES = ("in_progress", "done")

# `email` is citext where the extension exists; lookups always go through lower(email::text), which
# has its own unique index, so they behave the same on servers without citext (embedded pgserver).
app_user = sa.Table(
    "app_user",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("username", sa.Text, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("full_name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="user"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_login_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"role IN {ROLES}", name="app_user_role_check"),
    schema=SCHEMA,
)

refresh_token = sa.Table(
    "refresh_token",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column(
        "user_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.app_user.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("family_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("token_hash", pg.BYTEA, nullable=False, unique=True),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("replaced_by", pg.UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.refresh_token.id")),
    # Additive: `jti` of the access token issued with this refresh token, so logout with only an
    # access token finds "every refresh token of this login".
    sa.Column("access_jti", sa.Text),
    sa.Column("ip", pg.INET),
    sa.Column("user_agent", sa.Text),
    schema=SCHEMA,
)

idempotency_key = sa.Table(
    "idempotency_key",
    metadata,
    sa.Column("user_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("request_hash", pg.BYTEA, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("response_status", sa.SmallInteger),
    sa.Column("response_body", pg.JSONB),
    # Additive: headers a replay must repeat (content type, Location, Retry-After, Content-Disposition)
    # and the raw body of non-JSON responses.
    sa.Column("response_headers", pg.JSONB),
    sa.Column("response_bytes", pg.BYTEA),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"state IN {IDEMPOTENCY_STATES}", name="idempotency_key_state_check"),
    sa.CheckConstraint("char_length(key) BETWEEN 1 AND 64", name="idempotency_key_key_check"),
    schema=SCHEMA,
)

# Partitioned by month on occurred_at (the migration creates the parent and the partitions);
# the primary key includes the partition key, as PostgreSQL requires.
activity_log = sa.Table(
    "activity_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), primary_key=True),
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
    schema=SCHEMA,
)
