"""Plumbing tables, greeks.position_greek (data-model.md §6.1) and its published views.

Revision ID: greeks_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from common.migrations import create_plumbing

revision = "greeks_0001"
down_revision = None
branch_labels = None
depends_on = None

GREEKS = ("delta", "gamma", "theta", "vega", "rho")
COLUMNS = (
    "position_id, calculation_date, portfolio_id, symbol, underlying_symbol, option_type, strike_price, "
    "expiration_date, multiplier, quantity, delta, gamma, theta, vega, rho, dollar_delta, dollar_gamma_1pct, "
    "underlying_price, underlying_price_date, option_price, implied_volatility, iv_source, model_price, "
    "delta_ps, gamma_ps, theta_ps, vega_ps, rho_ps, risk_free_rate, dividend_yield, time_to_expiry_years, "
    "status, reason, error_message, flags, engine_version, run_id, created_at"
)


def upgrade() -> None:
    create_plumbing("greeks")
    all_not_null = " AND ".join(f"{g} IS NOT NULL" for g in GREEKS)
    all_zero = " AND ".join(f"{g} = 0" for g in GREEKS)
    all_null = " AND ".join(f"{g} IS NULL" for g in GREEKS)
    op.create_table(
        "position_greek",
        sa.Column("position_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("calculation_date", sa.Date, primary_key=True),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("underlying_symbol", sa.Text, nullable=False),
        sa.Column("option_type", sa.CHAR(1)),
        sa.Column("strike_price", sa.Numeric(12, 3)),
        sa.Column("expiration_date", sa.Date),
        sa.Column("multiplier", sa.Integer),
        sa.Column("quantity", sa.Numeric(18, 4)),
        sa.Column("delta", sa.Float(53)),
        sa.Column("gamma", sa.Float(53)),
        sa.Column("theta", sa.Float(53)),
        sa.Column("vega", sa.Float(53)),
        sa.Column("rho", sa.Float(53)),
        sa.Column("dollar_delta", sa.Numeric(20, 2)),
        sa.Column("dollar_gamma_1pct", sa.Numeric(20, 2)),
        sa.Column("underlying_price", sa.Numeric(18, 4)),
        sa.Column("underlying_price_date", sa.Date),
        sa.Column("option_price", sa.Numeric(18, 4)),
        sa.Column("implied_volatility", sa.Float(53)),
        sa.Column("iv_source", sa.Text),
        sa.Column("model_price", sa.Float(53)),
        sa.Column("delta_ps", sa.Float(53)),
        sa.Column("gamma_ps", sa.Float(53)),
        sa.Column("theta_ps", sa.Float(53)),
        sa.Column("vega_ps", sa.Float(53)),
        sa.Column("rho_ps", sa.Float(53)),
        sa.Column("risk_free_rate", sa.Float(53)),
        sa.Column("dividend_yield", sa.Float(53)),
        sa.Column("time_to_expiry_years", sa.Float(53)),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("engine_version", sa.Text, nullable=False),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('ok','expired','missing_inputs','error')", name="position_greek_status_check"),
        sa.CheckConstraint(
            "iv_source IS NULL OR iv_source IN ('market','vendor','historical','default')",
            name="position_greek_iv_source_check",
        ),
        sa.CheckConstraint("option_type IS NULL OR option_type IN ('C','P')", name="position_greek_option_type_check"),
        sa.CheckConstraint(f"status <> 'ok' OR ({all_not_null})", name="position_greek_ok_check"),
        sa.CheckConstraint(f"status <> 'expired' OR ({all_zero})", name="position_greek_expired_check"),
        sa.CheckConstraint(
            f"status NOT IN ('missing_inputs','error') OR ({all_null})", name="position_greek_no_values_check"
        ),
        schema="greeks",
    )
    op.create_index(
        "position_greek_portfolio_date_idx", "position_greek", ["portfolio_id", "calculation_date"], schema="greeks"
    )
    op.execute(f"CREATE VIEW greeks.api_position_greek AS SELECT {COLUMNS} FROM greeks.position_greek")
    op.execute(
        f"""
        CREATE VIEW greeks.api_latest_position_greek AS
        SELECT DISTINCT ON (position_id) {COLUMNS}
        FROM greeks.position_greek
        ORDER BY position_id, calculation_date DESC
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS greeks.api_latest_position_greek")
    op.execute("DROP VIEW IF EXISTS greeks.api_position_greek")
    op.drop_table("position_greek", schema="greeks")
