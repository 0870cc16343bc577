"""Onboarding of an uploaded portfolio (api.md §4.9, #61-#64).

Pure rules: `model` (holdings and market data), `checks` (#61 readiness), `steps` (data
collection), `preview` (#63 valuation). Storage: `position_reads`, `market_reads` (published views
of marketdata, factors and stress), `progress_store` (onboarding_step rows, activation).
Orchestration: `service` (the routes' logic), `completion` and `retry` (the two jobs, `jobs` for
their ledger rows), `preview_rows` (the preview body).
"""
