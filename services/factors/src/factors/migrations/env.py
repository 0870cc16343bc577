"""Alembic environment of the `factors` schema (version table inside the schema)."""

from common.migrations import run_env
from factors.models import metadata

run_env("factors", metadata)
