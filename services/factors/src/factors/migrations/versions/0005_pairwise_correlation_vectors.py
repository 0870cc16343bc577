"""Pairwise correlations: one row per calculation holding the upper triangle as parallel arrays.

data-model.md §7.9 draws one row per (calculation, symbol pair): 190 rows for a 20-underlying book,
190,000 for a 1,000-portfolio daily cycle — with a three-column primary key to maintain — and the
pairs are only ever read back whole, per calculation (the #42 matrix, clusters at another threshold).
Here a calculation's pairs are one row of arrays (symbol_1 < symbol_2 order, NULL where fewer than
30 common observations). The view factors.api_pairwise_correlation keeps the §7.9 row shape.

Revision ID: factors_0005
Revises: factors_0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "factors_0005"
down_revision: str | None = "factors_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = """
CREATE VIEW factors.api_pairwise_correlation AS
SELECT p.calculation_id, CAST(x.symbol_1 AS varchar(21)) COLLATE "C" AS symbol_1,
       CAST(x.symbol_2 AS varchar(21)) COLLATE "C" AS symbol_2, x.correlation, x.correlation_dir,
       x.observations, x.p_value
FROM factors.pairwise_correlation p
CROSS JOIN LATERAL unnest(p.symbols_1, p.symbols_2, p.correlations, p.correlations_dir, p.observations, p.p_values)
    AS x(symbol_1, symbol_2, correlation, correlation_dir, observations, p_value)
"""

UPGRADE = [
    "ALTER TABLE factors.pairwise_correlation RENAME TO pairwise_correlation_rows",
    "ALTER INDEX factors.pairwise_correlation_pkey RENAME TO pairwise_correlation_rows_pkey",
    """
CREATE TABLE factors.pairwise_correlation (
    calculation_id    uuid PRIMARY KEY REFERENCES factors.correlation_calculation (id) ON DELETE CASCADE,
    symbols_1         text[] NOT NULL,
    symbols_2         text[] NOT NULL,
    correlations      double precision[] NOT NULL,
    correlations_dir  double precision[] NOT NULL,
    observations      smallint[] NOT NULL,
    p_values          double precision[] NOT NULL,
    CONSTRAINT pairwise_correlation_arrays_check CHECK (
        cardinality(symbols_2) = cardinality(symbols_1) AND cardinality(correlations) = cardinality(symbols_1)
        AND cardinality(correlations_dir) = cardinality(symbols_1)
        AND cardinality(observations) = cardinality(symbols_1) AND cardinality(p_values) = cardinality(symbols_1))
)""",
    """
INSERT INTO factors.pairwise_correlation
SELECT calculation_id,
       array_agg(symbol_1::text ORDER BY symbol_1, symbol_2), array_agg(symbol_2::text ORDER BY symbol_1, symbol_2),
       array_agg(correlation ORDER BY symbol_1, symbol_2), array_agg(correlation_dir ORDER BY symbol_1, symbol_2),
       array_agg(observations ORDER BY symbol_1, symbol_2), array_agg(p_value ORDER BY symbol_1, symbol_2)
FROM factors.pairwise_correlation_rows
GROUP BY calculation_id""",
    "DROP TABLE factors.pairwise_correlation_rows",
    VIEW,
]

DOWNGRADE = [
    "DROP VIEW factors.api_pairwise_correlation",
    "ALTER TABLE factors.pairwise_correlation RENAME TO pairwise_correlation_vectors",
    "ALTER INDEX factors.pairwise_correlation_pkey RENAME TO pairwise_correlation_vectors_pkey",
    """
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
    CONSTRAINT pairwise_correlation_range_check CHECK (correlation IS NULL OR (correlation >= -1 AND correlation <= 1))
)""",
    """
INSERT INTO factors.pairwise_correlation
SELECT p.calculation_id, x.symbol_1, x.symbol_2, x.correlation, x.correlation_dir, x.observations, x.p_value
FROM factors.pairwise_correlation_vectors p
CROSS JOIN LATERAL unnest(p.symbols_1, p.symbols_2, p.correlations, p.correlations_dir, p.observations, p.p_values)
    AS x(symbol_1, symbol_2, correlation, correlation_dir, observations, p_value)""",
    "DROP TABLE factors.pairwise_correlation_vectors",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
