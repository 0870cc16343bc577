"""Pure, deterministic, vectorised computations of the stress service (no I/O, no wall clock).

* `snapshot`: the daily portfolio snapshot (calculations.md §2, §3.5, §9) and its return chain.
* `performance`: realised performance statistics (calculations.md §8.5) and period summaries.
* `periods`: period windows and time buckets of the time-series endpoints (api.md #22, #23).
"""
