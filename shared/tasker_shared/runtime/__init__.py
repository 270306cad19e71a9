"""tasker_shared.runtime."""
