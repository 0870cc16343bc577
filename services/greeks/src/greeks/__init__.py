"""SigmaSight greeks service."""
