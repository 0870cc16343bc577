"""Alembic migrations of the `factors` schema."""
