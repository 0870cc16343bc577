"""Room on each ingest.position page for the first valuation of freshly written rows (performance only).

0006 left half of each page free. Rows written by an upload or a seed have no valuation yet (~150
bytes); the first valuation makes each ~225 bytes, so the new versions of a half-full page's ~26
rows need more room than its free half: in the 1,000-book benchmark only 13.9 k of the 20 k
updates of the first run stayed on their page, and each of the other 6.1 k added an entry to every
one of the table's eight indexes. At 35 % a fresh page holds ~18 rows, whose valued versions all fit
beside them, and a page of valued rows (the daily steady state) holds about as many as at 50 %:
every update of the benchmark's first run is HOT and the aggregations step's database CPU on a
first run fell from 0.66–0.87 s to 0.45–0.50 s. Applies to pages written from now on.

Revision ID: ingest_0007
Revises: ingest_0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0007"
down_revision: str | None = "ingest_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest.position SET (fillfactor = 35)")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest.position SET (fillfactor = 50)")
