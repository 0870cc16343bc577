"""Security master, prices, rates, calendar, providers, plumbing and the published views.

Revision ID: marketdata_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from common.migrations import create_plumbing

revision = "marketdata_0001"
down_revision = None
branch_labels = None
depends_on = None

S = "marketdata"


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    create_plumbing(S)

    op.create_table(
        "security",
        sa.Column("symbol", sa.String(21), primary_key=True),
        sa.Column("security_type", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("exchange", sa.String(16)),
        sa.Column("country", sa.CHAR(2)),
        sa.Column("currency", sa.CHAR(3), nullable=False, server_default="USD"),
        sa.Column("sector", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("market_cap", sa.Numeric(22, 2)),
        sa.Column("dividend_yield", sa.Float),
        sa.Column("underlying_symbol", sa.String(12), sa.ForeignKey("marketdata.security.symbol")),
        sa.Column("option_type", sa.CHAR(1)),
        sa.Column("strike_price", sa.Numeric(12, 3)),
        sa.Column("expiration_date", sa.Date),
        sa.Column("multiplier", sa.SmallInteger),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("primary_provider", sa.Text),
        sa.Column("enrichment_status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("enrichment_error", sa.Text),
        _ts("first_seen_at"),
        sa.Column("enriched_at", sa.DateTime(timezone=True)),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "security_type IN ('stock','etf','mutual_fund','option','index')", name="security_type_check"
        ),
        sa.CheckConstraint(
            "enrichment_status IN ('pending','ok','partial','failed')", name="security_enrichment_status_check"
        ),
        sa.CheckConstraint("option_type IN ('C','P')", name="security_option_type_check"),
        sa.CheckConstraint(
            "(security_type = 'option' AND underlying_symbol IS NOT NULL AND option_type IS NOT NULL "
            "AND strike_price IS NOT NULL AND expiration_date IS NOT NULL AND multiplier IS NOT NULL) OR "
            "(security_type <> 'option' AND underlying_symbol IS NULL AND option_type IS NULL "
            "AND strike_price IS NULL AND expiration_date IS NULL AND multiplier IS NULL)",
            name="security_option_columns_check",
        ),
        sa.CheckConstraint("symbol = upper(symbol)", name="security_symbol_upper_check"),
        sa.CheckConstraint("strike_price IS NULL OR strike_price > 0", name="security_strike_positive_check"),
        sa.CheckConstraint("multiplier IS NULL OR multiplier > 0", name="security_multiplier_positive_check"),
        sa.CheckConstraint("dividend_yield IS NULL OR dividend_yield >= 0", name="security_dividend_yield_check"),
        schema=S,
    )
    op.create_index("security_type_idx", "security", ["security_type"], schema=S)
    op.create_index(
        "security_option_chain_idx",
        "security",
        ["underlying_symbol", "expiration_date"],
        schema=S,
        postgresql_where=sa.text("security_type = 'option'"),
    )
    op.create_index("security_sector_idx", "security", ["sector"], schema=S)

    op.create_table(
        "symbol_alias",
        sa.Column("alias", sa.String(21), primary_key=True),
        sa.Column("symbol", sa.String(21), sa.ForeignKey("marketdata.security.symbol"), nullable=False),
        sa.Column("provider", sa.Text),
        _ts("created_at"),
        sa.CheckConstraint("alias <> symbol", name="symbol_alias_not_self_check"),
        schema=S,
    )
    op.create_index("symbol_alias_symbol_idx", "symbol_alias", ["symbol"], schema=S)

    op.create_table(
        "daily_price",
        sa.Column("symbol", sa.String(21), sa.ForeignKey("marketdata.security.symbol"), primary_key=True),
        sa.Column("price_date", sa.Date, primary_key=True),
        sa.Column("open", sa.Numeric(18, 4)),
        sa.Column("high", sa.Numeric(18, 4)),
        sa.Column("low", sa.Numeric(18, 4)),
        sa.Column("close", sa.Numeric(18, 4), nullable=False),
        sa.Column("adj_close", sa.Numeric(18, 4)),
        sa.Column("volume", sa.BigInteger),
        sa.Column("implied_volatility", sa.Float),
        sa.Column("dividend", sa.Numeric(18, 6)),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("close > 0", name="daily_price_close_positive_check"),
        sa.CheckConstraint(
            "(open IS NULL OR open > 0) AND (high IS NULL OR high > 0) AND (low IS NULL OR low > 0) "
            "AND (adj_close IS NULL OR adj_close > 0)",
            name="daily_price_positive_check",
        ),
        sa.CheckConstraint("high IS NULL OR low IS NULL OR high >= low", name="daily_price_high_low_check"),
        sa.CheckConstraint("volume IS NULL OR volume >= 0", name="daily_price_volume_check"),
        sa.CheckConstraint("dividend IS NULL OR dividend >= 0", name="daily_price_dividend_check"),
        sa.CheckConstraint(
            "implied_volatility IS NULL OR implied_volatility > 0", name="daily_price_implied_volatility_check"
        ),
        schema=S,
    )
    op.create_index("daily_price_date_brin", "daily_price", ["price_date"], schema=S, postgresql_using="brin")

    op.create_table(
        "rate_observation",
        sa.Column("series_id", sa.Text, primary_key=True),
        sa.Column("observation_date", sa.Date, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default="fred"),
        sa.Column("fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("value > -0.05 AND value < 0.5", name="rate_observation_fraction_check"),
        schema=S,
    )
    op.create_index("rate_observation_date_idx", "rate_observation", ["observation_date"], schema=S)

    op.create_table(
        "market_holiday",
        sa.Column("holiday_date", sa.Date, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("early_close", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("close_time", sa.Time),
        _ts("created_at"),
        sa.CheckConstraint("early_close = (close_time IS NOT NULL)", name="market_holiday_close_time_check"),
        schema=S,
    )

    op.create_table(
        "trading_day",
        sa.Column("trading_date", sa.Date, primary_key=True),
        sa.Column("previous_trading_date", sa.Date),
        sa.Column("next_trading_date", sa.Date),
        sa.Column("early_close", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("close_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "previous_trading_date IS NULL OR previous_trading_date < trading_date",
            name="trading_day_previous_check",
        ),
        sa.CheckConstraint(
            "next_trading_date IS NULL OR next_trading_date > trading_date", name="trading_day_next_check"
        ),
        schema=S,
    )

    op.create_table(
        "data_provider",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("roles", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("rate_limit_per_minute", sa.Integer),
        sa.Column("timeout_seconds", sa.SmallInteger),
        sa.Column("max_retries", sa.SmallInteger),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_failure_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0", name="data_provider_rate_limit_check"
        ),
        schema=S,
    )

    op.execute(
        """
        CREATE VIEW marketdata.api_security AS
        SELECT symbol, security_type, name, exchange, country, currency, sector, industry, market_cap,
               dividend_yield, underlying_symbol, option_type, strike_price, expiration_date, multiplier,
               is_active, enrichment_status, enriched_at
        FROM marketdata.security
        """
    )
    op.execute(
        """
        CREATE VIEW marketdata.api_symbol_alias AS
        SELECT alias, symbol FROM marketdata.symbol_alias
        """
    )
    op.execute(
        """
        CREATE VIEW marketdata.api_daily_price AS
        SELECT symbol, price_date, open, high, low, close, adj_close, volume, implied_volatility, source
        FROM marketdata.daily_price
        """
    )
    op.execute(
        """
        CREATE VIEW marketdata.api_rate AS
        SELECT series_id, observation_date, value FROM marketdata.rate_observation
        """
    )
    op.execute(
        """
        CREATE VIEW marketdata.api_trading_day AS
        SELECT trading_date, previous_trading_date, next_trading_date FROM marketdata.trading_day
        """
    )


def downgrade() -> None:
    for view in ("api_trading_day", "api_rate", "api_daily_price", "api_symbol_alias", "api_security"):
        op.execute(f"DROP VIEW IF EXISTS marketdata.{view}")
    for table in ("data_provider", "trading_day", "market_holiday", "rate_observation", "daily_price", "symbol_alias"):
        op.drop_table(table, schema=S)
    op.drop_table("security", schema=S)
    for table in ("processed_event", "outbox", "job"):
        op.drop_table(table, schema=S)
