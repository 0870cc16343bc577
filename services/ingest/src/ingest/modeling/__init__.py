"""ProForma modelling sessions (api.md §4.8) and trade suggestions (§6 row 14).

`service.ModelingService` runs the workflow; `api.create_modeling_router` serves #53-#58 plus trade
removal and suggestions; the engines are asked over request/reply (`engines`); the pure parts are
`book` (trade rules), `valuation`/`proforma` (before/after books), `metrics` (M) and `sizing` (hedges).
"""
