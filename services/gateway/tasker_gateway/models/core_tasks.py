"""REST bodies of tasks and steps in tasker-core's shapes (its `TaskResponse`, `StepResponse`,
`StepAuditResponse`, `TaskSummaryResponse`...): same field names, JSON types and date-time
spellings, so tasker-core's clients parse them. Fields marked "Tasker" are extras (tasker-core's
types ignore unknown fields)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field, RootModel

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
from tasker_gateway.models.tasks import StepReadinessView, TaskView
from tasker_gateway.models.wire import MicroZ, NaiveUtc


class StepReadinessStatus(StepReadinessView):
    """A step's readiness, as in TaskResponse.steps (timestamps without an offset)."""

    last_failure_at: NaiveUtc | None
    next_retry_at: NaiveUtc | None
    backoff_request_seconds: int | None
    last_attempted_at: NaiveUtc | None


class TaskResponse(TaskView):
    """A task with its execution context and the readiness of its steps (text fields are
    never null, `priority` and `tags` may be)."""

    initiator: str
    source_system: str
    reason: str
    priority: int | None  # type: ignore[assignment]
    tags: list[str] | None  # type: ignore[assignment]
    steps: list[StepReadinessStatus]  # type: ignore[assignment]


class TaskListResponse(ApiModel):
    tasks: list[TaskResponse]
    pagination: Pagination


class StepResponse(ApiModel):
    """One step with its readiness (timestamps as `...ffffffZ` strings)."""

    step_uuid: UUID
    task_uuid: UUID
    name: str
    created_at: MicroZ
    updated_at: MicroZ
    completed_at: MicroZ | None
    results: JsonObject | None
    current_state: StepState
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: NonNegative
    completed_parents: NonNegative
    attempts: NonNegative
    max_attempts: NonNegative
    last_failure_at: MicroZ | None
    next_retry_at: MicroZ | None
    last_attempted_at: MicroZ | None
    named_step_uuid: UUID = Field(description="Tasker")
    retryable: bool = Field(description="Tasker")
    in_process: bool = Field(description="Tasker")
    processed: bool = Field(description="Tasker")
    backoff_request_seconds: int | None = Field(description="Tasker")
    inputs: JsonObject | None = Field(description="Tasker")


class StepResponseList(RootModel[list[StepResponse]]):
    """The steps of a task, in DAG order (a bare array)."""


class ResolvedStepResponse(StepResponse):
    """The step after an operator action; `previous_state` is Tasker's."""

    previous_state: StepState = Field(description="Tasker: the state before the action")


class StepAuditResponse(ApiModel):
    """A recorded result joined with the transition that recorded it."""

    audit_uuid: UUID
    workflow_step_uuid: UUID
    transition_uuid: UUID
    task_uuid: UUID
    recorded_at: MicroZ
    worker_uuid: str | None
    correlation_id: UUID | None
    success: bool
    execution_time_ms: NonNegative | None
    result: JsonObject | None
    step_name: str
    from_state: StepState | None
    to_state: StepState
    transition_metadata: JsonObject = Field(description="Tasker")


class StepAuditList(RootModel[list[StepAuditResponse]]):
    """A step's recorded results, newest first (a bare array)."""


class TaskSummaryMetadata(ApiModel):
    task_uuid: UUID
    name: str
    namespace: str
    version: str
    status: TaskState
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    initiator: str
    source_system: str
    reason: str
    correlation_id: UUID
    total_steps: NonNegative
    pending_steps: NonNegative
    in_progress_steps: NonNegative
    completed_steps: NonNegative
    failed_steps: NonNegative
    completion_percentage: float = Field(ge=0, le=100)
    health_status: HealthStatus
    execution_status: ExecutionStatus
    recommended_action: RecommendedAction | None
    ready_steps: NonNegative = Field(description="Tasker")
    enqueued_steps: NonNegative = Field(description="Tasker")


class TemplateStepSummary(ApiModel):
    name: str
    step_type: str
    handler: str
    dependencies: list[str]
    retryable: bool
    max_attempts: NonNegative


class TaskTemplateSummary(ApiModel):
    steps: list[TemplateStepSummary]


class StepErrorSummary(ApiModel):
    error_type: str | None
    retryable: bool
    status_code: int | None = Field(ge=0, le=65535)
    message: str = Field(description="Tasker")


class StepSummaryInfo(ApiModel):
    step_uuid: UUID
    name: str
    current_state: StepState
    created_at: MicroZ | None
    completed_at: MicroZ | None
    last_attempted_at: MicroZ | None
    attempts: NonNegative
    max_attempts: NonNegative
    dependencies_satisfied: bool
    retry_eligible: bool
    error: StepErrorSummary | None
    step_type: str = Field(description="Tasker")
    dependencies: list[str] = Field(description="Tasker")


class DlqSummaryInfo(ApiModel):
    in_dlq: bool
    dlq_reason: str | None
    resolution_status: str | None
    dlq_entry_uuid: UUID | None = Field(description="Tasker")


class TaskSummaryLinks(ApiModel):
    task: str
    steps: str
    dlq: str


class TaskSummaryResponse(ApiModel):
    """A task, its template's steps, its steps and its DLQ status in one call."""

    task: TaskSummaryMetadata
    template: TaskTemplateSummary
    steps: list[StepSummaryInfo]
    dlq: DlqSummaryInfo
    links: TaskSummaryLinks
