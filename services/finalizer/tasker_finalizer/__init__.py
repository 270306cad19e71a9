"""tasker_finalizer package."""
