"""Alembic migrations of schema `ingest`."""
