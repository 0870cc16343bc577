"""batch_run.job_run_rows: how many step rows were inserted for the run (performance only).

A 1,000-portfolio run records ~7,000 batch_job_run rows in ~150 batches of step reports, and each
batch had to count the run's final rows (a scan of every row recorded so far) to know whether the
run could be complete. The upsert of step rows now adds the rows it inserts to this counter in the
same statement; it is an upper bound of the final rows, so while it is below the rows the run needs
the count is skipped (the run cannot be complete), and the decisions are exactly those of the count.
Existing runs are backfilled from their rows.

Revision ID: marketdata_0003
Revises: marketdata_0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "marketdata_0003"
down_revision = "marketdata_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "batch_run",
        sa.Column("job_run_rows", sa.Integer, nullable=False, server_default="0"),
        schema="marketdata",
    )
    op.execute(
        "UPDATE marketdata.batch_run r SET job_run_rows = c.n "
        "FROM (SELECT run_id, count(*) AS n FROM marketdata.batch_job_run GROUP BY run_id) c WHERE r.id = c.run_id"
    )


def downgrade() -> None:
    op.drop_column("batch_run", "job_run_rows", schema="marketdata")
