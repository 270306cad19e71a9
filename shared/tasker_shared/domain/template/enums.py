"""Enumerations used by task templates (step types, retry backoff, batch and event options)."""

from __future__ import annotations

from enum import StrEnum


class StepType(StrEnum):
    """What kind of step a template step is (SPEC §4.2, §5)."""

    STANDARD = "standard"
    DECISION = "decision"
    DEFERRED_CONVERGENCE = "deferred_convergence"
    BATCHABLE = "batchable"
    BATCH_WORKER = "batch_worker"


class BackoffStrategy(StrEnum):
    """Template-level backoff hint (informational; the runtime uses global settings)."""

    NONE = "none"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    FIBONACCI = "fibonacci"


class FailureStrategy(StrEnum):
    """How batch worker failures should affect convergence (carried as metadata)."""

    CONTINUE_ON_FAILURE = "continue_on_failure"
    FAIL_FAST = "fail_fast"
    ISOLATE = "isolate"


class StalenessAction(StrEnum):
    """What the staleness detector does with a task past its lifecycle thresholds."""

    DLQ = "dlq"
    ERROR = "error"
    NONE = "none"


class IdentityStrategy(StrEnum):
    """How a task's identity hash is computed when no idempotency key is given (SPEC §3.4)."""

    STRICT = "strict"
    CALLER_PROVIDED = "caller_provided"
    ALWAYS_UNIQUE = "always_unique"


class EventCondition(StrEnum):
    """When a declared step event is published."""

    SUCCESS = "success"
    FAILURE = "failure"
    RETRYABLE_FAILURE = "retryable_failure"
    PERMANENT_FAILURE = "permanent_failure"
    ALWAYS = "always"


class DeliveryMode(StrEnum):
    """How a declared step event is delivered."""

    DURABLE = "durable"
    FAST = "fast"
    BROADCAST = "broadcast"
