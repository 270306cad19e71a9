"""REST bodies of templates, analytics and the DLQ in tasker-core's shapes (`TemplateListResponse`,
`TemplateDetail`, `PerformanceMetrics`, `DlqEntry`, `DlqStats`...). Fields marked "Tasker" are
extras. tasker-core's DLQ enums carry no serde renaming: they travel as their Rust variant
names (`MaxRetriesExceeded`, `Pending`), and its DLQ dates are naive."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import Field, RootModel

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative, TaskState
from tasker_gateway.models.operations import PerformanceMetricsView, StalenessHealth
from tasker_gateway.models.wire import NaiveUtc


def pascal(snake: str) -> str:
    """`max_retries_exceeded` -> `MaxRetriesExceeded` (serde's spelling of the variant)."""
    return "".join(part.capitalize() for part in snake.split("_"))


class DlqReasonName(StrEnum):
    STALENESS_TIMEOUT = "StalenessTimeout"
    MAX_RETRIES_EXCEEDED = "MaxRetriesExceeded"
    DEPENDENCY_CYCLE_DETECTED = "DependencyCycleDetected"
    WORKER_UNAVAILABLE = "WorkerUnavailable"
    MANUAL_DLQ = "ManualDlq"


class DlqResolutionName(StrEnum):
    PENDING = "Pending"
    MANUALLY_RESOLVED = "ManuallyResolved"
    PERMANENTLY_FAILED = "PermanentlyFailed"
    CANCELLED = "Cancelled"


class NamespaceSummary(ApiModel):
    name: str
    description: str | None
    template_count: NonNegative


class TemplateSummary(ApiModel):
    name: str
    namespace: str
    version: str
    description: str | None
    step_count: NonNegative


class TemplateListResponse(ApiModel):
    namespaces: list[NamespaceSummary]
    templates: list[TemplateSummary]
    total_count: NonNegative


class StepDefinition(ApiModel):
    name: str
    description: str | None
    default_retryable: bool
    default_max_attempts: NonNegative
    result_schema: JsonObject | None
    step_type: str = Field(description="Tasker")
    handler_callable: str = Field(description="Tasker")
    dependencies: list[str] = Field(description="Tasker")
    timeout_seconds: NonNegative | None = Field(description="Tasker")


class TemplateDetail(ApiModel):
    name: str
    namespace: str
    version: str
    description: str | None
    configuration: JsonObject | None
    steps: list[StepDefinition]
    input_schema: Any = Field(None, description="Tasker")


class PerformanceMetrics(PerformanceMetricsView):
    tasks_per_hour: NonNegative
    steps_per_hour: NonNegative
    analysis_period_start: str  # type: ignore[assignment]
    calculated_at: str  # type: ignore[assignment]


class DlqEntry(ApiModel):
    dlq_entry_uuid: UUID
    task_uuid: UUID
    original_state: TaskState
    dlq_reason: DlqReasonName
    dlq_timestamp: NaiveUtc
    resolution_status: DlqResolutionName
    resolution_timestamp: NaiveUtc | None
    resolution_notes: str | None
    resolved_by: str | None
    task_snapshot: JsonObject
    metadata: JsonObject | None
    created_at: NaiveUtc
    updated_at: NaiveUtc


class DlqEntryList(RootModel[list[DlqEntry]]):
    """DLQ entries, newest first (a bare array)."""


class UpdateInvestigationResponse(ApiModel):
    success: bool
    message: str
    dlq_entry_uuid: UUID
    entry: DlqEntry = Field(description="Tasker: the entry as it is now")


class DlqStats(ApiModel):
    dlq_reason: DlqReasonName
    total_entries: NonNegative
    pending: NonNegative
    manually_resolved: NonNegative
    permanent_failures: NonNegative
    cancelled: NonNegative
    oldest_entry: NaiveUtc | None
    newest_entry: NaiveUtc | None
    avg_resolution_time_minutes: float | None


class DlqStatsList(RootModel[list[DlqStats]]):
    """DLQ entries grouped by reason (a bare array)."""


class DlqInvestigationQueueEntry(ApiModel):
    dlq_entry_uuid: UUID
    task_uuid: UUID
    original_state: TaskState
    dlq_reason: DlqReasonName
    dlq_timestamp: NaiveUtc
    minutes_in_dlq: float
    namespace_name: str | None
    task_name: str | None
    current_state: TaskState | None
    time_in_state_minutes: int | None
    priority_score: float


class InvestigationQueue(RootModel[list[DlqInvestigationQueueEntry]]):
    """Pending DLQ entries, highest priority first (a bare array)."""


class StalenessMonitoring(ApiModel):
    task_uuid: UUID
    namespace_name: str | None
    task_name: str | None
    current_state: TaskState
    time_in_state_minutes: int
    task_age_minutes: int
    staleness_threshold_minutes: NonNegative
    health_status: StalenessHealth
    priority: int


class StalenessList(RootModel[list[StalenessMonitoring]]):
    """Unfinished tasks with their staleness health (a bare array)."""

