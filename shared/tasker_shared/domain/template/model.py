"""Immutable value objects describing one template step and its parts (SPEC §4.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .enums import (
    BackoffStrategy,
    DeliveryMode,
    EventCondition,
    FailureStrategy,
    StalenessAction,
    StepType,
)

# Opaque JSON values (initialization maps, schemas, composition) are plain JSON data:
# dict / list / str / int / float / bool / None, normalised when the template is parsed.
JSONObject = Mapping[str, Any]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_BASE_MS = 1000
DEFAULT_MAX_BACKOFF_MS = 30000


@dataclass(frozen=True, kw_only=True, slots=True)
class HandlerSpec:
    """Where a step's handler lives and how it is initialised."""

    callable: str
    method: str = "call"
    resolver: str | None = None
    initialization: JSONObject = field(default_factory=dict)

    @property
    def uses_method_dispatch(self) -> bool:
        """True when a method other than the default `call` must be invoked."""
        return self.method != "call"


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retry settings; only `retryable` and `max_attempts` are used at runtime."""

    retryable: bool = True
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    backoff_base_ms: int = DEFAULT_BACKOFF_BASE_MS
    max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryOverride:
    """A partial retry policy from an environment override: only given fields replace."""

    retryable: bool | None = None
    max_attempts: int | None = None
    backoff: BackoffStrategy | None = None
    backoff_base_ms: int | None = None
    max_backoff_ms: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchConfig:
    """How a batchable step's work is split across batch worker instances."""

    worker_template: str
    batch_size: int = 1000
    parallelism: int = 10
    cursor_field: str = "id"
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE_ON_FAILURE


@dataclass(frozen=True, kw_only=True, slots=True)
class EventDeclaration:
    """An event a step may publish after it runs."""

    name: str
    description: str | None = None
    condition: EventCondition = EventCondition.SUCCESS
    schema: Any = None
    delivery_mode: DeliveryMode = DeliveryMode.DURABLE
    publisher: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DomainEvent:
    """A task-level domain event definition."""

    name: str
    description: str | None = None
    schema: Any = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SystemDependencies:
    """External systems the task talks to (documentation)."""

    primary: str = "default"
    secondary: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class TemplateMetadata:
    """Documentation metadata of a template."""

    author: str | None = None
    tags: tuple[str, ...] = ()
    documentation_url: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Lifecycle:
    """Per-template staleness thresholds and the action taken when one is exceeded."""

    max_duration_minutes: int | None = None
    max_waiting_for_dependencies_minutes: int | None = None
    max_waiting_for_retry_minutes: int | None = None
    max_steps_in_process_minutes: int | None = None
    staleness_action: StalenessAction = StalenessAction.DLQ
    auto_fail_on_timeout: bool | None = None
    auto_dlq_on_timeout: bool | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepOverride:
    """One environment override entry; `name` is a step name or `ALL`."""

    name: str
    initialization: JSONObject | None = None
    timeout_seconds: int | None = None
    retry: RetryOverride | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepTemplate:
    """One step of a task template."""

    name: str
    handler: HandlerSpec
    step_type: StepType = StepType.STANDARD
    description: str | None = None
    system_dependency: str | None = None
    dependencies: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: int | None = None
    publishes_events: tuple[EventDeclaration, ...] = ()
    batch_config: BatchConfig | None = None
    result_schema: Any = None
    composition: Any = None

    @property
    def is_decision(self) -> bool:
        return self.step_type is StepType.DECISION

    @property
    def is_deferred_convergence(self) -> bool:
        return self.step_type is StepType.DEFERRED_CONVERGENCE

    @property
    def is_batchable(self) -> bool:
        return self.step_type is StepType.BATCHABLE

    @property
    def is_batch_worker(self) -> bool:
        return self.step_type is StepType.BATCH_WORKER

    @property
    def created_at_initialization(self) -> bool:
        """False for types that are only ever created dynamically (workers, convergence)."""
        return self.step_type not in (StepType.BATCH_WORKER, StepType.DEFERRED_CONVERGENCE)
