"""The worker runtime: claims steps from namespace queues, runs handlers, records results."""
