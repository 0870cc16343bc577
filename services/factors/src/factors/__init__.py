"""SigmaSight factors service."""
