"""stress_result documents as `json` instead of `jsonb`.

data-model.md §8.3 types implied_factor_moves, direct/correlated_factor_impacts and top_positions as
jsonb. They are written once per (run, scenario) — 18,000 rows of ~2 kB for a 1,000-portfolio cycle —
and only ever read back whole by the application (no SQL operator, index or containment query
looks inside them). jsonb parses each document into its binary form on write, about 40 % of the
result insert; `json` only checks the text and stores it as is (still LZ4-compressed, migration
stress_0004). The values read back are the same documents.

Revision ID: stress_0006
Revises: stress_0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "stress_0006"
down_revision = "stress_0005"
branch_labels = None
depends_on = None

DOCUMENTS = ("top_positions", "direct_factor_impacts", "correlated_factor_impacts", "implied_factor_moves")


def _retype(kind: str) -> None:
    columns = ", ".join(f"ALTER COLUMN {c} TYPE {kind} USING {c}::{kind}" for c in DOCUMENTS)
    op.execute(f"ALTER TABLE stress.stress_result {columns}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
