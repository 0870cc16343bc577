"""Seed data of the stress service: the stress-scenario catalogue (idempotent upsert by scenario_key)."""

from __future__ import annotations

from typing import Any

from common.db import Database
from stress.catalogue import seed_scenarios


async def seed(db: Database, settings: Any = None) -> dict[str, int]:
    """Upsert the 18 built-in scenarios (validated against the factor registry); returns the row count."""
    return {"stress_scenarios": await seed_scenarios(db)}
