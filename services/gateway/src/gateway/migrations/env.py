"""Alembic environment of the `gateway` schema (version table inside the schema)."""

from common.migrations import run_env
from gateway.models import metadata

run_env("gateway", metadata)
