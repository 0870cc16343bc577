"""Alembic migrations of the `marketdata` schema."""
