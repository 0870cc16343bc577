"""Shared plumbing: settings, db, bus, events, jobs, logging, metrics, errors."""
