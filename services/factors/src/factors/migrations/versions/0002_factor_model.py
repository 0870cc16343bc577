"""Factor model storage (data-model.md §7.2-7.6) and its published views (docs/contracts.md).

factor_matrix + factor_matrix_cell, underlying_regression, underlying_factor_beta,
position_factor_exposure, portfolio_factor_exposure; views api_factor_matrix,
api_factor_covariance, api_underlying_beta, api_position_factor_exposure,
api_portfolio_factor_exposure.

Additive columns beyond data-model.md: `engine_version` (calculations.md §0.7 asks every result row
to carry one) on factor_matrix, underlying_regression and portfolio_factor_exposure; `reason`,
`flags` and `excluded` on portfolio_factor_exposure (why a factor is not calculated, portfolio
flags, positions left out of the exposure base); `created_at` on the position rows.

Revision ID: factors_0002
Revises: factors_0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "factors_0002"
down_revision: str | None = "factors_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = """
CREATE TABLE factors.factor_matrix (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    calculation_date  date NOT NULL,
    basis             text NOT NULL,
    lookback_days     smallint NOT NULL DEFAULT 252,
    window_start_date date NOT NULL,
    window_end_date   date NOT NULL,
    observations      smallint NOT NULL,
    factor_codes      text[] NOT NULL,
    market_loadings   jsonb,
    volatilities      jsonb,
    diagnostics       jsonb,
    flags             text[] NOT NULL DEFAULT '{}'::text[],
    engine_version    text NOT NULL DEFAULT '',
    run_id            uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT factor_matrix_basis_check CHECK (basis IN ('model', 'raw')),
    CONSTRAINT factor_matrix_observations_check CHECK (observations >= 60),
    CONSTRAINT factor_matrix_lookback_check CHECK (lookback_days BETWEEN 60 AND 756),
    CONSTRAINT factor_matrix_window_check CHECK (window_start_date <= window_end_date),
    CONSTRAINT factor_matrix_date_lookback_basis_uq UNIQUE (calculation_date, lookback_days, basis)
);

CREATE TABLE factors.factor_matrix_cell (
    matrix_id   uuid NOT NULL REFERENCES factors.factor_matrix (id) ON DELETE CASCADE,
    factor_1    text NOT NULL,
    factor_2    text NOT NULL,
    correlation double precision NOT NULL,
    covariance  double precision NOT NULL,
    PRIMARY KEY (matrix_id, factor_1, factor_2),
    CONSTRAINT factor_matrix_cell_correlation_check CHECK (correlation BETWEEN -1 AND 1)
);

CREATE TABLE factors.underlying_regression (
    symbol              varchar(21) NOT NULL,
    calculation_date    date NOT NULL,
    matrix_id           uuid NOT NULL REFERENCES factors.factor_matrix (id),
    window_start_date   date NOT NULL,
    window_end_date     date NOT NULL,
    observations        smallint NOT NULL,
    quality_flag        text NOT NULL,
    beta_source         text NOT NULL,
    alpha_daily         double precision,
    alpha_p_value       double precision,
    residual_volatility double precision,
    r_squared_joint     double precision,
    condition_number    double precision,
    flags               text[] NOT NULL DEFAULT '{}'::text[],
    engine_version      text NOT NULL DEFAULT '',
    run_id              uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, calculation_date),
    CONSTRAINT underlying_regression_quality_check
        CHECK (quality_flag IN ('full_history', 'limited_history', 'insufficient_history')),
    CONSTRAINT underlying_regression_beta_source_check CHECK (beta_source IN ('regression', 'default')),
    CONSTRAINT underlying_regression_observations_check CHECK (observations >= 0)
);
CREATE INDEX underlying_regression_matrix_idx ON factors.underlying_regression (matrix_id);

CREATE TABLE factors.underlying_factor_beta (
    symbol           varchar(21) NOT NULL,
    calculation_date date NOT NULL,
    factor_id        uuid NOT NULL REFERENCES factors.factor_definition (id),
    beta             double precision,
    std_error        double precision,
    t_stat           double precision,
    p_value          double precision,
    r_squared        double precision,
    adj_r_squared    double precision,
    vif              double precision,
    PRIMARY KEY (symbol, calculation_date, factor_id),
    FOREIGN KEY (symbol, calculation_date)
        REFERENCES factors.underlying_regression (symbol, calculation_date) ON DELETE CASCADE
);
CREATE INDEX underlying_factor_beta_date_factor_idx ON factors.underlying_factor_beta (calculation_date, factor_id);

CREATE TABLE factors.position_factor_exposure (
    position_id       uuid NOT NULL,
    calculation_date  date NOT NULL,
    factor_id         uuid NOT NULL REFERENCES factors.factor_definition (id),
    portfolio_id      uuid NOT NULL,
    symbol            text NOT NULL,
    underlying_symbol text NOT NULL,
    exposure          numeric(20,2),
    beta              double precision,
    beta_source       text,
    exposure_dollar   numeric(20,2),
    quality_flag      text,
    run_id            uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position_id, calculation_date, factor_id),
    CONSTRAINT position_factor_exposure_beta_source_check
        CHECK (beta_source IS NULL OR beta_source IN ('regression', 'default')),
    CONSTRAINT position_factor_exposure_quality_check
        CHECK (quality_flag IS NULL OR quality_flag IN ('full_history', 'limited_history', 'insufficient_history'))
);
CREATE INDEX position_factor_exposure_portfolio_date_idx
    ON factors.position_factor_exposure (portfolio_id, calculation_date);
CREATE INDEX position_factor_exposure_factor_date_idx
    ON factors.position_factor_exposure (factor_id, calculation_date);

CREATE TABLE factors.portfolio_factor_exposure (
    portfolio_id           uuid NOT NULL,
    calculation_date       date NOT NULL,
    factor_id              uuid NOT NULL REFERENCES factors.factor_definition (id),
    exposure_dollar        numeric(20,2),
    beta                   double precision,
    beta_gross             double precision,
    equity                 numeric(20,2),
    gross_exposure         numeric(20,2),
    contributing_positions integer,
    largest_contributor    text,
    coverage_pct           double precision,
    positions_full         integer,
    positions_limited      integer,
    positions_default      integer,
    status                 text NOT NULL,
    reason                 text,
    flags                  text[] NOT NULL DEFAULT '{}'::text[],
    excluded               jsonb NOT NULL DEFAULT '[]'::jsonb,
    engine_version         text NOT NULL DEFAULT '',
    run_id                 uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio_id, calculation_date, factor_id),
    CONSTRAINT portfolio_factor_exposure_status_check CHECK (status IN ('ok', 'not_calculated')),
    CONSTRAINT portfolio_factor_exposure_not_calculated_check
        CHECK (status = 'ok' OR (exposure_dollar IS NULL AND beta IS NULL AND beta_gross IS NULL))
);
CREATE INDEX portfolio_factor_exposure_latest_idx
    ON factors.portfolio_factor_exposure (portfolio_id, calculation_date DESC);
"""

# Published views (docs/contracts.md "factors"): columns are only ever added.
VIEWS = """
CREATE VIEW factors.api_factor_matrix AS
SELECT id, calculation_date, basis, lookback_days, window_start_date, window_end_date, observations,
       factor_codes, market_loadings, volatilities, diagnostics, flags, run_id, created_at
FROM factors.factor_matrix;

CREATE VIEW factors.api_factor_covariance AS
SELECT c.matrix_id, m.calculation_date, m.basis, c.factor_1, c.factor_2, c.correlation, c.covariance,
       m.lookback_days
FROM factors.factor_matrix_cell c
JOIN factors.factor_matrix m ON m.id = c.matrix_id;

CREATE VIEW factors.api_underlying_beta AS
SELECT b.symbol, b.calculation_date, d.code AS factor_code, b.beta, b.std_error, b.t_stat, b.p_value,
       b.r_squared, b.adj_r_squared, b.vif, r.observations, r.quality_flag, r.beta_source, r.flags,
       r.window_start_date, r.window_end_date, r.matrix_id
FROM factors.underlying_factor_beta b
JOIN factors.underlying_regression r ON r.symbol = b.symbol AND r.calculation_date = b.calculation_date
JOIN factors.factor_definition d ON d.id = b.factor_id;

CREATE VIEW factors.api_position_factor_exposure AS
SELECT e.position_id, e.calculation_date, d.code AS factor_code, e.portfolio_id, e.symbol,
       e.underlying_symbol, e.exposure, e.beta, e.beta_source, e.exposure_dollar, e.quality_flag
FROM factors.position_factor_exposure e
JOIN factors.factor_definition d ON d.id = e.factor_id;

CREATE VIEW factors.api_portfolio_factor_exposure AS
SELECT e.portfolio_id, e.calculation_date, d.code AS factor_code, e.exposure_dollar, e.beta, e.beta_gross,
       e.equity, e.gross_exposure, e.contributing_positions, e.largest_contributor, e.coverage_pct,
       e.positions_full, e.positions_limited, e.positions_default, e.status
FROM factors.portfolio_factor_exposure e
JOIN factors.factor_definition d ON d.id = e.factor_id;
"""

VIEW_NAMES = (
    "api_portfolio_factor_exposure",
    "api_position_factor_exposure",
    "api_underlying_beta",
    "api_factor_covariance",
    "api_factor_matrix",
)
TABLE_NAMES = (
    "portfolio_factor_exposure",
    "position_factor_exposure",
    "underlying_factor_beta",
    "underlying_regression",
    "factor_matrix_cell",
    "factor_matrix",
)


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def upgrade() -> None:
    for statement in _statements(TABLES) + _statements(VIEWS):
        op.execute(statement)


def downgrade() -> None:
    for view in VIEW_NAMES:
        op.execute(f"DROP VIEW IF EXISTS factors.{view}")
    for table in TABLE_NAMES:
        op.execute(f"DROP TABLE IF EXISTS factors.{table}")
