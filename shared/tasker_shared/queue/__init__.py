"""tasker_shared.queue."""
