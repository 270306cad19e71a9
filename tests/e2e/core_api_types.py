"""tasker-core's REST API types as strict pydantic models, one per Rust struct, written from
`crates/tasker-shared/src/types/api/{orchestration,worker,templates}.rs`,
`models/core/task.rs` (PaginationInfo), `database/sql_functions.rs` (StepReadinessStatus,
SystemHealthCounts) and `models/orchestration/dlq.rs`.

Rules (serde's): `String` is a JSON string, `i32`/`i64` an integer (never 3.0), `u32`/`u64`
a non-negative integer, `f64` any number, `DateTime<Utc>` an RFC 3339 string with an offset,
`NaiveDateTime` one without, `Uuid` a UUID string, `Option<T>` may be null or absent, every
other field is required; unknown fields are ignored (no `deny_unknown_fields` there).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime, RootModel

I32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
I64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
U16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Value = Any  # serde_json::Value


class Rust(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# --- database/sql_functions.rs, models/core/task.rs -------------------------------------

class StepReadinessStatus(Rust):
    workflow_step_uuid: UUID
    task_uuid: UUID
    named_step_uuid: UUID
    name: str
    current_state: str
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    last_failure_at: NaiveDatetime | None = None
    next_retry_at: NaiveDatetime | None = None
    total_parents: I32
    completed_parents: I32
    attempts: I32
    max_attempts: I32
    backoff_request_seconds: I32 | None = None
    last_attempted_at: NaiveDatetime | None = None


class PaginationInfo(Rust):
    page: U32
    per_page: U32
    total_count: U64
    total_pages: U32
    has_next: bool
    has_previous: bool


class SystemHealthCounts(Rust):
    pending_tasks: I64
    initializing_tasks: I64
    enqueuing_steps_tasks: I64
    steps_in_process_tasks: I64
    evaluating_results_tasks: I64
    waiting_for_dependencies_tasks: I64
    waiting_for_retry_tasks: I64
    blocked_by_failures_tasks: I64
    complete_tasks: I64
    error_tasks: I64
    cancelled_tasks: I64
    resolved_manually_tasks: I64
    total_tasks: I64
    pending_steps: I64
    enqueued_steps: I64
    in_progress_steps: I64
    enqueued_for_orchestration_steps: I64
    enqueued_as_error_for_orchestration_steps: I64
    waiting_for_retry_steps: I64
    complete_steps: I64
    error_steps: I64
    cancelled_steps: I64
    resolved_manually_steps: I64
    total_steps: I64


# --- types/api/orchestration.rs ------------------------------------------------------

class TaskResponse(Rust):
    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    context: Value
    initiator: str
    source_system: str
    reason: str
    priority: I32 | None = None
    tags: list[str] | None = None
    correlation_id: UUID
    parent_correlation_id: UUID | None = None
    total_steps: I64
    pending_steps: I64
    in_progress_steps: I64
    completed_steps: I64
    failed_steps: I64
    ready_steps: I64
    execution_status: str
    recommended_action: str
    completion_percentage: float
    health_status: str
    steps: list[StepReadinessStatus]


class TaskListResponse(Rust):
    tasks: list[TaskResponse]
    pagination: PaginationInfo


class StepResponse(Rust):
    step_uuid: str
    task_uuid: str
    name: str
    created_at: str
    updated_at: str
    completed_at: str | None = None
    results: Value | None = None
    current_state: str
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: I32
    completed_parents: I32
    attempts: I32
    max_attempts: I32
    last_failure_at: str | None = None
    next_retry_at: str | None = None
    last_attempted_at: str | None = None


class StepResponses(RootModel[list[StepResponse]]):
    """`Vec<StepResponse>`."""


class StepAuditResponse(Rust):
    audit_uuid: str
    workflow_step_uuid: str
    transition_uuid: str
    task_uuid: str
    recorded_at: str
    worker_uuid: str | None = None
    correlation_id: str | None = None
    success: bool
    execution_time_ms: I64 | None = None
    result: Value | None = None
    step_name: str
    from_state: str | None = None
    to_state: str


class StepAuditResponses(RootModel[list[StepAuditResponse]]):
    """`Vec<StepAuditResponse>`."""


class TaskSummaryMetadata(Rust):
    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    initiator: str
    source_system: str
    reason: str
    correlation_id: UUID
    total_steps: I64
    pending_steps: I64
    in_progress_steps: I64
    completed_steps: I64
    failed_steps: I64
    completion_percentage: float
    health_status: str
    execution_status: str
    recommended_action: str | None = None


class TemplateStepSummary(Rust):
    name: str
    step_type: str
    handler: str
    dependencies: list[str]
    retryable: bool
    max_attempts: U32


class TemplateSummaryOfTask(Rust):  # orchestration.rs `TemplateSummary`
    steps: list[TemplateStepSummary]


class StepErrorSummary(Rust):
    error_type: str | None = None
    retryable: bool
    status_code: U16 | None = None


class StepSummaryInfo(Rust):
    step_uuid: str
    name: str
    current_state: str
    created_at: str | None = None
    completed_at: str | None = None
    last_attempted_at: str | None = None
    attempts: I32
    max_attempts: I32
    dependencies_satisfied: bool
    retry_eligible: bool
    error: StepErrorSummary | None = None


class DlqSummaryInfo(Rust):
    in_dlq: bool
    dlq_reason: str | None = None
    resolution_status: str | None = None


class TaskSummaryLinks(Rust):
    task: str
    steps: str
    dlq: str


class TaskSummaryResponse(Rust):
    task: TaskSummaryMetadata
    template: TemplateSummaryOfTask
    steps: list[StepSummaryInfo]
    dlq: DlqSummaryInfo
    links: TaskSummaryLinks


class HealthResponse(Rust):
    status: str
    timestamp: str


class PerformanceMetrics(Rust):
    total_tasks: I64
    active_tasks: I64
    completed_tasks: I64
    failed_tasks: I64
    completion_rate: float
    error_rate: float
    average_task_duration_seconds: float
    average_step_duration_seconds: float
    tasks_per_hour: I64
    steps_per_hour: I64
    system_health_score: float
    analysis_period_start: str
    calculated_at: str


# --- types/api/templates.rs --------------------------------------------------------

class TemplateSummary(Rust):
    name: str
    namespace: str
    version: str
    description: str | None = None
    step_count: U64


class NamespaceSummary(Rust):
    name: str
    description: str | None = None
    template_count: U64


class TemplateListResponse(Rust):
    namespaces: list[NamespaceSummary]
    templates: list[TemplateSummary]
    total_count: U64


class StepDefinition(Rust):
    name: str
    description: str | None = None
    default_retryable: bool
    default_max_attempts: I32
    result_schema: Value | None = None


class TemplateDetail(Rust):
    name: str
    namespace: str
    version: str
    description: str | None = None
    configuration: Value | None = None
    steps: list[StepDefinition]


# --- models/orchestration/dlq.rs (enums without serde renaming: Rust variant names) -----

DlqReason = Literal["StalenessTimeout", "MaxRetriesExceeded", "DependencyCycleDetected",
                    "WorkerUnavailable", "ManualDlq"]
DlqResolutionStatus = Literal["Pending", "ManuallyResolved", "PermanentlyFailed", "Cancelled"]


class DlqEntry(Rust):
    dlq_entry_uuid: UUID
    task_uuid: UUID
    original_state: str
    dlq_reason: DlqReason
    dlq_timestamp: NaiveDatetime
    resolution_status: DlqResolutionStatus
    resolution_timestamp: NaiveDatetime | None = None
    resolution_notes: str | None = None
    resolved_by: str | None = None
    task_snapshot: Value
    metadata: Value | None = None
    created_at: NaiveDatetime
    updated_at: NaiveDatetime


class DlqEntries(RootModel[list[DlqEntry]]):
    """`Vec<DlqEntry>`."""


# --- types/api/worker.rs -----------------------------------------------------------

class BasicHealthResponse(Rust):
    status: str
    timestamp: AwareDatetime
    worker_id: str
