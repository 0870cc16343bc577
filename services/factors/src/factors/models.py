"""Tables of the `factors` schema (SQLAlchemy Core, one MetaData shared by every factors module).

Created by the hand-written migrations in `factors/migrations/versions`; these definitions are what
the code reads and writes (data-model.md §7.1-7.6).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

UUID = pg.UUID(as_uuid=True)
MONEY = sa.Numeric(20, 2)
FLOAT = sa.Float(precision=53)


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


factor_definition = sa.Table(
    "factor_definition",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("factor_type", sa.Text, nullable=False),
    sa.Column("proxy", sa.String(12)),
    sa.Column("proxy_type", sa.Text),
    sa.Column("display_order", sa.SmallInteger, nullable=False, unique=True),
    sa.Column("calculation_method", sa.Text, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("factor_type IN ('market','style','macro','alternative')", name="factor_type_check"),
    sa.CheckConstraint("proxy_type IN ('etf','rate_series')", name="factor_proxy_type_check"),
    sa.CheckConstraint("calculation_method IN ('regression','not_calculated')", name="factor_method_check"),
    schema="factors",
)

factor_matrix = sa.Table(
    "factor_matrix",
    metadata,
    sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("calculation_date", sa.Date, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),
    sa.Column("lookback_days", sa.SmallInteger, nullable=False, server_default="252"),
    sa.Column("window_start_date", sa.Date, nullable=False),
    sa.Column("window_end_date", sa.Date, nullable=False),
    sa.Column("observations", sa.SmallInteger, nullable=False),
    sa.Column("factor_codes", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("market_loadings", pg.JSONB),
    sa.Column("volatilities", pg.JSONB),
    sa.Column("diagnostics", pg.JSONB),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("engine_version", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", UUID),
    _created_at(),
    sa.UniqueConstraint("calculation_date", "lookback_days", "basis", name="factor_matrix_date_lookback_basis_uq"),
    schema="factors",
)

factor_matrix_cell = sa.Table(
    "factor_matrix_cell",
    metadata,
    sa.Column("matrix_id", UUID, sa.ForeignKey("factors.factor_matrix.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("factor_1", sa.Text, primary_key=True),
    sa.Column("factor_2", sa.Text, primary_key=True),
    sa.Column("correlation", FLOAT, nullable=False),
    sa.Column("covariance", FLOAT, nullable=False),
    schema="factors",
)

underlying_regression = sa.Table(
    "underlying_regression",
    metadata,
    sa.Column("symbol", sa.String(21), primary_key=True),
    sa.Column("calculation_date", sa.Date, primary_key=True),
    sa.Column("matrix_id", UUID, sa.ForeignKey("factors.factor_matrix.id"), nullable=False),
    sa.Column("window_start_date", sa.Date, nullable=False),
    sa.Column("window_end_date", sa.Date, nullable=False),
    sa.Column("observations", sa.SmallInteger, nullable=False),
    sa.Column("quality_flag", sa.Text, nullable=False),
    sa.Column("beta_source", sa.Text, nullable=False),
    sa.Column("alpha_daily", FLOAT),
    sa.Column("alpha_p_value", FLOAT),
    sa.Column("residual_volatility", FLOAT),
    sa.Column("r_squared_joint", FLOAT),
    sa.Column("condition_number", FLOAT),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("engine_version", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", UUID),
    _created_at(),
    schema="factors",
)

underlying_factor_beta = sa.Table(
    "underlying_factor_beta",
    metadata,
    sa.Column("symbol", sa.String(21), primary_key=True),
    sa.Column("calculation_date", sa.Date, primary_key=True),
    sa.Column("factor_id", UUID, sa.ForeignKey("factors.factor_definition.id"), primary_key=True),
    sa.Column("beta", FLOAT),
    sa.Column("std_error", FLOAT),
    sa.Column("t_stat", FLOAT),
    sa.Column("p_value", FLOAT),
    sa.Column("r_squared", FLOAT),
    sa.Column("adj_r_squared", FLOAT),
    sa.Column("vif", FLOAT),
    sa.ForeignKeyConstraint(
        ["symbol", "calculation_date"],
        ["factors.underlying_regression.symbol", "factors.underlying_regression.calculation_date"],
        ondelete="CASCADE",
    ),
    schema="factors",
)

# One row per (position, date); the per-factor values are parallel arrays (migration factors_0004).
position_factor_exposure = sa.Table(
    "position_factor_exposure",
    metadata,
    sa.Column("position_id", UUID, primary_key=True),
    sa.Column("calculation_date", sa.Date, primary_key=True),
    sa.Column("portfolio_id", UUID, nullable=False),
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("underlying_symbol", sa.Text, nullable=False),
    sa.Column("exposure", MONEY),
    sa.Column("beta_source", sa.Text),
    sa.Column("quality_flag", sa.Text),
    sa.Column("factor_ids", sa.ARRAY(UUID), nullable=False),
    sa.Column("betas", sa.ARRAY(FLOAT), nullable=False),
    sa.Column("exposure_dollars", sa.ARRAY(FLOAT), nullable=False),
    sa.Column("run_id", UUID),
    _created_at(),
    schema="factors",
)

portfolio_factor_exposure = sa.Table(
    "portfolio_factor_exposure",
    metadata,
    sa.Column("portfolio_id", UUID, primary_key=True),
    sa.Column("calculation_date", sa.Date, primary_key=True),
    sa.Column("factor_id", UUID, sa.ForeignKey("factors.factor_definition.id"), primary_key=True),
    sa.Column("exposure_dollar", MONEY),
    sa.Column("beta", FLOAT),
    sa.Column("beta_gross", FLOAT),
    sa.Column("equity", MONEY),
    sa.Column("gross_exposure", MONEY),
    sa.Column("contributing_positions", sa.Integer),
    sa.Column("largest_contributor", sa.Text),
    sa.Column("coverage_pct", FLOAT),
    sa.Column("positions_full", sa.Integer),
    sa.Column("positions_limited", sa.Integer),
    sa.Column("positions_default", sa.Integer),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("excluded", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("engine_version", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", UUID),
    _created_at(),
    schema="factors",
)
