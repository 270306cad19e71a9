"""Analytics and DLQ bodies (SPEC 6.4, 7.1)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, Field

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative, TaskState

Rate = Annotated[float, Field(ge=0, le=100)]
Fraction = Annotated[float, Field(ge=0)]


class PerformanceMetricsView(ApiModel):
    total_tasks: NonNegative
    active_tasks: NonNegative
    completed_tasks: NonNegative
    failed_tasks: NonNegative
    completion_rate: Rate
    error_rate: Rate
    average_task_duration_seconds: float
    average_step_duration_seconds: float
    tasks_per_hour: float
    steps_per_hour: float
    system_health_score: Fraction
    analysis_period_start: datetime
    calculated_at: datetime


class SlowStepView(ApiModel):
    namespace_name: str
    task_name: str
    version: str
    step_name: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: NonNegative
    error_count: NonNegative
    error_rate: Rate
    last_executed_at: datetime | None


class SlowTaskView(ApiModel):
    namespace_name: str
    task_name: str
    version: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: NonNegative
    average_step_count: float
    error_count: NonNegative
    error_rate: Rate
    last_executed_at: datetime | None


class SystemHealthCountsView(ApiModel):
    pending_tasks: NonNegative
    initializing_tasks: NonNegative
    enqueuing_steps_tasks: NonNegative
    steps_in_process_tasks: NonNegative
    evaluating_results_tasks: NonNegative
    waiting_for_dependencies_tasks: NonNegative
    waiting_for_retry_tasks: NonNegative
    blocked_by_failures_tasks: NonNegative
    complete_tasks: NonNegative
    error_tasks: NonNegative
    cancelled_tasks: NonNegative
    resolved_manually_tasks: NonNegative
    total_tasks: NonNegative
    pending_steps: NonNegative
    enqueued_steps: NonNegative
    in_progress_steps: NonNegative
    enqueued_for_orchestration_steps: NonNegative
    enqueued_as_error_for_orchestration_steps: NonNegative
    waiting_for_retry_steps: NonNegative
    complete_steps: NonNegative
    error_steps: NonNegative
    cancelled_steps: NonNegative
    resolved_manually_steps: NonNegative
    total_steps: NonNegative


class ResourceUtilizationView(ApiModel):
    database_pool_utilization: Fraction
    system_health: SystemHealthCountsView


class BottleneckAnalysisView(ApiModel):
    slow_steps: list[SlowStepView]
    slow_tasks: list[SlowTaskView]
    resource_utilization: ResourceUtilizationView
    recommendations: list[str]


class DlqReason(StrEnum):
    STALENESS_TIMEOUT = "staleness_timeout"
    MAX_RETRIES_EXCEEDED = "max_retries_exceeded"
    DEPENDENCY_CYCLE_DETECTED = "dependency_cycle_detected"
    WORKER_UNAVAILABLE = "worker_unavailable"
    MANUAL_DLQ = "manual_dlq"


class DlqResolutionStatus(StrEnum):
    PENDING = "pending"
    MANUALLY_RESOLVED = "manually_resolved"
    PERMANENTLY_FAILED = "permanently_failed"
    CANCELLED = "cancelled"


def snake_case(value: Any) -> Any:
    """Accept an enum value in the Rust variant spelling tasker-core's clients send
    (`ManuallyResolved`) as well as Tasker's own (`manually_resolved`)."""
    if isinstance(value, str) and value[:1].isupper():
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in value).lstrip("_")
    return value


ResolutionInput = Annotated[DlqResolutionStatus, BeforeValidator(snake_case)]


class DlqEntryView(ApiModel):
    dlq_entry_uuid: UUID
    task_uuid: UUID
    original_state: TaskState
    dlq_reason: DlqReason
    dlq_timestamp: datetime
    resolution_status: DlqResolutionStatus
    resolution_timestamp: datetime | None
    resolution_notes: str | None
    resolved_by: str | None
    task_snapshot: JsonObject
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime


class DlqEntryListView(ApiModel):
    entries: list[DlqEntryView]


class DlqUpdateBody(ApiModel):
    """What the operator found or did; absent fields are left unchanged."""

    resolution_status: ResolutionInput | None = None
    resolution_notes: str | None = Field(None, max_length=10_000)
    resolved_by: str | None = Field(None, min_length=1, max_length=128)
    metadata: JsonObject | None = None


class DlqReasonStatsView(ApiModel):
    dlq_reason: DlqReason
    total_entries: NonNegative
    pending: NonNegative
    manually_resolved: NonNegative
    permanent_failures: NonNegative
    cancelled: NonNegative
    oldest_entry: datetime | None
    newest_entry: datetime | None
    avg_resolution_time_minutes: float | None


class DlqStatsView(ApiModel):
    stats: list[DlqReasonStatsView]


class InvestigationQueueEntryView(ApiModel):
    dlq_entry_uuid: UUID
    task_uuid: UUID
    namespace_name: str
    task_name: str
    original_state: TaskState
    dlq_reason: DlqReason
    dlq_timestamp: datetime
    minutes_in_dlq: float
    priority_score: float


class InvestigationQueueView(ApiModel):
    entries: list[InvestigationQueueEntryView]


class StalenessHealth(StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    STALE = "stale"


class StalenessEntryView(ApiModel):
    task_uuid: UUID
    namespace_name: str
    task_name: str
    current_state: TaskState
    time_in_state_minutes: float
    task_age_minutes: float
    staleness_threshold_minutes: NonNegative
    health_status: StalenessHealth
    priority: int


class StalenessView(ApiModel):
    entries: list[StalenessEntryView]
