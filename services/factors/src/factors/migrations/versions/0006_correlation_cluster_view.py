"""Published view factors.api_correlation_cluster: the stored clusters of each position-correlation
calculation, one row per cluster member (data-model.md §7.10), so that other services (stress reports)
can show them without reading the factors tables.

The cluster columns repeat on each member row; members carry the `member_` prefix where a name would
otherwise clash. Money (gross, net, member_exposure) in USD; shares and correlations are fractions.

Revision ID: factors_0006
Revises: factors_0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "factors_0006"
down_revision: str | None = "factors_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Published view (docs/contracts.md): columns are only ever added.
VIEW = """
CREATE VIEW factors.api_correlation_cluster AS
SELECT c.calculation_id, c.id AS cluster_id, c.cluster_number, c.threshold, c.nickname, c.nickname_source,
       c.avg_correlation, c.gross, c.net, c.share_of_gross,
       m.symbol AS member_symbol, m.exposure AS member_exposure, m.share_of_gross AS member_share_of_gross,
       m.correlation_to_cluster
FROM factors.correlation_cluster c
JOIN factors.correlation_cluster_member m ON m.cluster_id = c.id
"""


def upgrade() -> None:
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW factors.api_correlation_cluster")
