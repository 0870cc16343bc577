"""Alembic environment of the `greeks` schema (version table inside the schema)."""

from common.migrations import run_env
from greeks.models import metadata

run_env("greeks", metadata)
