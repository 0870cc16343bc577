"""SigmaSight marketdata service."""
