"""Scenario catalogue, stress runs and results, market-risk scenario results (data-model.md §8.1–8.4).

Revision ID: stress_0002
Revises: stress_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "stress_0002"
down_revision = "stress_0001"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 2)


def upgrade() -> None:
    op.create_table(
        "stress_scenario",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("scenario_key", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("shocks", pg.JSONB, nullable=False),
        sa.Column("option_iv_shift", sa.Float, nullable=False, server_default="0"),
        sa.Column("historical_start_date", sa.Date),
        sa.Column("historical_end_date", sa.Date),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_builtin", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("display_order", sa.SmallInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("scenario_key", name="stress_scenario_key_uq"),
        sa.CheckConstraint(
            "category IN ('market', 'rates', 'rotation', 'volatility', 'historical')",
            name="stress_scenario_category_check",
        ),
        sa.CheckConstraint(
            "severity IN ('mild', 'moderate', 'severe', 'extreme')", name="stress_scenario_severity_check"
        ),
        sa.CheckConstraint("jsonb_typeof(shocks) = 'object'", name="stress_scenario_shocks_check"),
        sa.CheckConstraint("option_iv_shift BETWEEN -1 AND 1", name="stress_scenario_iv_shift_check"),
        sa.CheckConstraint(
            "historical_start_date IS NULL OR historical_end_date IS NULL"
            " OR historical_start_date <= historical_end_date",
            name="stress_scenario_period_check",
        ),
        schema="stress",
    )
    op.create_index(
        "stress_scenario_category_active_idx",
        "stress_scenario",
        ["category"],
        schema="stress",
        postgresql_where=sa.text("is_active"),
    )

    op.create_table(
        "stress_run",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("calculation_date", sa.Date, nullable=False),
        sa.Column("trigger", sa.Text),
        sa.Column("factor_exposure_date", sa.Date),
        sa.Column("matrix_id", pg.UUID(as_uuid=True)),
        sa.Column("equity", MONEY),
        sa.Column("scenarios_run", sa.SmallInteger),
        sa.Column("summary", pg.JSONB),
        sa.Column("partial", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("job_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("trigger IN ('batch', 'api')", name="stress_run_trigger_check"),
        sa.CheckConstraint("scenarios_run >= 0", name="stress_run_scenarios_check"),
        schema="stress",
    )
    # Latest run of a portfolio (#40) and the batch upsert ("re-running a date replaces").
    op.create_index(
        "stress_run_portfolio_latest_idx",
        "stress_run",
        ["portfolio_id", sa.text("calculation_date DESC"), sa.text("created_at DESC")],
        schema="stress",
    )
    # One batch run per portfolio and date: a re-run of the date replaces it (upsert target).
    op.create_index(
        "stress_run_batch_uq",
        "stress_run",
        ["portfolio_id", "calculation_date"],
        unique=True,
        schema="stress",
        postgresql_where=sa.text("trigger = 'batch'"),
    )

    op.create_table(
        "stress_result",
        sa.Column(
            "stress_run_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("stress.stress_run.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scenario_id", pg.UUID(as_uuid=True), sa.ForeignKey("stress.stress_scenario.id"), primary_key=True),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("calculation_date", sa.Date, nullable=False),
        sa.Column("direct_pnl", MONEY),
        sa.Column("direct_linear_pnl", MONEY),
        sa.Column("correlated_pnl", MONEY),
        sa.Column("correlated_linear_pnl", MONEY),
        sa.Column("correlation_effect", MONEY),
        sa.Column("direct_pnl_pct", sa.Float),
        sa.Column("correlated_pnl_pct", sa.Float),
        sa.Column("worst_factor", sa.Text),
        sa.Column("implied_factor_moves", pg.JSONB),
        sa.Column("direct_factor_impacts", pg.JSONB),
        sa.Column("correlated_factor_impacts", pg.JSONB),
        sa.Column("top_positions", pg.JSONB),
        sa.Column("floored_positions", sa.SmallInteger),
        # Additive: the correlated method floors underlyings of its own.
        sa.Column("correlated_floored_positions", sa.SmallInteger),
        sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "floored_positions >= 0 AND correlated_floored_positions >= 0", name="stress_result_floored_check"
        ),
        # A scenario that could not be computed carries its reason instead of a number (users.md OPS-06).
        sa.CheckConstraint(
            "(direct_pnl IS NOT NULL AND direct_linear_pnl IS NOT NULL)"
            " OR flags && ARRAY['factor_unavailable', 'invalid_scenario']::text[]",
            name="stress_result_computed_check",
        ),
        schema="stress",
    )
    op.create_index(
        "stress_result_portfolio_date_idx", "stress_result", ["portfolio_id", "calculation_date"], schema="stress"
    )

    op.create_table(
        "market_risk_result",
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("calculation_date", sa.Date, primary_key=True),
        sa.Column("scenario_key", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("shock", sa.Float, nullable=False),
        sa.Column("predicted_pnl", MONEY),
        sa.Column("linear_pnl", MONEY),
        sa.Column("nonlinear_adjustment", MONEY),
        sa.Column("predicted_pnl_pct", sa.Float),
        sa.Column("exposure_dollar", MONEY),
        sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('market', 'interest_rate')", name="market_risk_result_kind_check"),
        # Rate scenarios without rate data store NULL P&L with the flag `rate_data_missing`.
        sa.CheckConstraint(
            "kind = 'interest_rate' OR predicted_pnl IS NOT NULL", name="market_risk_result_predicted_check"
        ),
        schema="stress",
    )

    # Published view (docs/contracts.md): all columns of stress_run.
    op.execute("CREATE VIEW stress.api_stress_run AS SELECT * FROM stress.stress_run")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS stress.api_stress_run")
    op.drop_table("market_risk_result", schema="stress")
    op.drop_table("stress_result", schema="stress")
    op.drop_table("stress_run", schema="stress")
    op.drop_table("stress_scenario", schema="stress")
