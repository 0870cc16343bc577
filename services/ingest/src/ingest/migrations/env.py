"""Alembic environment of schema `ingest` (version table inside the schema)."""

from common.migrations import run_env
from ingest.models import metadata

run_env("ingest", metadata)
