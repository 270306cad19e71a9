"""Query-string parameters of the REST routes, as models (validated from strings)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasker_gateway.models.common import TaskState
from tasker_gateway.models.operations import ResolutionInput
from tasker_gateway.models.tasks import NAMESPACE_PATTERN

Text = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
Limit = Annotated[int, Field(ge=1, le=1000)]


class QueryModel(BaseModel):
    """Unknown query parameters are ignored; values arrive as strings."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class CreateTaskParams(QueryModel):
    wait: bool = Field(True, description="wait for ingestion's outcome (201) or not (202)")
    wait_timeout_ms: int | None = Field(None, ge=1, le=60_000,
                                        description="how long to wait; default from settings")
    request_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:\-]{1,128}$",
                                   description="client-chosen id for the queued request")


class TaskListParams(QueryModel):
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(25, ge=1, le=100)
    namespace: str | None = Field(None, pattern=NAMESPACE_PATTERN)
    status: TaskState | None = None
    initiator: Text | None = None
    source_system: Text | None = None
    name: Text | None = None
    sort: Literal["asc", "desc"] = Field("desc", description="by created_at")
    created_after: datetime | None = None
    created_before: datetime | None = None


class CancelParams(QueryModel):
    reason: str | None = Field(None, min_length=1, max_length=2000)


class TemplateListParams(QueryModel):
    namespace: str | None = Field(None, pattern=NAMESPACE_PATTERN)


class PerformanceParams(QueryModel):
    hours: int = Field(24, ge=1, le=24 * 365)


class BottleneckParams(QueryModel):
    limit: Limit = 10
    min_executions: int = Field(5, ge=0, le=1_000_000)


class DlqListParams(QueryModel):
    resolution_status: ResolutionInput | None = None
    limit: Limit = 50
    offset: int = Field(0, ge=0, le=2**31 - 1)


class LimitParams(QueryModel):
    limit: Limit = 50
