"""Tables of the `factors` schema."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

factor_definition = sa.Table(
    "factor_definition",
    metadata,
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
