"""Fixtures of the greeks integration tests (defined in greeks_harness)."""

from greeks_harness import greeks_db_url, harness

__all__ = ["greeks_db_url", "harness"]
