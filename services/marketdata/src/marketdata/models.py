"""Tables of the `marketdata` schema (data-model.md §5.1–5.6); batch tables live in models_batch.py.

All tables share `metadata`. Migration 0001 creates exactly these tables (plus the plumbing
tables and the published `api_*` views of docs/contracts.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SCHEMA = "marketdata"

metadata = sa.MetaData()

SECURITY_TYPES = ("stock", "etf", "mutual_fund", "option", "index")
ENRICHMENT_STATUSES = ("pending", "ok", "partial", "failed")
RATE_SERIES = ("DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2", "DGS10")


def _now_col(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


OPTION_COLUMNS_CHECK = (
    "(security_type = 'option' AND underlying_symbol IS NOT NULL AND option_type IS NOT NULL "
    "AND strike_price IS NOT NULL AND expiration_date IS NOT NULL AND multiplier IS NOT NULL) OR "
    "(security_type <> 'option' AND underlying_symbol IS NULL AND option_type IS NULL "
    "AND strike_price IS NULL AND expiration_date IS NULL AND multiplier IS NULL)"
)

security = sa.Table(
    "security",
    metadata,
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
    _now_col("first_seen_at"),
    sa.Column("enriched_at", sa.DateTime(timezone=True)),
    _now_col("created_at"),
    _now_col("updated_at"),
    sa.CheckConstraint(f"security_type IN {SECURITY_TYPES}", name="security_type_check"),
    sa.CheckConstraint(f"enrichment_status IN {ENRICHMENT_STATUSES}", name="security_enrichment_status_check"),
    sa.CheckConstraint("option_type IN ('C','P')", name="security_option_type_check"),
    sa.CheckConstraint(OPTION_COLUMNS_CHECK, name="security_option_columns_check"),
    sa.CheckConstraint("symbol = upper(symbol)", name="security_symbol_upper_check"),
    sa.CheckConstraint("strike_price IS NULL OR strike_price > 0", name="security_strike_positive_check"),
    sa.CheckConstraint("multiplier IS NULL OR multiplier > 0", name="security_multiplier_positive_check"),
    sa.CheckConstraint("dividend_yield IS NULL OR dividend_yield >= 0", name="security_dividend_yield_check"),
    sa.Index("security_type_idx", "security_type"),
    sa.Index(
        "security_option_chain_idx",
        "underlying_symbol",
        "expiration_date",
        postgresql_where=sa.text("security_type = 'option'"),
    ),
    sa.Index("security_sector_idx", "sector"),
    schema=SCHEMA,
)

symbol_alias = sa.Table(
    "symbol_alias",
    metadata,
    sa.Column("alias", sa.String(21), primary_key=True),
    sa.Column("symbol", sa.String(21), sa.ForeignKey("marketdata.security.symbol"), nullable=False),
    sa.Column("provider", sa.Text),
    _now_col("created_at"),
    sa.CheckConstraint("alias <> symbol", name="symbol_alias_not_self_check"),
    sa.Index("symbol_alias_symbol_idx", "symbol"),
    schema=SCHEMA,
)

daily_price = sa.Table(
    "daily_price",
    metadata,
    sa.Column("symbol", sa.String(21), sa.ForeignKey("marketdata.security.symbol"), primary_key=True),
    sa.Column("price_date", sa.Date, primary_key=True),
    sa.Column("open", sa.Numeric(18, 4)),
    sa.Column("high", sa.Numeric(18, 4)),
    sa.Column("low", sa.Numeric(18, 4)),
    sa.Column("close", sa.Numeric(18, 4), nullable=False),
    sa.Column("adj_close", sa.Numeric(18, 4)),
    sa.Column("volume", sa.BigInteger),
    sa.Column("implied_volatility", sa.Float),
    # Cash dividend per share going ex on price_date (additive to data-model.md §5.3; feeds dividend_yield).
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
    sa.Index("daily_price_date_brin", "price_date", postgresql_using="brin"),
    schema=SCHEMA,
)

rate_observation = sa.Table(
    "rate_observation",
    metadata,
    sa.Column("series_id", sa.Text, primary_key=True),
    sa.Column("observation_date", sa.Date, primary_key=True),
    # Fraction (FRED percent / 100): 0.0402 = 4.02 %.
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default="fred"),
    sa.Column("fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    # Guards the unit: a FRED percent (4.02) stored by mistake fails here.
    sa.CheckConstraint("value > -0.05 AND value < 0.5", name="rate_observation_fraction_check"),
    sa.Index("rate_observation_date_idx", "observation_date"),
    schema=SCHEMA,
)

market_holiday = sa.Table(
    "market_holiday",
    metadata,
    sa.Column("holiday_date", sa.Date, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("early_close", sa.Boolean, nullable=False, server_default=sa.false()),
    # Early closes: local exchange close time (America/New_York), e.g. 13:00.
    sa.Column("close_time", sa.Time),
    _now_col("created_at"),
    sa.CheckConstraint("early_close = (close_time IS NOT NULL)", name="market_holiday_close_time_check"),
    schema=SCHEMA,
)

trading_day = sa.Table(
    "trading_day",
    metadata,
    sa.Column("trading_date", sa.Date, primary_key=True),
    sa.Column("previous_trading_date", sa.Date),
    sa.Column("next_trading_date", sa.Date),
    sa.Column("early_close", sa.Boolean, nullable=False, server_default=sa.false()),
    # The session close in UTC (16:00 ET, or the early-close time).
    sa.Column("close_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(
        "previous_trading_date IS NULL OR previous_trading_date < trading_date", name="trading_day_previous_check"
    ),
    sa.CheckConstraint("next_trading_date IS NULL OR next_trading_date > trading_date", name="trading_day_next_check"),
    schema=SCHEMA,
)

data_provider = sa.Table(
    "data_provider",
    metadata,
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
    _now_col("created_at"),
    _now_col("updated_at"),
    sa.CheckConstraint(
        "rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0", name="data_provider_rate_limit_check"
    ),
    schema=SCHEMA,
)
