"""SigmaSight gateway service."""
