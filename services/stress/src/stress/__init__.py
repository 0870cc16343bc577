"""SigmaSight stress service."""
