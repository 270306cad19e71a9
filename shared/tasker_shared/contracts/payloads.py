"""Value objects for the queue payloads of proto/tasker/v1/messages.proto (SPEC 1.4).

Field names equal the proto field names and enum members the proto enum values (the
codecs of `contracts.codec` refuse to build, at import, when they do not); enum values
are the JSON spellings: the lower-case suffix of the proto enum value name. The types
say what a proto string holds (a UUID) and the defaults are the SPEC's. Use
tasker_shared.contracts.messages to encode and decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from tasker_shared.contracts.queue_schema import ENUMS

DEFAULT_NAMESPACE = "default"
DEFAULT_VERSION = "0.1.0"
DEFAULT_INITIATOR = "system"
DEFAULT_SOURCE_SYSTEM = "tasker-core"
DEFAULT_REASON = "Task requested"
DEFAULT_REQUESTER = "system"
PRIORITY_MIN = -100
PRIORITY_MAX = 100


def _now() -> datetime:
    return datetime.now(UTC)


def _new_request_id() -> str:
    return str(uuid4())


class RequestPriority(StrEnum):
    """TaskRequestMessage.metadata.priority; `level` is the numeric form (1..4)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def level(self) -> int:
        return _PRIORITY_LEVELS[self]


_PRIORITY_LEVELS = {
    RequestPriority[name]: number
    for name, number in ENUMS["RequestPriority"]
    if name != "UNSPECIFIED"
}


class StepResultStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    ERROR = "error"


class BackoffType(StrEnum):
    SERVER_REQUESTED = "server_requested"
    RATE_LIMIT = "rate_limit"
    SERVICE_UNAVAILABLE = "service_unavailable"
    CUSTOM = "custom"


class RequestOutcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepMessage:
    """The only payload on worker_{ns}_queue and orchestration_step_results."""

    task_uuid: UUID
    step_uuid: UUID
    correlation_id: UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequest:
    """A request for a new task (also the POST /v1/tasks body), with SPEC defaults."""

    name: str
    namespace: str = DEFAULT_NAMESPACE
    version: str = DEFAULT_VERSION
    context: dict[str, Any] = field(default_factory=dict)
    initiator: str = DEFAULT_INITIATOR
    source_system: str = DEFAULT_SOURCE_SYSTEM
    reason: str = DEFAULT_REASON
    tags: tuple[str, ...] = ()
    requested_at: datetime = field(default_factory=_now)
    options: dict[str, Any] | None = None
    priority: int | None = None
    correlation_id: UUID = field(default_factory=uuid4)
    parent_correlation_id: UUID | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequestMetadata:
    requested_at: datetime = field(default_factory=_now)
    requester: str = DEFAULT_REQUESTER
    priority: RequestPriority = RequestPriority.NORMAL
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequestMessage:
    """The payload on orchestration_task_requests."""

    task_request: TaskRequest
    request_id: str = field(default_factory=_new_request_id)
    metadata: TaskRequestMetadata = field(default_factory=TaskRequestMetadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepExecutionError:
    message: str
    error_type: str | None = None
    backtrace: tuple[str, ...] | None = None
    retryable: bool = False
    status_code: int | None = None
    context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepExecutionMetadata:
    """Execution facts; `retryable` here (not error.retryable) drives the retry decision."""

    execution_time_ms: int = 0
    handler_version: str | None = None
    retryable: bool = False
    completed_at: datetime | None = None
    started_at: datetime | None = None
    worker_id: str | None = None
    worker_hostname: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_type: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    checkpoint_yield: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffHint:
    backoff_type: BackoffType
    delay_seconds: int
    context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestrationMetadata:
    """Worker hints for the backoff calculator (headers such as Retry-After)."""

    headers: dict[str, str] = field(default_factory=dict)
    error_context: str | None = None
    backoff_hint: BackoffHint | None = None
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepExecutionResult:
    """What a handler produced; stored in workflow_steps.results."""

    step_uuid: UUID
    success: bool
    status: StepResultStatus
    result: dict[str, Any] = field(default_factory=dict)
    error: StepExecutionError | None = None
    metadata: StepExecutionMetadata = field(default_factory=StepExecutionMetadata)
    orchestration_metadata: OrchestrationMetadata | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalizationRequest:
    """The payload on orchestration_task_finalizations."""

    task_uuid: UUID
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequestOutcome:
    """What ingestion did with one request; task_uuid is set unless it was invalid."""

    request_id: str
    outcome: RequestOutcome
    task_uuid: UUID | None = None
    reason: str | None = None
