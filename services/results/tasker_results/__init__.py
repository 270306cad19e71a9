"""tasker_results package."""
