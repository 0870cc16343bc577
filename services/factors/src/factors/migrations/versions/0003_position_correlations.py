"""Position correlations: correlation_calculation, correlation_node, pairwise_correlation,
correlation_cluster, correlation_cluster_member (data-model.md §7.7–7.10) and the published view
factors.api_correlation_calculation.

Revision ID: factors_0003
Revises: factors_0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "factors_0003"
down_revision: str | None = "factors_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Symbols use COLLATE "C" so `symbol_1 < symbol_2` matches code-point order (BRK-B before BRKA) whatever
# the database collation is.
TABLES = """
CREATE TABLE factors.correlation_calculation (
    id                             uuid PRIMARY KEY,
    portfolio_id                   uuid NOT NULL,
    calculation_date               date NOT NULL,
    duration_days                  smallint NOT NULL DEFAULT 90,
    average_correlation            double precision,
    weighted_average_correlation   double precision,
    direction_adjusted_correlation double precision,
    effective_positions_hhi        double precision,
    effective_positions_corr       double precision,
    concentration_gross            double precision,
    concentration_net              double precision,
    data_quality                   text NOT NULL,
    min_position_value             numeric(20,2) NOT NULL DEFAULT 10000,
    min_portfolio_weight           double precision NOT NULL DEFAULT 0.01,
    filter_mode                    text NOT NULL DEFAULT 'both',
    correlation_threshold          double precision NOT NULL DEFAULT 0.7,
    nodes_included                 integer NOT NULL,
    nodes_excluded                 integer NOT NULL,
    inputs_hash                    bytea NOT NULL,
    run_id                         uuid,
    gross_exposure                 numeric(20,2) NOT NULL,
    valid_pairs                    integer NOT NULL DEFAULT 0,
    null_pairs                     integer NOT NULL DEFAULT 0,
    window_start_date              date,
    window_end_date                date,
    flags                          text[] NOT NULL DEFAULT '{}'::text[],
    engine_version                 text NOT NULL,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT correlation_calculation_portfolio_window_date_uq UNIQUE (portfolio_id, duration_days, calculation_date),
    CONSTRAINT correlation_calculation_quality_check CHECK (data_quality IN ('sufficient', 'limited', 'insufficient')),
    CONSTRAINT correlation_calculation_filter_mode_check
        CHECK (filter_mode IN ('value_only', 'weight_only', 'both', 'either')),
    CONSTRAINT correlation_calculation_duration_check CHECK (duration_days BETWEEN 30 AND 252),
    CONSTRAINT correlation_calculation_threshold_check
        CHECK (correlation_threshold >= 0 AND correlation_threshold <= 1),
    CONSTRAINT correlation_calculation_filter_values_check
        CHECK (min_position_value >= 0 AND min_portfolio_weight >= 0 AND min_portfolio_weight <= 1)
);
CREATE INDEX correlation_calculation_latest_idx
    ON factors.correlation_calculation (portfolio_id, calculation_date DESC, created_at DESC);

CREATE TABLE factors.correlation_node (
    calculation_id   uuid NOT NULL REFERENCES factors.correlation_calculation (id) ON DELETE CASCADE,
    symbol           varchar(21) COLLATE "C" NOT NULL,
    position_ids     uuid[] NOT NULL,
    position_types   text[] NOT NULL,
    exposure         numeric(20,2) NOT NULL,
    market_value     numeric(20,2),
    observations     smallint,
    included         boolean NOT NULL,
    exclusion_reason text,
    tags             text[] NOT NULL DEFAULT '{}'::text[],
    sector           text,
    PRIMARY KEY (calculation_id, symbol),
    CONSTRAINT correlation_node_reason_check CHECK (
        exclusion_reason IS NULL OR exclusion_reason IN ('below_filter', 'insufficient_history', 'missing_exposure')),
    CONSTRAINT correlation_node_included_check CHECK (included = (exclusion_reason IS NULL))
);

CREATE TABLE factors.pairwise_correlation (
    calculation_id  uuid NOT NULL REFERENCES factors.correlation_calculation (id) ON DELETE CASCADE,
    symbol_1        varchar(21) COLLATE "C" NOT NULL,
    symbol_2        varchar(21) COLLATE "C" NOT NULL,
    correlation     double precision,
    correlation_dir double precision,
    observations    smallint NOT NULL,
    p_value         double precision,
    PRIMARY KEY (calculation_id, symbol_1, symbol_2),
    CONSTRAINT pairwise_correlation_order_check CHECK (symbol_1 < symbol_2),
    CONSTRAINT pairwise_correlation_range_check
        CHECK (correlation IS NULL OR (correlation >= -1 AND correlation <= 1))
);

CREATE TABLE factors.correlation_cluster (
    id              uuid PRIMARY KEY,
    calculation_id  uuid NOT NULL REFERENCES factors.correlation_calculation (id) ON DELETE CASCADE,
    cluster_number  smallint NOT NULL,
    threshold       double precision NOT NULL,
    nickname        text NOT NULL,
    nickname_source text,
    avg_correlation double precision,
    gross           numeric(20,2),
    net             numeric(20,2),
    share_of_gross  double precision,
    CONSTRAINT correlation_cluster_calculation_number_uq UNIQUE (calculation_id, cluster_number),
    CONSTRAINT correlation_cluster_nickname_source_check
        CHECK (nickname_source IS NULL OR nickname_source IN ('tag', 'sector', 'largest_position'))
);

CREATE TABLE factors.correlation_cluster_member (
    cluster_id             uuid NOT NULL REFERENCES factors.correlation_cluster (id) ON DELETE CASCADE,
    symbol                 varchar(21) COLLATE "C" NOT NULL,
    exposure               numeric(20,2),
    share_of_gross         double precision,
    correlation_to_cluster double precision,
    PRIMARY KEY (cluster_id, symbol)
);
"""

# Published view (docs/contracts.md): columns are only ever added. inputs_hash stays internal.
VIEWS = """
CREATE VIEW factors.api_correlation_calculation AS
SELECT id, portfolio_id, calculation_date, duration_days, average_correlation, weighted_average_correlation,
       direction_adjusted_correlation, effective_positions_hhi, effective_positions_corr, concentration_gross,
       concentration_net, data_quality, min_position_value, min_portfolio_weight, filter_mode,
       correlation_threshold, nodes_included, nodes_excluded, run_id, gross_exposure, valid_pairs, null_pairs,
       window_start_date, window_end_date, flags, engine_version, created_at
FROM factors.correlation_calculation
"""


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def upgrade() -> None:
    for statement in _statements(TABLES) + _statements(VIEWS):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS factors.api_correlation_calculation")
    for table in (
        "correlation_cluster_member",
        "correlation_cluster",
        "pairwise_correlation",
        "correlation_node",
        "correlation_calculation",
    ):
        op.execute(f"DROP TABLE IF EXISTS factors.{table}")
