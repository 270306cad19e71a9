"""tasker_client package."""
