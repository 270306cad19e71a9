"""Command groups of the `tasker` CLI."""
