"""Factor registry and plumbing tables of the factors schema.

Revision ID: factors_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from common.migrations import create_plumbing

revision = "factors_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing("factors")
    op.create_table(
        "factor_definition",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("factor_type", sa.Text, nullable=False),
        sa.Column("proxy", sa.String(12)),
        sa.Column("proxy_type", sa.Text),
        sa.Column("display_order", sa.SmallInteger, nullable=False, unique=True),
        sa.Column("calculation_method", sa.Text, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("factor_type IN ('market','style','macro','alternative')", name="factor_type_check"),
        sa.CheckConstraint("proxy_type IN ('etf','rate_series')", name="factor_proxy_type_check"),
        sa.CheckConstraint("calculation_method IN ('regression','not_calculated')", name="factor_method_check"),
        schema="factors",
    )
    op.execute(
        """
        CREATE VIEW factors.api_factor_definition AS
        SELECT id, code, name, description, factor_type, proxy, proxy_type, display_order,
               calculation_method, is_active
        FROM factors.factor_definition
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS factors.api_factor_definition")
    op.drop_table("factor_definition", schema="factors")
