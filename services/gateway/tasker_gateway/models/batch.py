"""Batch create bodies (POST /v1/tasks/batch): the items asked for and each item's outcome."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative
from tasker_gateway.models.core_tasks import TaskResponse
from tasker_gateway.models.tasks import TaskRequestBody

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


class BatchTaskRequest(TaskRequestBody):
    """One item: a task request as POST /v1/tasks takes it, plus an optional request id."""

    request_id: str | None = Field(None, pattern=REQUEST_ID_PATTERN,
                                   description="client-chosen id for this item's queued"
                                               " request (unique within the batch)")


class CreateTasksBody(ApiModel):
    """Up to `gateway.max_batch_tasks` task requests (default 1,000), created in one round
    trip. An item that is not a valid request is answered `invalid` on its own; the others
    are still created."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"tasks": [
        {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
         "context": {"even_number": 2}},
        {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
         "context": {"even_number": 4}, "request_id": "order-1234"}]}]})

    tasks: list[BatchTaskRequest | JsonObject] = Field(min_length=1)


class CreateTasksParams(BaseModel):
    """Query of POST /v1/tasks/batch (unknown parameters ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    wait: bool = Field(True, description="wait for ingestion's outcome of every item")
    wait_timeout_ms: int | None = Field(None, ge=1, le=60_000,
                                        description="how long to wait for all outcomes;"
                                                    " items still queued then are 'accepted'")
    include_tasks: bool = Field(False, description="also answer each created item with its"
                                                   " task view (reads and sends N views);"
                                                   " false: task_uuid only")


class BatchOutcome(StrEnum):
    CREATED = "created"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


class CreateTasksItemResult(ApiModel):
    """What became of one item: `created` (with `task` when include_tasks=true),
    `accepted` (queued, follow GET /v1/task_requests/{request_id}), `duplicate`
    (`existing_task_uuid` names the task with that identity) or `invalid` (`reason`;
    `error_code` is the code a single create of the item would answer with:
    validation_error, payload_too_large, not_found, unprocessable, conflict)."""

    index: NonNegative = Field(description="position of the item in the request, from 0")
    outcome: BatchOutcome
    request_id: str | None = Field(description="the queued request's id (None: never queued"
                                               " and none was given)")
    task_uuid: UUID | None = None
    task: TaskResponse | None = None
    existing_task_uuid: UUID | None = None
    reason: str | None = None
    error_code: str | None = None


class CreateTasksResponse(ApiModel):
    """One result per item, in the order of the request."""

    results: list[CreateTasksItemResult]
