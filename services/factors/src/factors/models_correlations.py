"""Position-correlation tables of the `factors` schema (data-model.md §7.7–7.10), on the service MetaData.

Symbols use the "C" collation so that the `symbol_1 < symbol_2` CHECK and every ORDER BY agree with
Python's code-point order whatever the database's default collation is.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from factors.models import metadata

SCHEMA = "factors"
SYMBOL = sa.String(21, collation="C")
MONEY = sa.Numeric(20, 2)
FLOAT = sa.Float(precision=53)

DATA_QUALITY = ("sufficient", "limited", "insufficient")
FILTER_MODES = ("value_only", "weight_only", "both", "either")
EXCLUSION_REASONS = ("below_filter", "insufficient_history", "missing_exposure")
NICKNAME_SOURCES = ("tag", "sector", "largest_position")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


correlation_calculation = sa.Table(
    "correlation_calculation",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("calculation_date", sa.Date, nullable=False),
    sa.Column("duration_days", sa.SmallInteger, nullable=False, server_default="90"),
    sa.Column("average_correlation", FLOAT),
    sa.Column("weighted_average_correlation", FLOAT),
    sa.Column("direction_adjusted_correlation", FLOAT),
    sa.Column("effective_positions_hhi", FLOAT),
    sa.Column("effective_positions_corr", FLOAT),
    sa.Column("concentration_gross", FLOAT),
    sa.Column("concentration_net", FLOAT),
    sa.Column("data_quality", sa.Text, nullable=False),
    sa.Column("min_position_value", MONEY, nullable=False, server_default="10000"),
    sa.Column("min_portfolio_weight", FLOAT, nullable=False, server_default="0.01"),
    sa.Column("filter_mode", sa.Text, nullable=False, server_default="both"),
    sa.Column("correlation_threshold", FLOAT, nullable=False, server_default="0.7"),
    sa.Column("nodes_included", sa.Integer, nullable=False),
    sa.Column("nodes_excluded", sa.Integer, nullable=False),
    sa.Column("inputs_hash", pg.BYTEA, nullable=False),
    sa.Column("run_id", pg.UUID(as_uuid=True)),
    # Additive to data-model.md §7.7 (calculations.md §0.7 provenance; weight filter on read):
    sa.Column("gross_exposure", MONEY, nullable=False),  # G = Σ|dollar_exposure| of every priced position
    sa.Column("valid_pairs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("null_pairs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start_date", sa.Date),
    sa.Column("window_end_date", sa.Date),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("engine_version", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint(
        "portfolio_id", "duration_days", "calculation_date", name="correlation_calculation_portfolio_window_date_uq"
    ),
    sa.CheckConstraint(_in("data_quality", DATA_QUALITY), name="correlation_calculation_quality_check"),
    sa.CheckConstraint(_in("filter_mode", FILTER_MODES), name="correlation_calculation_filter_mode_check"),
    sa.CheckConstraint("duration_days BETWEEN 30 AND 252", name="correlation_calculation_duration_check"),
    sa.CheckConstraint(
        "correlation_threshold >= 0 AND correlation_threshold <= 1", name="correlation_calculation_threshold_check"
    ),
    sa.CheckConstraint(
        "min_position_value >= 0 AND min_portfolio_weight >= 0 AND min_portfolio_weight <= 1",
        name="correlation_calculation_filter_values_check",
    ),
    sa.Index(
        "correlation_calculation_latest_idx",
        "portfolio_id",
        sa.text("calculation_date DESC"),
        sa.text("created_at DESC"),
    ),
    schema=SCHEMA,
)

correlation_node = sa.Table(
    "correlation_node",
    metadata,
    sa.Column(
        "calculation_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.correlation_calculation.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("symbol", SYMBOL, primary_key=True),
    sa.Column("position_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False),
    sa.Column("position_types", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("exposure", MONEY, nullable=False),
    sa.Column("market_value", MONEY),
    sa.Column("observations", sa.SmallInteger),
    sa.Column("included", sa.Boolean, nullable=False),
    sa.Column("exclusion_reason", sa.Text),
    # Additive: what the cluster nickname rule needs when clusters are recomputed on read (#41).
    sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("sector", sa.Text),
    sa.CheckConstraint(
        f"exclusion_reason IS NULL OR {_in('exclusion_reason', EXCLUSION_REASONS)}",
        name="correlation_node_reason_check",
    ),
    sa.CheckConstraint("included = (exclusion_reason IS NULL)", name="correlation_node_included_check"),
    schema=SCHEMA,
)

# One row per calculation: the upper triangle of its pairs as parallel arrays (migration factors_0005;
# the view factors.api_pairwise_correlation has one row per pair).
pairwise_correlation = sa.Table(
    "pairwise_correlation",
    metadata,
    sa.Column(
        "calculation_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.correlation_calculation.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("symbols_1", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("symbols_2", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("correlations", pg.ARRAY(FLOAT), nullable=False),
    sa.Column("correlations_dir", pg.ARRAY(FLOAT), nullable=False),
    sa.Column("observations", pg.ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("p_values", pg.ARRAY(FLOAT), nullable=False),
    schema=SCHEMA,
)

correlation_cluster = sa.Table(
    "correlation_cluster",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "calculation_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.correlation_calculation.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("cluster_number", sa.SmallInteger, nullable=False),
    sa.Column("threshold", FLOAT, nullable=False),
    sa.Column("nickname", sa.Text, nullable=False),
    sa.Column("nickname_source", sa.Text),
    sa.Column("avg_correlation", FLOAT),
    sa.Column("gross", MONEY),
    sa.Column("net", MONEY),
    sa.Column("share_of_gross", FLOAT),
    sa.UniqueConstraint("calculation_id", "cluster_number", name="correlation_cluster_calculation_number_uq"),
    sa.CheckConstraint(
        f"nickname_source IS NULL OR {_in('nickname_source', NICKNAME_SOURCES)}",
        name="correlation_cluster_nickname_source_check",
    ),
    schema=SCHEMA,
)

correlation_cluster_member = sa.Table(
    "correlation_cluster_member",
    metadata,
    sa.Column(
        "cluster_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.correlation_cluster.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("symbol", SYMBOL, primary_key=True),
    sa.Column("exposure", MONEY),
    sa.Column("share_of_gross", FLOAT),
    sa.Column("correlation_to_cluster", FLOAT),
    schema=SCHEMA,
)
