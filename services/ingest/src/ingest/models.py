"""SQLAlchemy Core tables of schema `ingest` (data-model.md §4.1-4.5); one shared MetaData.

The upload engineer's tables (`models_upload.py`) are declared on the same `metadata`.
Constraint and index names here match migration 0001 exactly.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SCHEMA = "ingest"

metadata = sa.MetaData(schema=SCHEMA)

MONEY = sa.Numeric(20, 2)
PRICE = sa.Numeric(18, 4)
QTY = sa.Numeric(18, 4)
STRIKE = sa.Numeric(12, 3)

PORTFOLIO_STATUSES = ("onboarding", "active", "archived")
POSITION_TYPES = ("LONG", "SHORT", "LC", "LP", "SC", "SP")
LONG_TYPES = ("LONG", "LC", "LP")
STOCK_TYPES = ("LONG", "SHORT")
OPTION_TYPES = ("LC", "LP", "SC", "SP")
INSTRUMENT_TYPES = ("stock", "option")
POSITION_STATUSES = ("open", "closed")
CLOSED_REASONS = ("replaced", "archived", "demo_reset", "manual", "expired", "exercised", "assigned")
POSITION_SOURCES = ("csv", "seed", "api")
PRICE_SOURCES = ("close", "stale", "model")
TAG_TYPES = ("regular", "strategy")
TAG_SOURCES = ("csv", "api", "seed")
DEFAULT_TAG_COLOR = "#6B7280"
TAG_NAME_PATTERN = r"^[A-Za-z0-9 _.&/-]{1,50}$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


def half_even_cents(expr: str) -> str:
    """SQL for `expr` rounded to cents half-even (PostgreSQL round() is half away from zero)."""
    v = f"(({expr}) * 100)"
    return f"(CASE WHEN abs({v} - trunc({v})) = 0.5 THEN (trunc({v}) + mod(trunc({v}), 2)) ELSE round({v}) END) / 100"


COST_BASIS_SQL = half_even_cents("quantity * entry_price * multiplier")

portfolio = sa.Table(
    "portfolio",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("currency", sa.CHAR(3), nullable=False, server_default="USD"),
    sa.Column("cash_balance", MONEY, nullable=False, server_default="0"),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("onboarded_at", sa.DateTime(timezone=True)),
    sa.Column("is_demo_seed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.Text, nullable=False, server_default="api"),
    # Not in data-model.md: the as-of date and time of the latest valuation (api_portfolio.valued_at).
    sa.Column("valuation_date", sa.Date),
    sa.Column("valued_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("char_length(name) BETWEEN 1 AND 255", name="portfolio_name_check"),
    sa.CheckConstraint("currency = 'USD'", name="portfolio_currency_check"),
    sa.CheckConstraint("cash_balance >= 0", name="portfolio_cash_check"),
    sa.CheckConstraint(_in("status", PORTFOLIO_STATUSES), name="portfolio_status_check"),
    sa.CheckConstraint(_in("source", ("csv", "seed", "api")), name="portfolio_source_check"),
)

position = sa.Table(
    "position",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), sa.ForeignKey("ingest.portfolio.id"), nullable=False),
    sa.Column("symbol", sa.String(21), nullable=False),
    sa.Column("instrument_type", sa.Text, nullable=False),
    sa.Column("position_type", sa.Text, nullable=False),
    sa.Column("quantity", QTY, nullable=False),
    sa.Column("multiplier", sa.SmallInteger, nullable=False),
    sa.Column("underlying_symbol", sa.String(12), nullable=False),
    sa.Column("option_type", sa.CHAR(1)),
    sa.Column("strike_price", STRIKE),
    sa.Column("expiration_date", sa.Date),
    sa.Column("entry_price", PRICE, nullable=False),
    sa.Column("entry_date", sa.Date, nullable=False),
    sa.Column("cost_basis", MONEY, sa.Computed(COST_BASIS_SQL, persisted=True)),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("closed_reason", sa.Text),
    sa.Column("exit_price", PRICE),
    sa.Column("realized_pnl", MONEY),
    sa.Column("exit_date", sa.Date),
    sa.Column("source", sa.Text, nullable=False),
    # FK to ingest.upload is added by migration 0002 (the upload table is created there).
    sa.Column("upload_id", pg.UUID(as_uuid=True)),
    sa.Column("last_price", PRICE),
    sa.Column("price_date", sa.Date),
    sa.Column("price_source", sa.Text),
    sa.Column("underlying_price", PRICE),
    sa.Column("market_value", MONEY),
    sa.Column("dollar_exposure", MONEY),
    sa.Column("notional", MONEY),
    sa.Column("unrealized_pnl", MONEY),
    sa.Column("daily_pnl", MONEY),
    # Not in data-model.md: the as-of date of the current valuation columns (back-fill guard).
    sa.Column("valuation_date", sa.Date),
    sa.Column("valued_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("quantity <> 0", name="position_quantity_nonzero_check"),
    sa.CheckConstraint(_in("instrument_type", INSTRUMENT_TYPES), name="position_instrument_type_check"),
    sa.CheckConstraint(_in("position_type", POSITION_TYPES), name="position_type_check"),
    sa.CheckConstraint(f"({_in('position_type', LONG_TYPES)}) = (quantity > 0)", name="position_direction_check"),
    sa.CheckConstraint(
        f"(instrument_type = 'stock' AND {_in('position_type', STOCK_TYPES)} AND multiplier = 1"
        " AND option_type IS NULL AND strike_price IS NULL AND expiration_date IS NULL"
        " AND underlying_symbol = symbol)"
        f" OR (instrument_type = 'option' AND {_in('position_type', OPTION_TYPES)} AND multiplier = 100"
        " AND option_type IS NOT NULL AND strike_price IS NOT NULL AND expiration_date IS NOT NULL)",
        name="position_instrument_check",
    ),
    sa.CheckConstraint("option_type IS NULL OR option_type IN ('C', 'P')", name="position_option_type_check"),
    sa.CheckConstraint(
        "instrument_type = 'stock' OR (position_type IN ('LC', 'SC')) = (option_type = 'C')",
        name="position_option_side_check",
    ),
    sa.CheckConstraint(
        "instrument_type = 'stock' OR (quantity = trunc(quantity) AND entry_date <= expiration_date)",
        name="position_option_contract_check",
    ),
    sa.CheckConstraint("strike_price IS NULL OR strike_price > 0", name="position_strike_check"),
    sa.CheckConstraint("entry_price > 0", name="position_entry_price_check"),
    sa.CheckConstraint(_in("status", POSITION_STATUSES), name="position_status_check"),
    sa.CheckConstraint(
        f"closed_reason IS NULL OR {_in('closed_reason', CLOSED_REASONS)}", name="position_closed_reason_check"
    ),
    sa.CheckConstraint(_in("source", POSITION_SOURCES), name="position_source_check"),
    sa.CheckConstraint(
        f"price_source IS NULL OR {_in('price_source', PRICE_SOURCES)}", name="position_price_source_check"
    ),
)

position_valuation = sa.Table(
    "position_valuation",
    metadata,
    sa.Column(
        "position_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("ingest.position.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("valuation_date", sa.Date, primary_key=True),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("last_price", PRICE),
    sa.Column("underlying_price", PRICE),
    sa.Column("price_date", sa.Date),
    sa.Column("price_source", sa.Text),
    sa.Column("market_value", MONEY),
    sa.Column("dollar_exposure", MONEY),
    sa.Column("notional", MONEY),
    sa.Column("unrealized_pnl", MONEY),
    sa.Column("daily_pnl", MONEY),
    # Not in data-model.md: quantity at valuation and reason codes (calculations.md §0.5: NULL + reason).
    sa.Column("quantity", QTY),
    sa.Column("delta", sa.Float),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("run_id", pg.UUID(as_uuid=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        f"price_source IS NULL OR {_in('price_source', PRICE_SOURCES)}",
        name="position_valuation_price_source_check",
    ),
)

tag = sa.Table(
    "tag",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_key", sa.Text, sa.Computed("lower(name)", persisted=True)),
    sa.Column("tag_type", sa.Text, nullable=False, server_default="regular"),
    sa.Column("color", sa.CHAR(7), nullable=False, server_default=DEFAULT_TAG_COLOR),
    sa.Column("description", sa.String(255)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(
        f"name ~ '{TAG_NAME_PATTERN}' AND name = btrim(name) AND position('  ' in name) = 0",
        name="tag_name_check",
    ),
    sa.CheckConstraint(_in("tag_type", TAG_TYPES), name="tag_type_check"),
    sa.CheckConstraint(f"color ~ '{COLOR_PATTERN}'", name="tag_color_check"),
)

position_tag = sa.Table(
    "position_tag",
    metadata,
    sa.Column(
        "position_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("ingest.position.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("tag_id", pg.UUID(as_uuid=True), sa.ForeignKey("ingest.tag.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("source", sa.Text, nullable=False, server_default="api"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("source", TAG_SOURCES), name="position_tag_source_check"),
)

# Indexes (data-model.md §4.1-4.5); created by migration 0001 with these names.
sa.Index(
    "portfolio_user_name_uq",
    portfolio.c.user_id,
    sa.func.lower(portfolio.c.name),
    unique=True,
    postgresql_where=portfolio.c.deleted_at.is_(None),
)
sa.Index(
    "portfolio_user_default_uq",
    portfolio.c.user_id,
    unique=True,
    postgresql_where=sa.and_(portfolio.c.is_default, portfolio.c.deleted_at.is_(None)),
)
sa.Index("portfolio_user_idx", portfolio.c.user_id, postgresql_where=portfolio.c.deleted_at.is_(None))
sa.Index(
    "portfolio_active_idx",
    portfolio.c.status,
    postgresql_where=sa.and_(portfolio.c.status == "active", portfolio.c.deleted_at.is_(None)),
)
sa.Index(
    "position_open_uq",
    position.c.portfolio_id,
    position.c.symbol,
    position.c.entry_date,
    unique=True,
    postgresql_where=position.c.status == "open",
)
sa.Index("position_portfolio_status_idx", position.c.portfolio_id, position.c.status)
sa.Index(
    "position_portfolio_type_idx",
    position.c.portfolio_id,
    position.c.position_type,
    postgresql_where=position.c.status == "open",
)
sa.Index("position_underlying_open_idx", position.c.underlying_symbol, postgresql_where=position.c.status == "open")
sa.Index(
    "position_expiration_open_idx",
    position.c.expiration_date,
    postgresql_where=sa.and_(position.c.instrument_type == "option", position.c.status == "open"),
)
sa.Index("position_symbol_open_idx", position.c.symbol, postgresql_where=position.c.status == "open")
sa.Index("position_upload_idx", position.c.upload_id)
sa.Index(
    "position_valuation_portfolio_date_idx", position_valuation.c.portfolio_id, position_valuation.c.valuation_date
)
sa.Index(
    "tag_user_name_uq",
    tag.c.user_id,
    tag.c.name_key,
    unique=True,
    postgresql_where=tag.c.deleted_at.is_(None),
)
sa.Index("tag_user_type_idx", tag.c.user_id, tag.c.tag_type, postgresql_where=tag.c.deleted_at.is_(None))
sa.Index("tag_deleted_idx", tag.c.deleted_at, postgresql_where=tag.c.deleted_at.isnot(None))
sa.Index("position_tag_tag_idx", position_tag.c.tag_id)
