"""SigmaSight allinone service."""
