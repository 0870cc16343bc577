"""Alembic environment of the `marketdata` schema (version table inside the schema)."""

from common.migrations import run_env
from marketdata.models import metadata

run_env("marketdata", metadata)
