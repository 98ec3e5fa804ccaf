"""Stage modules, one per task; `pipeline.tasks` says which is which."""
