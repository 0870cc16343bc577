"""Room for HOT updates of the valuation columns (performance only; no schema change).

The `aggregations` step rewrites every held position's current columns (ingest.position) and, on a
re-run of a day, its position_valuation row. None of those columns is indexed, so PostgreSQL can
update in place (a HOT update: no new entry in any of position's eight indexes) — but only when the
row's page has free space. With the default fillfactor 100 pages are packed full and most updates
move the row to another page and add an entry to every index. 70 leaves ~30 % of each page for new row versions;
it applies to pages written from now on (a VACUUM FULL repacks existing ones).

Revision ID: ingest_0003
Revises: ingest_0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0003"
down_revision: str | None = "ingest_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("ingest.position", "ingest.position_valuation")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
