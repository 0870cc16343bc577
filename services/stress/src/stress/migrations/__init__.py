"""Alembic migrations of the `stress` schema."""
