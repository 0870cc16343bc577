"""Half of each ingest.position page kept free for same-page (HOT) updates (performance only).

Every run rewrites the current-valuation columns of every held position. 0003 left 30 % of each
page free, measured after it: of the 20,000 positions of the 1,000-book benchmark only 8–12 k
updates of a date's first run stayed on their page (a valued row is wider than the unvalued one
it replaces, so a 70 %-full page has room for about a third of its rows' new versions); the rest
moved and added an entry to each of the table's eight indexes. At 50 %, 18 k of 20 k are HOT and
the aggregations step's database CPU on a first run fell from 1.06–1.18 s to 0.82–0.85 s. The
table is rewritten in full every day, so the doubled size buys steady-state in-page updates.
Applies to pages written from now on (a VACUUM FULL repacks existing ones).

Revision ID: ingest_0006
Revises: ingest_0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0006"
down_revision: str | None = "ingest_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest.position SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest.position SET (fillfactor = 70)")
