"""Portfolio reports (api.md #66–#68, #75; users.md §4)."""
