"""Shared API types: the base model, enumerations, the error envelope, pagination."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tasker_shared.domain.states import StepState, TaskState

__all__ = [
    "ApiModel", "ErrorBody", "ErrorDetail", "ExecutionStatus", "HealthStatus", "JsonObject",
    "NonNegative", "Pagination", "RecommendedAction", "StepState", "TaskState",
]

JsonObject = dict[str, Any]
NonNegative = Annotated[int, Field(ge=0)]


class ApiModel(BaseModel):
    """Every request and response body: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutionStatus(StrEnum):
    HAS_READY_STEPS = "has_ready_steps"
    PROCESSING = "processing"
    BLOCKED_BY_FAILURES = "blocked_by_failures"
    ALL_COMPLETE = "all_complete"
    WAITING_FOR_DEPENDENCIES = "waiting_for_dependencies"


class RecommendedAction(StrEnum):
    EXECUTE_READY_STEPS = "execute_ready_steps"
    WAIT_FOR_COMPLETION = "wait_for_completion"
    HANDLE_FAILURES = "handle_failures"
    FINALIZE_TASK = "finalize_task"
    WAIT_FOR_DEPENDENCIES = "wait_for_dependencies"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    RECOVERING = "recovering"
    BLOCKED = "blocked"


class ErrorDetail(ApiModel):
    code: str = Field(description="machine-readable error code, e.g. not_found")
    message: str = Field(description="what went wrong, for a human")
    request_id: str | None = Field(None, description="the X-Request-Id of the request")
    details: JsonObject | None = None


class ErrorBody(ApiModel):
    """The one error envelope of every non-2xx response."""

    error: ErrorDetail


class Pagination(ApiModel):
    page: int = Field(ge=1)
    per_page: int = Field(ge=1, le=100)
    total_count: NonNegative
    total_pages: NonNegative
    has_next: bool
    has_previous: bool
