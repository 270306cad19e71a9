"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_CONSUMED = Counter(
    "tasker_messages_consumed_total", "Queue messages processed successfully", ["queue"],
    registry=REGISTRY,
)
MESSAGES_FAILED = Counter(
    "tasker_messages_failed_total", "Queue message processing failures", ["queue"],
    registry=REGISTRY,
)
MESSAGES_SET_ASIDE = Counter(
    "tasker_messages_set_aside_total", "Poison messages archived with a reason", ["queue", "reason"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tasker_queue_depth", "Messages in a queue (visible and invisible)", ["queue"],
    registry=REGISTRY,
)
QUEUE_OLDEST_AGE = Gauge(
    "tasker_queue_oldest_message_age_seconds", "Age of the oldest message in a queue", ["queue"],
    registry=REGISTRY,
)
HANDLER_DURATION = Histogram(
    "tasker_message_handler_duration_seconds", "Time to process one batch of queue messages",
    ["queue"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STEP_DURATION = Histogram(
    "tasker_step_handler_duration_seconds", "Time a step handler ran", ["namespace", "handler"],
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
STEP_RESULTS = Counter(
    "tasker_step_results_total", "Step results recorded by workers", ["namespace", "outcome"],
    registry=REGISTRY,
)
TRANSITIONS = Counter(
    "tasker_transitions_total", "State transitions applied by this process", ["kind", "to_state"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "tasker_step_retries_total", "Step failures scheduled for retry", ["namespace"],
    registry=REGISTRY,
)
DLQ_ENTRIES = Counter(
    "tasker_dlq_entries_total", "DLQ entries written by this process", ["reason"],
    registry=REGISTRY,
)
TASKS_FINISHED = Counter(
    "tasker_tasks_finished_total", "Tasks that reached an outcome", ["state"], registry=REGISTRY,
)
CIRCUIT_STATE = Gauge(
    "tasker_circuit_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)",
    ["name"], registry=REGISTRY,
)
POOL_CONNECTIONS = Gauge(
    "tasker_db_pool_connections", "Database pool connections", ["state"], registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "tasker_consumer_in_flight", "Messages being processed now", ["queue"], registry=REGISTRY,
)
STUCK_TASKS = Gauge(
    "tasker_stuck_tasks", "Tasks in an active state longer than staleness.stuck_active_minutes",
    ["state"], registry=REGISTRY,
)
