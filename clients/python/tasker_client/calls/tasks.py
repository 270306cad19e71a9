"""Task calls: arguments checked and turned into requests, replies into results (written once)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from tasker_client.calls.batch import TaskSpec, wait_ms
from tasker_client.convert import UuidLike, json_value, parse_enum, uuid_text
from tasker_client.core import Call, StreamCall
from tasker_client.errors import ValidationError
from tasker_client.proto.tasker.v1 import (
    CancelTaskRequest,
    CreateTaskRequest,
    GetTaskContextRequest,
    GetTaskRequest,
    GetTaskRequestOutcomeRequest,
    GetTaskSummaryRequest,
    ListTasksRequest,
    PaginationRequest,
    SortDirection,
    StreamTaskStatusRequest,
    Task,
    TaskRequestOutcome,
    TaskState,
    TaskStatusUpdate,
    TaskSummary,
    TimestampRange,
)
from tasker_client.results import CreateTaskResult, TaskContext, TaskPage

_task = attrgetter("task")


def create_task(
    name: str,
    *,
    namespace: str = "",
    version: str = "",
    context: Mapping[str, Any] | None = None,
    initiator: str = "",
    source_system: str = "",
    reason: str = "",
    tags: Sequence[str] = (),
    priority: int | None = None,
    correlation_id: str = "",
    parent_correlation_id: str | None = None,
    idempotency_key: str | None = None,
    options: Mapping[str, Any] | None = None,
    wait: bool = True,
    wait_timeout: float | None = None,
    request_id: str | None = None,
    call_timeout: float | None = None,
) -> Call[CreateTaskResult]:
    """Request a task; with `wait` the reply comes once ingestion created (or refused) it."""
    spec = TaskSpec(
        name=name, namespace=namespace, version=version, context=context, initiator=initiator,
        source_system=source_system, reason=reason, tags=tags, priority=priority,
        correlation_id=correlation_id, parent_correlation_id=parent_correlation_id,
        idempotency_key=idempotency_key, options=options)
    # One id for every attempt, so a retried request is the same request.
    request_id = request_id or str(uuid.uuid4())
    request = CreateTaskRequest(
        task=spec.task_request(),
        context_json=spec.context_json(),
        wait=wait,
        wait_timeout_ms=wait_ms(wait_timeout),
        request_id=request_id,
    )

    def result(reply: Any) -> CreateTaskResult:
        return CreateTaskResult(
            status=reply.status,
            request_id=reply.request_id or request_id,
            task_uuid=reply.task_uuid or (reply.task.task_uuid if reply.task else None),
            task=reply.task,
        )

    return Call(service="tasks", method="create_task", request=request, timeout=call_timeout,
                convert=result)


def get_task(task_uuid: UuidLike, *, call_timeout: float | None = None) -> Call[Task]:
    """One task with its execution context and step readiness."""
    request = GetTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
    return Call(service="tasks", method="get_task", request=request, timeout=call_timeout,
                convert=_task)


def list_tasks(
    *,
    namespace: str | None = None,
    status: TaskState | str | None = None,
    name: str | None = None,
    initiator: str | None = None,
    source_system: str | None = None,
    page: int = 1,
    per_page: int = 25,
    sort: SortDirection | str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    call_timeout: float | None = None,
) -> Call[TaskPage]:
    """One page of tasks, newest first unless `sort` is "asc"."""
    if page < 1 or not 1 <= per_page <= 100:
        raise ValidationError("page must be >= 1 and per_page within [1, 100]")
    created = None
    if created_after is not None or created_before is not None:
        created = TimestampRange(start=created_after, end=created_before)
    request = ListTasksRequest(
        pagination=PaginationRequest(page=page, per_page=per_page),
        namespace=namespace,
        status=None if status is None else parse_enum(TaskState, status),
        initiator=initiator,
        source_system=source_system,
        name=name,
        sort_direction=(
            SortDirection.UNSPECIFIED if sort is None else parse_enum(SortDirection, sort)
        ),
        created_at=created,
    )

    def result(reply: Any) -> TaskPage:
        pagination = reply.pagination
        return TaskPage(
            tasks=tuple(reply.tasks),
            page=pagination.page if pagination else page,
            per_page=pagination.per_page if pagination else per_page,
            total_count=pagination.total_count if pagination else len(reply.tasks),
            total_pages=pagination.total_pages if pagination else 1,
            has_next=pagination.has_next if pagination else False,
        )

    return Call(service="tasks", method="list_tasks", request=request, timeout=call_timeout,
                convert=result)


def cancel_task(
    task_uuid: UuidLike, *, reason: str | None = None, call_timeout: float | None = None
) -> Call[Task]:
    """Cancel a task; TransitionRejected when it already finished."""
    request = CancelTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"), reason=reason)
    return Call(service="tasks", method="cancel_task", request=request, timeout=call_timeout,
                convert=_task)


def get_task_context(task_uuid: UuidLike, *, call_timeout: float | None = None) -> Call[TaskContext]:
    """The context a task was requested with and its steps' results so far."""
    request = GetTaskContextRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))

    def result(reply: Any) -> TaskContext:
        return TaskContext(
            task_uuid=reply.task_uuid,
            context=json_value(reply.context_json, reply.context),
            step_results=json_value(reply.step_results_json, reply.step_results),
        )

    return Call(service="tasks", method="get_task_context", request=request,
                timeout=call_timeout, convert=result)


def get_task_request_outcome(request_id: str, *, call_timeout: float | None = None
                             ) -> Call[TaskRequestOutcome]:
    """What ingestion did with a request (the `request_id` of `create_task(wait=False)`):
    outcome CREATED with `task_uuid`, DUPLICATE or INVALID with `reason`. NotFoundError
    while the request is still queued."""
    if not request_id:
        raise ValidationError("request_id: is required")
    request = GetTaskRequestOutcomeRequest(request_id=request_id)
    return Call(service="tasks", method="get_task_request_outcome", request=request,
                timeout=call_timeout, convert=attrgetter("outcome"))


def get_task_summary(task_uuid: UuidLike, *, call_timeout: float | None = None) -> Call[TaskSummary]:
    """A task, its step summaries and its DLQ status in one view."""
    request = GetTaskSummaryRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
    return Call(service="tasks", method="get_task_summary", request=request,
                timeout=call_timeout, convert=attrgetter("summary"))


def watch_task(
    task_uuid: UuidLike, *, include_steps: bool = False, call_timeout: float | None = None
) -> StreamCall[TaskStatusUpdate]:
    """Live updates until the task is terminal (`call_timeout` bounds the whole watch).

    Close an unfinished watch early with `contextlib.aclosing` (async) or `.close()` (sync).
    """
    request = StreamTaskStatusRequest(
        task_uuid=uuid_text(task_uuid, "task_uuid"), include_steps=include_steps
    )
    return StreamCall(service="tasks", method="stream_task_status", request=request,
                      timeout=call_timeout)
