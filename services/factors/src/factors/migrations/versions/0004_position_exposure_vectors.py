"""Position factor exposures: one row per (position, date) holding the per-factor values as arrays.

data-model.md §7.5 draws one row per (position, date, factor). A daily cycle over 1,000 portfolios ×
20 positions wrote 160,000 such rows (three index entries each, every per-position column repeated
for each of the 8 factors); writing them was the largest single cost of the factors step. Here a
position's factor ids, betas and dollar exposures travel as three parallel arrays on one row (8×
fewer rows and index entries). The published view factors.api_position_factor_exposure keeps the
§7.5 / §9 shape (one row per position and factor, `exposure_dollar` numeric(20,2)), so readers are
unchanged. `exposure_dollars` holds the cent-rounded dollars as float8; the view's cast to
numeric(20,2) gives the same value the numeric column held (the same float8 → numeric conversion).

Revision ID: factors_0004
Revises: factors_0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "factors_0004"
down_revision: str | None = "factors_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = """
CREATE VIEW factors.api_position_factor_exposure AS
SELECT e.position_id, e.calculation_date, d.code AS factor_code, e.portfolio_id, e.symbol,
       e.underlying_symbol, e.exposure, f.beta, e.beta_source,
       CAST(f.exposure_dollar AS numeric(20,2)) AS exposure_dollar, e.quality_flag
FROM factors.position_factor_exposure e
CROSS JOIN LATERAL unnest(e.factor_ids, e.betas, e.exposure_dollars) AS f(factor_id, beta, exposure_dollar)
JOIN factors.factor_definition d ON d.id = f.factor_id
"""

OLD_VIEW = """
CREATE VIEW factors.api_position_factor_exposure AS
SELECT e.position_id, e.calculation_date, d.code AS factor_code, e.portfolio_id, e.symbol,
       e.underlying_symbol, e.exposure, e.beta, e.beta_source, e.exposure_dollar, e.quality_flag
FROM factors.position_factor_exposure e
JOIN factors.factor_definition d ON d.id = e.factor_id
"""

UPGRADE = [
    "DROP VIEW factors.api_position_factor_exposure",
    "ALTER TABLE factors.position_factor_exposure RENAME TO position_factor_exposure_rows",
    "ALTER INDEX factors.position_factor_exposure_pkey RENAME TO position_factor_exposure_rows_pkey",
    "ALTER INDEX factors.position_factor_exposure_portfolio_date_idx RENAME TO position_factor_exposure_rows_pd_idx",
    """
CREATE TABLE factors.position_factor_exposure (
    position_id       uuid NOT NULL,
    calculation_date  date NOT NULL,
    portfolio_id      uuid NOT NULL,
    symbol            text NOT NULL,
    underlying_symbol text NOT NULL,
    exposure          numeric(20,2),
    beta_source       text,
    quality_flag      text,
    factor_ids        uuid[] NOT NULL,
    betas             double precision[] NOT NULL,
    exposure_dollars  double precision[] NOT NULL,
    run_id            uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position_id, calculation_date),
    CONSTRAINT position_factor_exposure_arrays_check
        CHECK (cardinality(betas) = cardinality(factor_ids) AND cardinality(exposure_dollars) = cardinality(factor_ids)),
    CONSTRAINT position_factor_exposure_beta_source_check
        CHECK (beta_source IS NULL OR beta_source IN ('regression', 'default')),
    CONSTRAINT position_factor_exposure_quality_check
        CHECK (quality_flag IS NULL OR quality_flag IN ('full_history', 'limited_history', 'insufficient_history'))
)""",
    """
INSERT INTO factors.position_factor_exposure
SELECT position_id, calculation_date, min(portfolio_id::text)::uuid, min(symbol), min(underlying_symbol),
       min(exposure), min(beta_source), min(quality_flag),
       array_agg(factor_id ORDER BY factor_id), array_agg(beta ORDER BY factor_id),
       array_agg(CAST(exposure_dollar AS float8) ORDER BY factor_id), min(run_id::text)::uuid, min(created_at)
FROM factors.position_factor_exposure_rows
GROUP BY position_id, calculation_date""",
    "DROP TABLE factors.position_factor_exposure_rows",
    """CREATE INDEX position_factor_exposure_portfolio_date_idx
    ON factors.position_factor_exposure (portfolio_id, calculation_date)""",
    VIEW,
]

DOWNGRADE = [
    "DROP VIEW factors.api_position_factor_exposure",
    "ALTER TABLE factors.position_factor_exposure RENAME TO position_factor_exposure_vectors",
    "ALTER INDEX factors.position_factor_exposure_portfolio_date_idx RENAME TO position_factor_exposure_vectors_pd_idx",
    "ALTER INDEX factors.position_factor_exposure_pkey RENAME TO position_factor_exposure_vectors_pkey",
    """
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
)""",
    """
INSERT INTO factors.position_factor_exposure
SELECT e.position_id, e.calculation_date, f.factor_id, e.portfolio_id, e.symbol, e.underlying_symbol, e.exposure,
       f.beta, e.beta_source, CAST(f.exposure_dollar AS numeric(20,2)), e.quality_flag, e.run_id, e.created_at
FROM factors.position_factor_exposure_vectors e
CROSS JOIN LATERAL unnest(e.factor_ids, e.betas, e.exposure_dollars) AS f(factor_id, beta, exposure_dollar)""",
    "DROP TABLE factors.position_factor_exposure_vectors",
    """CREATE INDEX position_factor_exposure_portfolio_date_idx
    ON factors.position_factor_exposure (portfolio_id, calculation_date)""",
    """CREATE INDEX position_factor_exposure_factor_date_idx
    ON factors.position_factor_exposure (factor_id, calculation_date)""",
    OLD_VIEW,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
