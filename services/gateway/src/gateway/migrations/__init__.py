"""Alembic migrations of the `gateway` schema."""
