"""tasker_gateway package."""
