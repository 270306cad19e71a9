"""tasker_ingestion package."""
