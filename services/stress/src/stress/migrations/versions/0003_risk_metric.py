"""Risk metrics (data-model.md §8.5) with the VaR backtest, snapshot flags, published views.

Revision ID: stress_0003
Revises: stress_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "stress_0003"
down_revision = "stress_0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 2)


def upgrade() -> None:
    op.create_table(
        "risk_metric",
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("calculation_date", sa.Date, primary_key=True),
        sa.Column("equity", MONEY),
        sa.Column("var_window_start_date", sa.Date),
        sa.Column("var_window_end_date", sa.Date),
        # 60–252 when VaR is computed; fewer means no VaR (`insufficient_history`).
        sa.Column("var_observations", sa.SmallInteger, nullable=False),
        # 1-day, positive losses, dollars: historical on the delta-gamma P&L series, parametric delta-normal.
        sa.Column("var_95_hist", MONEY),
        sa.Column("var_99_hist", MONEY),
        sa.Column("es_95_hist", MONEY),
        sa.Column("es_99_hist", MONEY),
        sa.Column("var_95_param", MONEY),
        sa.Column("var_99_param", MONEY),
        sa.Column("es_95_param", MONEY),
        sa.Column("es_99_param", MONEY),
        sa.Column("sigma_daily", MONEY),
        sa.Column("ewma", pg.JSONB),
        sa.Column("ex_ante_volatility", sa.Float),
        sa.Column("beta_ex_ante", sa.Float),
        sa.Column("series_type", sa.Text, nullable=False),
        sa.Column("performance_observations", sa.SmallInteger, nullable=False),
        sa.Column("performance_start_date", sa.Date),
        sa.Column("performance_end_date", sa.Date),
        sa.Column("realized_volatility", sa.Float),
        sa.Column("beta_realized", sa.Float),
        sa.Column("alpha_daily", sa.Float),
        sa.Column("beta_r_squared", sa.Float),
        sa.Column("beta_observations", sa.SmallInteger),
        sa.Column("sharpe_ratio", sa.Float),
        sa.Column("sortino_ratio", sa.Float),
        sa.Column("max_drawdown", sa.Float),
        sa.Column("max_drawdown_peak_date", sa.Date),
        sa.Column("max_drawdown_trough_date", sa.Date),
        sa.Column("max_drawdown_recovery_date", sa.Date),
        sa.Column("rate_exposure_dollar", MONEY),
        sa.Column("dv01", MONEY),
        sa.Column("positions_total", sa.Integer, nullable=False),
        sa.Column("positions_included", sa.Integer, nullable=False),
        sa.Column("proxied", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("backtest", pg.JSONB),
        sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("data_status", sa.Text, nullable=False),
        sa.Column("engine_version", sa.Text, nullable=False),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("series_type IN ('realized','simulated_history')", name="risk_metric_series_type_check"),
        sa.CheckConstraint("data_status IN ('fresh','stale','partial')", name="risk_metric_data_status_check"),
        sa.CheckConstraint("var_observations BETWEEN 0 AND 252", name="risk_metric_var_observations_check"),
        sa.CheckConstraint("max_drawdown <= 0", name="risk_metric_max_drawdown_check"),
        sa.CheckConstraint(
            "positions_included >= 0 AND positions_included <= positions_total", name="risk_metric_positions_check"
        ),
        schema="stress",
    )
    # The primary key (portfolio_id, calculation_date) serves "latest" (#33) by a backward index scan.
    op.execute("CREATE VIEW stress.api_risk_metric AS SELECT * FROM stress.risk_metric")

    op.add_column(
        "portfolio_snapshot",
        sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        schema="stress",
    )
    # A view's `*` is expanded when it is created: re-create it so it carries the new column (appended,
    # so the published column list only grows).
    op.execute("CREATE OR REPLACE VIEW stress.api_snapshot AS SELECT * FROM stress.portfolio_snapshot")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS stress.api_snapshot")
    op.drop_column("portfolio_snapshot", "flags", schema="stress")
    op.execute("CREATE VIEW stress.api_snapshot AS SELECT * FROM stress.portfolio_snapshot")
    op.execute("DROP VIEW IF EXISTS stress.api_risk_metric")
    op.drop_table("risk_metric", schema="stress")
