"""Task request and response bodies (SPEC 1.4 TaskRequest, 7.1 TaskResponse)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import ConfigDict, Field

from tasker_gateway.models.common import (
    ApiModel,
    ExecutionStatus,
    HealthStatus,
    JsonObject,
    NonNegative,
    Pagination,
    RecommendedAction,
    StepState,
    TaskState,
)
from tasker_shared.contracts.payloads import (
    DEFAULT_INITIATOR,
    DEFAULT_NAMESPACE,
    DEFAULT_REASON,
    DEFAULT_SOURCE_SYSTEM,
    DEFAULT_VERSION,
    PRIORITY_MAX,
    PRIORITY_MIN,
)

# Printable text without surrounding whitespace (names, versions, keys).
TEXT_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
NAMESPACE_PATTERN = r"^[A-Za-z0-9_]{1,29}$"
Label = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


class TaskRequestBody(ApiModel):
    """A request for a new task; everything but `name` has a default."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
        "context": {"even_number": 2}}]})

    name: str = Field(min_length=1, max_length=255, pattern=TEXT_PATTERN,
                      description="template name")
    namespace: str = Field(DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    version: str = Field(DEFAULT_VERSION, min_length=1, max_length=50, pattern=TEXT_PATTERN)
    context: JsonObject = Field(default_factory=dict,
                                description="task input, checked against the template schema")
    initiator: Label = DEFAULT_INITIATOR
    source_system: Label = DEFAULT_SOURCE_SYSTEM
    reason: Label = DEFAULT_REASON
    tags: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list,
                                                              max_length=64)
    requested_at: datetime | None = None
    options: JsonObject | None = None
    priority: int | None = Field(None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    correlation_id: UUID | None = None
    parent_correlation_id: UUID | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=255,
                                        pattern=TEXT_PATTERN)


class StepReadinessView(ApiModel):
    """One row of get_step_readiness_status."""

    workflow_step_uuid: UUID
    task_uuid: UUID
    named_step_uuid: UUID
    name: str
    current_state: StepState
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    last_failure_at: datetime | None
    next_retry_at: datetime | None
    total_parents: NonNegative
    completed_parents: NonNegative
    attempts: NonNegative
    max_attempts: NonNegative
    backoff_request_seconds: float | None
    last_attempted_at: datetime | None


class TaskView(ApiModel):
    """A task with its execution context and steps (the REST TaskResponse)."""

    task_uuid: UUID
    name: str
    namespace: str
    version: str
    status: TaskState
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    context: JsonObject
    initiator: str | None
    source_system: str | None
    reason: str | None
    priority: int
    tags: list[str]
    correlation_id: UUID
    parent_correlation_id: UUID | None
    total_steps: NonNegative
    pending_steps: NonNegative
    in_progress_steps: NonNegative
    completed_steps: NonNegative
    failed_steps: NonNegative
    ready_steps: NonNegative
    execution_status: ExecutionStatus
    recommended_action: RecommendedAction
    completion_percentage: float = Field(ge=0, le=100)
    health_status: HealthStatus
    steps: list[StepReadinessView]


class TaskListView(ApiModel):
    tasks: list[TaskView]
    pagination: Pagination


class CreateStatus(StrEnum):
    CREATED = "created"
    ACCEPTED = "accepted"


class TaskAccepted(ApiModel):
    """202: the request is queued for ingestion; follow it with GET /v1/task_requests/{id}."""

    status: CreateStatus = CreateStatus.ACCEPTED
    request_id: str


class RequestOutcomeName(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


class TaskRequestOutcomeView(ApiModel):
    request_id: str
    outcome: RequestOutcomeName
    task_uuid: UUID | None
    reason: str | None


class TaskContextView(ApiModel):
    task_uuid: UUID
    context: JsonObject
    step_results: JsonObject = Field(description="results of the task's steps by step name")


class TaskExecutionContextView(ApiModel):
    total_steps: NonNegative
    pending_steps: NonNegative
    in_progress_steps: NonNegative
    completed_steps: NonNegative
    failed_steps: NonNegative
    ready_steps: NonNegative
    enqueued_steps: NonNegative
    execution_status: ExecutionStatus
    recommended_action: RecommendedAction
    completion_percentage: float = Field(ge=0, le=100)
    health_status: HealthStatus


class StepErrorView(ApiModel):
    message: str
    error_type: str | None
    retryable: bool
    status_code: int | None


class StepSummaryView(ApiModel):
    workflow_step_uuid: UUID
    name: str
    step_type: str
    current_state: StepState
    dependencies: list[str]
    attempts: NonNegative
    max_attempts: NonNegative
    dependencies_satisfied: bool
    retry_eligible: bool
    created_at: datetime
    completed_at: datetime | None
    last_attempted_at: datetime | None
    error: StepErrorView | None


class TaskDlqStatusView(ApiModel):
    in_dlq: bool
    dlq_entry_uuid: UUID | None
    dlq_reason: str | None
    resolution_status: str | None


class TaskSummaryView(ApiModel):
    """A task, its steps and its DLQ status in one view."""

    task_uuid: UUID
    name: str
    namespace: str
    version: str
    status: TaskState
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    initiator: str | None
    source_system: str | None
    reason: str | None
    correlation_id: UUID
    execution_context: TaskExecutionContextView
    step_summaries: list[StepSummaryView]
    dlq_status: TaskDlqStatusView


class UpdateType(StrEnum):
    TASK_STATE_CHANGE = "task_state_change"
    STEP_STATE_CHANGE = "step_state_change"
    TASK_COMPLETE = "task_complete"
    TASK_ERROR = "task_error"


class StatusUpdate(ApiModel):
    """One StreamTaskStatus message."""

    update_type: UpdateType
    task_uuid: UUID
    step_uuid: UUID | None = None
    step_name: str | None = None
    task_state: TaskState | None = None
    previous_task_state: TaskState | None = None
    step_state: StepState | None = None
    previous_step_state: StepState | None = None
    timestamp: datetime
    message: str | None = None
