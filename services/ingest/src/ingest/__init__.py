"""SigmaSight ingest service."""
