"""tasker_shared.db."""
