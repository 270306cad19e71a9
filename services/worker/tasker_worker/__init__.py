"""tasker_worker package."""
