"""Seed the factor registry (idempotent upsert on `code`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from common.db import Database
from factors.models import factor_definition
from factors.registry import FACTORS


async def seed(db: Database, settings: object | None = None) -> int:
    """Upsert the nine registry rows; returns how many rows the registry has."""
    rows = [
        {
            "id": f.id,
            "code": f.code,
            "name": f.name,
            "description": f.description,
            "factor_type": f.factor_type,
            "proxy": f.proxy,
            "proxy_type": f.proxy_type,
            "display_order": f.display_order,
            "calculation_method": f.calculation_method,
            "is_active": f.is_active,
        }
        for f in FACTORS
    ]
    stmt = pg.insert(factor_definition).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            col: stmt.excluded[col]
            for col in (
                "name",
                "description",
                "factor_type",
                "proxy",
                "proxy_type",
                "display_order",
                "calculation_method",
                "is_active",
            )
        }
        | {"updated_at": sa.func.now()},
    )
    async with db.transaction() as session:
        await session.execute(stmt)
        count = (await session.execute(sa.select(sa.func.count()).select_from(factor_definition))).scalar_one()
    return int(count)
