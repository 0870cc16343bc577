"""Alembic migrations of the `greeks` schema."""
