"""SQLAlchemy Core tables of the ProForma sessions (migration 0004; data-model.md §4.10-4.11 plus additions).

Declared on ingest's one `metadata`; names and constraints match the migration.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ingest.models import MONEY, PRICE, QTY, STRIKE, metadata

SESSION_STATUSES = ("active", "saved", "cancelled", "expired")
IMPACT_STATUSES = ("none", "pending", "ready", "stale", "failed")
SIDES = ("buy", "sell", "short", "cover")
ACTIONS = ("reduce", "increase", "close")
PRICE_SOURCES = ("user", "last_close", "model")


def _uuid(name: str, *args: Any, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, pg.UUID(as_uuid=True), *args, **kw)


def _now(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now())


modeling_session = sa.Table(
    "modeling_session",
    metadata,
    _uuid("id", primary_key=True, server_default=sa.text("gen_random_uuid()")),
    _uuid("user_id", nullable=False),
    _uuid("portfolio_id", sa.ForeignKey("ingest.portfolio.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("base_as_of_date", sa.Date, nullable=False),
    sa.Column("base_cash_balance", MONEY, nullable=False),
    sa.Column("base_positions", pg.JSONB, nullable=False),
    sa.Column("trade_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("impacts_status", sa.Text, nullable=False, server_default="none"),
    sa.Column("impacts", pg.JSONB),
    sa.Column("impacts_trade_version", sa.Integer),
    sa.Column("impacts_as_of_date", sa.Date),
    sa.Column("impacts_calculated_at", sa.DateTime(timezone=True)),
    sa.Column("impacts_error", sa.Text),
    _uuid("last_job_id"),
    _now("created_at"),
    _now("updated_at"),
    _now("last_activity_at"),
    sa.Column("saved_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Index("modeling_session_user_active_idx", "user_id", "status", postgresql_where=sa.text("status = 'active'")),
    sa.Index("modeling_session_expiry_idx", "expires_at", postgresql_where=sa.text("status = 'active'")),
    sa.Index("modeling_session_user_idx", "user_id", sa.text("created_at DESC")),
    sa.Index("modeling_session_portfolio_idx", "portfolio_id"),
)

modeling_trade = sa.Table(
    "modeling_trade",
    metadata,
    _uuid("id", primary_key=True, server_default=sa.text("gen_random_uuid()")),
    _uuid("session_id", sa.ForeignKey("ingest.modeling_session.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("ticker", sa.String(21), nullable=False),
    sa.Column("instrument_type", sa.Text, nullable=False),
    sa.Column("underlying_symbol", sa.String(12), nullable=False),
    sa.Column("option_type", sa.CHAR(1)),
    sa.Column("strike_price", STRIKE),
    sa.Column("expiration_date", sa.Date),
    sa.Column("multiplier", sa.SmallInteger, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    _uuid("position_ref"),
    sa.Column("action", sa.Text),
    sa.Column("quantity", QTY, nullable=False),
    sa.Column("requested_amount", MONEY),
    sa.Column("price", PRICE, nullable=False),
    sa.Column("price_source", sa.Text, nullable=False),
    sa.Column("quantity_before", QTY, nullable=False),
    sa.Column("quantity_after", QTY, nullable=False),
    sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("note", sa.String(255)),
    _now("created_at"),
    sa.UniqueConstraint("session_id", "seq", name="modeling_trade_seq_uq"),
)
