"""Tables of the `greeks` schema (data-model.md §6.1), sharing one MetaData with the plumbing tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

STATUSES = ("ok", "expired", "missing_inputs", "error")
IV_SOURCES = ("market", "vendor", "historical", "default")
GREEK_COLUMNS = ("delta", "gamma", "theta", "vega", "rho")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def position_greek_columns() -> list[sa.schema.SchemaItem]:
    """Columns and CHECK constraints of greeks.position_greek (mirrors migration greeks_0001)."""
    all_not_null = " AND ".join(f"{g} IS NOT NULL" for g in GREEK_COLUMNS)
    all_zero = " AND ".join(f"{g} = 0" for g in GREEK_COLUMNS)
    all_null = " AND ".join(f"{g} IS NULL" for g in GREEK_COLUMNS)
    return [
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
        # Position level, signed by quantity (api.md §3.3): shares, shares per $1, $/day, $/vol pt, $/pp.
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
        sa.CheckConstraint(_in("status", STATUSES), name="position_greek_status_check"),
        sa.CheckConstraint(
            f"iv_source IS NULL OR {_in('iv_source', IV_SOURCES)}", name="position_greek_iv_source_check"
        ),
        sa.CheckConstraint("option_type IS NULL OR option_type IN ('C','P')", name="position_greek_option_type_check"),
        sa.CheckConstraint(f"status <> 'ok' OR ({all_not_null})", name="position_greek_ok_check"),
        sa.CheckConstraint(f"status <> 'expired' OR ({all_zero})", name="position_greek_expired_check"),
        sa.CheckConstraint(
            f"status NOT IN ('missing_inputs','error') OR ({all_null})", name="position_greek_no_values_check"
        ),
    ]


position_greek = sa.Table("position_greek", metadata, *position_greek_columns(), schema="greeks")
sa.Index("position_greek_portfolio_date_idx", position_greek.c.portfolio_id, position_greek.c.calculation_date)
