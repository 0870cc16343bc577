"""LZ4 compression for the stress-result documents.

Each stress_result row carries a ~3.5 kB top_positions document, so PostgreSQL compresses it when
the row is written; pglz made that about a quarter of the daily step's result upsert, LZ4 costs a
fraction of it. Only the on-disk compression changes: the stored jsonb values are the same.
Servers built without LZ4 keep pglz (the step still works, only slower).

Revision ID: stress_0004
Revises: stress_0003
Create Date: 2026-11-25
"""

from alembic import op

revision = "stress_0004"
down_revision = "stress_0003"
branch_labels = None
depends_on = None

DOCUMENTS = ("top_positions", "direct_factor_impacts", "correlated_factor_impacts", "implied_factor_moves")


def _set_compression(method: str) -> None:
    columns = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION {method}" for c in DOCUMENTS)
    op.execute(
        f"""
        DO $$ BEGIN
            ALTER TABLE stress.stress_result {columns};
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE 'compression method {method} not supported: the server default is kept';
        END $$
        """
    )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
