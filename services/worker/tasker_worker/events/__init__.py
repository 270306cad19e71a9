"""Domain events of the worker: which declared events a finished step publishes, their
routing (durable with the result record, fast to in-process subscribers) and statistics."""
