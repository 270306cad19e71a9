"""Creating many tasks: one CreateTasks call for a batch, or single creates sent concurrently."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from tasker_client.convert import to_json_text, to_struct
from tasker_client.core import Call
from tasker_client.errors import ConflictError, NotFoundError, TaskerError, ValidationError
from tasker_client.proto.tasker.v1 import (
    CreateTaskOutcome,
    CreateTaskRequest,
    CreateTasksItem,
    CreateTasksRequest,
    CreateTaskStatus,
    TaskRequest,
)
from tasker_client.results import TaskOutcome

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskSpec:
    """One task to create: the keyword arguments of `create_task` (a mapping with these keys
    is accepted wherever a TaskSpec is). `request_id` names the queued request; one is
    chosen for every item left without, and kept across retries of the call."""

    name: str
    namespace: str = ""
    version: str = ""
    context: Mapping[str, Any] | None = None
    initiator: str = ""
    source_system: str = ""
    reason: str = ""
    tags: Sequence[str] = ()
    priority: int | None = None
    correlation_id: str = ""
    parent_correlation_id: str | None = None
    idempotency_key: str | None = None
    options: Mapping[str, Any] | None = None
    request_id: str | None = None

    def context_json(self) -> str:
        """The context as JSON text, for the request's `context_json` (exact integers)."""
        return to_json_text(self.context if self.context is not None else {}) or "{}"

    def task_request(self) -> TaskRequest:
        """The TaskRequest message of this spec (its context goes in `context_json`)."""
        if not self.name:
            raise ValidationError("name: is required")
        return TaskRequest(
            name=self.name,
            namespace=self.namespace,
            version=self.version,
            initiator=self.initiator,
            source_system=self.source_system,
            reason=self.reason,
            tags=list(self.tags),
            options=to_struct(self.options),
            priority=self.priority,
            correlation_id=self.correlation_id,
            parent_correlation_id=self.parent_correlation_id,
            idempotency_key=self.idempotency_key,
        )


_SPEC_FIELDS = frozenset(f.name for f in fields(TaskSpec))


def as_spec(item: TaskSpec | Mapping[str, Any], index: int) -> TaskSpec:
    """`item` as a TaskSpec; ValidationError naming the item and any unknown key."""
    if isinstance(item, TaskSpec):
        return item
    if not isinstance(item, Mapping):
        raise ValidationError(f"tasks[{index}]: expected a TaskSpec or a mapping, got"
                              f" {type(item).__name__}")
    unknown = sorted(set(item) - _SPEC_FIELDS)
    if unknown:
        raise ValidationError(f"tasks[{index}]: unknown field(s) {', '.join(unknown)}")
    if "name" not in item:
        raise ValidationError(f"tasks[{index}]: name: is required")
    return TaskSpec(**item)


def _specs(tasks: Iterable[TaskSpec | Mapping[str, Any]]) -> list[TaskSpec]:
    return [as_spec(item, i) for i, item in enumerate(tasks)]


def wait_ms(wait_timeout: float | None) -> int:
    """`wait_timeout` (seconds, None: the server's default) as the requests' milliseconds."""
    return 0 if wait_timeout is None else max(1, round(wait_timeout * 1000))


def create_tasks(
    tasks: Iterable[TaskSpec | Mapping[str, Any]],
    *,
    wait: bool = True,
    wait_timeout: float | None = None,
    include_tasks: bool = False,
    call_timeout: float | None = None,
) -> Call[tuple[TaskOutcome, ...]]:
    """Create many tasks in one call (at most the gateway's `max_batch_tasks`, default
    1,000); every item is answered on its own, in order (see TaskOutcome). With `wait`, the
    reply comes once ingestion created or refused every item (items still queued after
    `wait_timeout` are ACCEPTED). Created items are answered with their task_uuid;
    `include_tasks=True` adds each one's task view (read, sent and decoded: costly for
    large batches)."""
    specs = _specs(tasks)
    if not specs:
        raise ValidationError("tasks: give at least one task")
    items = [CreateTasksItem(task=spec.task_request(), context_json=spec.context_json(),
                             request_id=spec.request_id or str(uuid.uuid4()))
             for spec in specs]
    request = CreateTasksRequest(items=items, wait=wait, wait_timeout_ms=wait_ms(wait_timeout),
                                 include_tasks=include_tasks)

    def result(reply: Any) -> tuple[TaskOutcome, ...]:
        return tuple(
            TaskOutcome(index=r.index, outcome=r.outcome, request_id=r.request_id or None,
                        task_uuid=r.task_uuid, task=r.task,
                        existing_task_uuid=r.existing_task_uuid, reason=r.reason,
                        error_code=r.error_code)
            for r in reply.results)

    return Call(service="tasks", method="create_tasks", request=request, timeout=call_timeout,
                convert=result)


def _refusal(exc: TaskerError) -> bool:
    """Errors that answer one item (the others say nothing about it: they are raised)."""
    return isinstance(exc, ConflictError | NotFoundError | ValidationError)


def _outcome(index: int, request_id: str, reply: Any) -> TaskOutcome:
    if isinstance(reply, ConflictError):
        existing = reply.details.get("existing_task_uuid")
        return TaskOutcome(index=index, outcome=CreateTaskOutcome.DUPLICATE,
                           request_id=request_id, existing_task_uuid=existing,
                           reason=reply.message, error_code=reply.code)
    if isinstance(reply, TaskerError):
        return TaskOutcome(index=index, outcome=CreateTaskOutcome.INVALID,
                           request_id=request_id, reason=reply.message, error_code=reply.code)
    if reply.status == CreateTaskStatus.CREATED:
        return TaskOutcome(index=index, outcome=CreateTaskOutcome.CREATED,
                           request_id=request_id, task_uuid=reply.task_uuid or None,
                           task=reply.task)
    return TaskOutcome(index=index, outcome=CreateTaskOutcome.ACCEPTED, request_id=request_id)


def create_tasks_concurrently(
    tasks: Iterable[TaskSpec | Mapping[str, Any]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait: bool = True,
    wait_timeout: float | None = None,
    call_timeout: float | None = None,
) -> Call[tuple[TaskOutcome, ...]]:
    """Create many tasks with single CreateTask calls, at most `concurrency` in flight (each
    with its own `call_timeout` and retries). Items are answered as create_tasks answers
    them; a duplicate, an invalid item or an unknown template is answered on its own, any
    other failure (auth, the gateway unreachable past the retries) cancels the calls still
    running and is raised. Each item keeps one request id (its own, or one chosen up front)
    across its retries; tasks created before a failure come back as DUPLICATE when the same
    specs are sent again."""
    if concurrency < 1:
        raise ValidationError("concurrency: must be at least 1")
    specs = _specs(tasks)
    ids = [spec.request_id or str(uuid.uuid4()) for spec in specs]
    requests = [CreateTaskRequest(task=spec.task_request(), context_json=spec.context_json(),
                                  wait=wait,
                                  wait_timeout_ms=wait_ms(wait_timeout), request_id=rid)
                for spec, rid in zip(specs, ids, strict=True)]

    def result(replies: list[Any]) -> tuple[TaskOutcome, ...]:
        return tuple(_outcome(i, rid, reply)
                     for i, (rid, reply) in enumerate(zip(ids, replies, strict=True)))

    return Call(service="tasks", method="create_task", request=requests, timeout=call_timeout,
                convert=result, concurrency=concurrency, keep=_refusal)
