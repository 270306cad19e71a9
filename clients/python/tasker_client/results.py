"""Small typed results for calls whose reply is more than one message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasker_client.proto.tasker.v1 import (
    CreateTaskOutcome,
    CreateTaskStatus,
    Step,
    StepState,
    Task,
    TaskState,
    TemplateSummary,
)

TERMINAL_TASK_STATES = frozenset(
    {TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED, TaskState.RESOLVED_MANUALLY}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateTaskResult:
    """The outcome of create_task: `task` is set once ingestion created it."""

    status: CreateTaskStatus
    request_id: str
    task_uuid: str | None
    task: Task | None

    @property
    def created(self) -> bool:
        """True when the task exists (not merely accepted onto the queue)."""
        return bool(self.status == CreateTaskStatus.CREATED)


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskOutcome:
    """What became of one item of create_tasks / create_tasks_concurrently (`index`: its
    position in the items given): CREATED (`task_uuid` set; `task` too when asked for:
    create_tasks' `include_tasks`, always for create_tasks_concurrently), ACCEPTED (still queued: follow
    `request_id`), DUPLICATE (`existing_task_uuid` names the task with that identity when it
    could be found) or INVALID (`reason`; `error_code` as a single create would report it:
    validation_error, payload_too_large, not_found, unprocessable, conflict)."""

    index: int
    outcome: CreateTaskOutcome
    request_id: str | None
    task_uuid: str | None = None
    task: Task | None = None
    existing_task_uuid: str | None = None
    reason: str | None = None
    error_code: str | None = None

    @property
    def created(self) -> bool:
        """True when ingestion created the task."""
        return bool(self.outcome == CreateTaskOutcome.CREATED)


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskPage:
    """One page of list_tasks."""

    tasks: tuple[Task, ...]
    page: int
    per_page: int
    total_count: int
    total_pages: int
    has_next: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class StepResolution:
    """The step after resolve_step and the state it left."""

    step: Step
    previous_state: StepState


@dataclass(frozen=True, kw_only=True, slots=True)
class TemplateCatalog:
    """list_templates: the summaries and the distinct namespaces among them."""

    templates: tuple[TemplateSummary, ...]
    namespaces: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskContext:
    """A task's request context and its steps' results so far, keyed by step name."""

    task_uuid: str
    context: dict[str, Any]
    step_results: dict[str, Any]


def is_terminal(state: TaskState | None) -> bool:
    """Whether a TaskState is final (complete, error, cancelled, resolved manually)."""
    return state in TERMINAL_TASK_STATES
