"""One row per stress run for its scenario results; `stress.stress_result` becomes a view.

The daily step wrote 18 `stress_result` rows per portfolio (18,000 a cycle), each with its own heap
tuple, primary-key and portfolio-index entries, two foreign-key checks and a small LZ4 document:
the costliest statement of the whole cycle. `stress_result_set` holds a run's results as arrays
(element i of every column is scenario `scenario_ids[i]`; each JSON column is a JSON array of the
per-scenario documents, `null` where there is none), so a run is one row, written or replaced whole
(an upsert on the run id: scenarios no longer run disappear with the old row).

The view `stress.stress_result` returns exactly the former rows and columns (data-model.md §8.3) to
every reader. It is a plain join, so a reader pays only for the columns it selects (the documents
are neither detoasted nor parsed for the snapshot's P&L read). The per-row foreign key to
stress_scenario goes (arrays cannot carry one; scenarios are never deleted, only deactivated), as
does the per-row "computed" CHECK; the floored-count CHECK stays, over the arrays.

Existing results move into the new table in catalogue order (display order, then key).

Revision ID: stress_0007
Revises: stress_0006
Create Date: 2026-11-25
"""

from alembic import op

revision = "stress_0007"
down_revision = "stress_0006"
branch_labels = None
depends_on = None

MONEY_COLUMNS = ("direct_pnl", "direct_linear_pnl", "correlated_pnl", "correlated_linear_pnl", "correlation_effect")
DOCUMENTS = ("implied_factor_moves", "direct_factor_impacts", "correlated_factor_impacts", "top_positions")
SCALARS = (*MONEY_COLUMNS, "direct_pnl_pct", "correlated_pnl_pct", "worst_factor")
COUNTS = ("floored_positions", "correlated_floored_positions")

CREATE_TABLE = """
CREATE TABLE stress.stress_result_set (
    stress_run_id uuid PRIMARY KEY REFERENCES stress.stress_run (id) ON DELETE CASCADE,
    portfolio_id uuid NOT NULL,
    calculation_date date NOT NULL,
    scenario_ids uuid[] NOT NULL,
    direct_pnl numeric(20,2)[] NOT NULL,
    direct_linear_pnl numeric(20,2)[] NOT NULL,
    correlated_pnl numeric(20,2)[] NOT NULL,
    correlated_linear_pnl numeric(20,2)[] NOT NULL,
    correlation_effect numeric(20,2)[] NOT NULL,
    direct_pnl_pct double precision[] NOT NULL,
    correlated_pnl_pct double precision[] NOT NULL,
    worst_factor text[] NOT NULL,
    implied_factor_moves json NOT NULL,
    direct_factor_impacts json NOT NULL,
    correlated_factor_impacts json NOT NULL,
    top_positions json NOT NULL,
    floored_positions smallint[] NOT NULL,
    correlated_floored_positions smallint[] NOT NULL,
    flags json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stress_result_set_floored_check
        CHECK (0 <= ALL(floored_positions) AND 0 <= ALL(correlated_floored_positions)),
    CONSTRAINT stress_result_set_shape_check
        CHECK (cardinality(direct_pnl) = cardinality(scenario_ids)
               AND cardinality(correlated_pnl) = cardinality(scenario_ids))
)
"""

# Element i (1-based) of the arrays, element i - 1 (0-based) of the JSON arrays. `json -> n` returns
# the element's own text, so the documents read back are the ones written.
CREATE_VIEW = """
CREATE VIEW stress.stress_result AS
SELECT s.stress_run_id,
       s.scenario_ids[i] AS scenario_id,
       s.portfolio_id,
       s.calculation_date,
       s.direct_pnl[i] AS direct_pnl,
       s.direct_linear_pnl[i] AS direct_linear_pnl,
       s.correlated_pnl[i] AS correlated_pnl,
       s.correlated_linear_pnl[i] AS correlated_linear_pnl,
       s.correlation_effect[i] AS correlation_effect,
       s.direct_pnl_pct[i] AS direct_pnl_pct,
       s.correlated_pnl_pct[i] AS correlated_pnl_pct,
       s.worst_factor[i] AS worst_factor,
       s.implied_factor_moves -> (i - 1) AS implied_factor_moves,
       s.direct_factor_impacts -> (i - 1) AS direct_factor_impacts,
       s.correlated_factor_impacts -> (i - 1) AS correlated_factor_impacts,
       s.top_positions -> (i - 1) AS top_positions,
       s.floored_positions[i] AS floored_positions,
       s.correlated_floored_positions[i] AS correlated_floored_positions,
       ARRAY(SELECT json_array_elements_text(s.flags -> (i - 1))) AS flags,
       s.created_at
FROM stress.stress_result_set s
CROSS JOIN LATERAL generate_subscripts(s.scenario_ids, 1) AS i
"""


def _lz4(table: str) -> None:
    columns = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in DOCUMENTS)
    op.execute(
        f"""
        DO $$ BEGIN
            ALTER TABLE {table} {columns};
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE 'compression method lz4 not supported: the server default is kept';
        END $$
        """
    )


def upgrade() -> None:
    op.execute(CREATE_TABLE)
    op.execute(
        "CREATE INDEX stress_result_set_portfolio_date_idx ON stress.stress_result_set (portfolio_id, calculation_date)"
    )
    _lz4("stress.stress_result_set")
    order = "ORDER BY sc.display_order NULLS LAST, sc.scenario_key"
    arrays = ", ".join(f"array_agg(r.{c} {order})" for c in ("scenario_id", *SCALARS, *COUNTS))
    documents = ", ".join(
        f"CAST('[' || string_agg(coalesce(r.{c}::text, 'null'), ',' {order}) || ']' AS json)" for c in DOCUMENTS
    )
    op.execute(
        f"""
        INSERT INTO stress.stress_result_set (stress_run_id, portfolio_id, calculation_date, scenario_ids,
            {", ".join(SCALARS)}, {", ".join(COUNTS)}, {", ".join(DOCUMENTS)}, flags, created_at)
        SELECT r.stress_run_id, (array_agg(r.portfolio_id))[1], (array_agg(r.calculation_date))[1],
               {arrays}, {documents}, json_agg(r.flags {order}), max(r.created_at)
        FROM stress.stress_result r
        JOIN stress.stress_scenario sc ON sc.id = r.scenario_id
        GROUP BY r.stress_run_id
        """
    )
    op.execute("DROP TABLE stress.stress_result")
    op.execute(CREATE_VIEW)


def downgrade() -> None:
    """Back to one table row per (run, scenario), as stress_0006 left it."""
    op.execute("ALTER VIEW stress.stress_result RENAME TO stress_result_old")
    op.execute(
        """
        CREATE TABLE stress.stress_result (
            stress_run_id uuid NOT NULL REFERENCES stress.stress_run (id) ON DELETE CASCADE,
            scenario_id uuid NOT NULL REFERENCES stress.stress_scenario (id),
            portfolio_id uuid NOT NULL,
            calculation_date date NOT NULL,
            direct_pnl numeric(20,2),
            direct_linear_pnl numeric(20,2),
            correlated_pnl numeric(20,2),
            correlated_linear_pnl numeric(20,2),
            correlation_effect numeric(20,2),
            direct_pnl_pct double precision,
            correlated_pnl_pct double precision,
            worst_factor text,
            implied_factor_moves json,
            direct_factor_impacts json,
            correlated_factor_impacts json,
            top_positions json,
            floored_positions smallint,
            correlated_floored_positions smallint,
            flags text[] NOT NULL DEFAULT '{}'::text[],
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (stress_run_id, scenario_id),
            CONSTRAINT stress_result_floored_check
                CHECK (floored_positions >= 0 AND correlated_floored_positions >= 0),
            CONSTRAINT stress_result_computed_check
                CHECK ((direct_pnl IS NOT NULL AND direct_linear_pnl IS NOT NULL)
                       OR flags && ARRAY['factor_unavailable', 'invalid_scenario']::text[])
        )
        """
    )
    op.execute("CREATE INDEX stress_result_portfolio_date_idx ON stress.stress_result (portfolio_id, calculation_date)")
    _lz4("stress.stress_result")
    op.execute("INSERT INTO stress.stress_result SELECT * FROM stress.stress_result_old")
    op.execute("DROP VIEW stress.stress_result_old")
    op.execute("DROP TABLE stress.stress_result_set")
