"""Tables of the scenario part of the `stress` schema (data-model.md §8.1–8.4).

They share `stress.models.metadata` with the rest of the service; migration `stress_0002` creates
them (and the published view `stress.api_stress_run`); stress_0007 stores a run's results as one
`stress_result_set` row behind the view `stress.stress_result`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from stress.models import SCHEMA, metadata

MONEY = sa.Numeric(20, 2)

SCENARIO_CATEGORIES = ("market", "rates", "rotation", "volatility", "historical")
SEVERITIES = ("mild", "moderate", "severe", "extreme")
STRESS_TRIGGERS = ("batch", "api")
MARKET_RISK_KINDS = ("market", "interest_rate")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


stress_scenario = sa.Table(
    "stress_scenario",
    metadata,
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
    sa.CheckConstraint(_in("category", SCENARIO_CATEGORIES), name="stress_scenario_category_check"),
    sa.CheckConstraint(_in("severity", SEVERITIES), name="stress_scenario_severity_check"),
    sa.CheckConstraint("jsonb_typeof(shocks) = 'object'", name="stress_scenario_shocks_check"),
    sa.CheckConstraint("option_iv_shift BETWEEN -1 AND 1", name="stress_scenario_iv_shift_check"),
    sa.CheckConstraint(
        "historical_start_date IS NULL OR historical_end_date IS NULL OR historical_start_date <= historical_end_date",
        name="stress_scenario_period_check",
    ),
    schema=SCHEMA,
)

stress_run = sa.Table(
    "stress_run",
    metadata,
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
    sa.CheckConstraint(_in("trigger", STRESS_TRIGGERS), name="stress_run_trigger_check"),
    sa.CheckConstraint("scenarios_run >= 0", name="stress_run_scenarios_check"),
    schema=SCHEMA,
)

# The results of one stress run (data-model.md §8.3), stored as ONE row per run (migration stress_0007):
# element i of every array (and of every JSON document, itself a JSON array) is the scenario
# `scenario_ids[i]`. A run's 18 results used to be 18 rows, each with its own heap tuple, two index
# entries and two foreign-key checks: that write was the costliest statement of the daily cycle.
# Readers see one row per (run, scenario) through the view `stress.stress_result` (`stress_result`).
stress_result_set = sa.Table(
    "stress_result_set",
    metadata,
    sa.Column(
        "stress_run_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.stress_run.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("calculation_date", sa.Date, nullable=False),
    sa.Column("scenario_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False),
    sa.Column("direct_pnl", pg.ARRAY(MONEY), nullable=False),
    sa.Column("direct_linear_pnl", pg.ARRAY(MONEY), nullable=False),
    sa.Column("correlated_pnl", pg.ARRAY(MONEY), nullable=False),
    sa.Column("correlated_linear_pnl", pg.ARRAY(MONEY), nullable=False),
    sa.Column("correlation_effect", pg.ARRAY(MONEY), nullable=False),
    sa.Column("direct_pnl_pct", pg.ARRAY(sa.Float), nullable=False),
    sa.Column("correlated_pnl_pct", pg.ARRAY(sa.Float), nullable=False),
    sa.Column("worst_factor", pg.ARRAY(sa.Text), nullable=False),
    # JSON arrays with one document (or null) per scenario.
    sa.Column("implied_factor_moves", pg.JSON, nullable=False),
    sa.Column("direct_factor_impacts", pg.JSON, nullable=False),
    sa.Column("correlated_factor_impacts", pg.JSON, nullable=False),
    sa.Column("top_positions", pg.JSON, nullable=False),
    sa.Column("floored_positions", pg.ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("correlated_floored_positions", pg.ARRAY(sa.SmallInteger), nullable=False),
    # A JSON array of each scenario's flag list (the lists differ in length: no text[][]).
    sa.Column("flags", pg.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        "0 <= ALL(floored_positions) AND 0 <= ALL(correlated_floored_positions)",
        name="stress_result_set_floored_check",
    ),
    sa.CheckConstraint(
        "cardinality(direct_pnl) = cardinality(scenario_ids)"
        " AND cardinality(correlated_pnl) = cardinality(scenario_ids)",
        name="stress_result_set_shape_check",
    ),
    schema=SCHEMA,
)

# The view `stress.stress_result`: one row per (run, scenario), the columns of data-model.md §8.3.
# Only read (never created from metadata), so it lives outside the service's table metadata.
stress_result = sa.Table(
    "stress_result",
    sa.MetaData(),
    sa.Column("stress_run_id", pg.UUID(as_uuid=True)),
    sa.Column("scenario_id", pg.UUID(as_uuid=True)),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True)),
    sa.Column("calculation_date", sa.Date),
    sa.Column("direct_pnl", MONEY),
    sa.Column("direct_linear_pnl", MONEY),
    sa.Column("correlated_pnl", MONEY),
    sa.Column("correlated_linear_pnl", MONEY),
    sa.Column("correlation_effect", MONEY),
    sa.Column("direct_pnl_pct", sa.Float),
    sa.Column("correlated_pnl_pct", sa.Float),
    sa.Column("worst_factor", sa.Text),
    sa.Column("implied_factor_moves", pg.JSON),
    sa.Column("direct_factor_impacts", pg.JSON),
    sa.Column("correlated_factor_impacts", pg.JSON),
    sa.Column("top_positions", pg.JSON),
    sa.Column("floored_positions", sa.SmallInteger),
    sa.Column("correlated_floored_positions", sa.SmallInteger),
    sa.Column("flags", pg.ARRAY(sa.Text)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    schema=SCHEMA,
)

market_risk_result = sa.Table(
    "market_risk_result",
    metadata,
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("calculation_date", sa.Date, primary_key=True),
    sa.Column("scenario_key", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("shock", sa.Float, nullable=False),
    # NULL only for rate scenarios without rate data (flag `rate_data_missing`).
    sa.Column("predicted_pnl", MONEY),
    sa.Column("linear_pnl", MONEY),
    sa.Column("nonlinear_adjustment", MONEY),
    sa.Column("predicted_pnl_pct", sa.Float),
    # Additive: the factor dollar exposure X the linear part uses (X_M or X_R), and data flags.
    sa.Column("exposure_dollar", MONEY),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("run_id", pg.UUID(as_uuid=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("kind", MARKET_RISK_KINDS), name="market_risk_result_kind_check"),
    sa.CheckConstraint(
        "kind = 'interest_rate' OR predicted_pnl IS NOT NULL", name="market_risk_result_predicted_check"
    ),
    schema=SCHEMA,
)

# One batch run per portfolio and date (migration stress_0002): the upsert target of the daily step.
sa.Index(
    "stress_run_batch_uq",
    stress_run.c.portfolio_id,
    stress_run.c.calculation_date,
    unique=True,
    postgresql_where=sa.text("trigger = 'batch'"),
)
