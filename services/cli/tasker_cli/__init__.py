"""tasker_cli package."""
