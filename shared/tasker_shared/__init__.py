"""Tasker shared library: domain model, contracts, database, queues and service runtime."""

__version__ = "0.1.0"
