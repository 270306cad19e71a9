"""Step bodies: step views, operator actions (tagged by `action_type`), audit records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, RootModel

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative, StepState

Actor = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class StepView(ApiModel):
    """A workflow step row with its readiness evaluation."""

    workflow_step_uuid: UUID
    task_uuid: UUID
    named_step_uuid: UUID
    name: str
    current_state: StepState
    retryable: bool
    max_attempts: NonNegative
    attempts: NonNegative
    in_process: bool
    processed: bool
    processed_at: datetime | None
    last_attempted_at: datetime | None
    backoff_request_seconds: float | None
    inputs: JsonObject | None
    results: JsonObject | None
    created_at: datetime
    updated_at: datetime
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    last_failure_at: datetime | None
    next_retry_at: datetime | None
    total_parents: NonNegative
    completed_parents: NonNegative


class StepListView(ApiModel):
    steps: list[StepView]


class ResetForRetry(ApiModel):
    """error -> pending, attempts reset to 0."""

    action_type: Literal["reset_for_retry"]
    reason: Reason
    reset_by: Actor


class ResolveManually(ApiModel):
    """Any non-terminal state -> resolved_manually (satisfies dependents)."""

    action_type: Literal["resolve_manually"]
    reason: Reason
    resolved_by: Actor


class CompletionData(ApiModel):
    result: JsonObject
    metadata: JsonObject | None = None


class CompleteManually(ApiModel):
    """Any non-terminal state -> complete, storing `completion_data.result`."""

    action_type: Literal["complete_manually"]
    completion_data: CompletionData
    reason: Reason
    completed_by: Actor


StepActionBody = Annotated[ResetForRetry | ResolveManually | CompleteManually,
                           Field(discriminator="action_type")]


class StepActionRequest(RootModel[StepActionBody]):
    """PATCH body: one of the three actions, chosen by `action_type`."""

    model_config = ConfigDict(frozen=True)


class ResolveStepView(ApiModel):
    step: StepView
    previous_state: StepState


class StepAuditRecordView(ApiModel):
    """A recorded result joined with the transition that recorded it."""

    audit_uuid: UUID
    workflow_step_uuid: UUID
    workflow_step_transition_uuid: UUID
    task_uuid: UUID
    step_name: str
    recorded_at: datetime
    worker_uuid: str | None
    correlation_id: UUID | None
    success: bool
    execution_time_ms: NonNegative | None
    from_state: StepState | None
    to_state: StepState
    transition_metadata: JsonObject


class StepAuditView(ApiModel):
    records: list[StepAuditRecordView] = Field(description="newest first")
