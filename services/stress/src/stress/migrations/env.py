"""Alembic environment of the `stress` schema (version table inside the schema)."""

from common.migrations import run_env
from stress.models import metadata

run_env("stress", metadata)
