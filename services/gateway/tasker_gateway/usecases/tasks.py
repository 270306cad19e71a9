"""Task use cases: get, list, cancel, context, summary, request outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_gateway.context import GatewayContext
from tasker_gateway.models.common import Pagination, TaskState
from tasker_gateway.models.tasks import (
    RequestOutcomeName,
    StepErrorView,
    StepSummaryView,
    TaskContextView,
    TaskDlqStatusView,
    TaskExecutionContextView,
    TaskListView,
    TaskRequestOutcomeView,
    TaskSummaryView,
    TaskView,
)
from tasker_gateway.outcomes import read_outcome
from tasker_gateway.usecases.views import load, pick, task_view, task_views, to_task_view
from tasker_shared.db.database import Conn
from tasker_shared.domain.dynamic import TEMPLATE_STEP_KEY
from tasker_shared.domain.template import TaskTemplate
from tasker_shared.errors import NotFoundError, TaskAlreadyFinished, ValidationError
from tasker_shared.store.templates import TemplateCache

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
_FINISHED_STEP = frozenset({"complete", "resolved_manually", "cancelled"})
_FAILING_STEP = frozenset({"error", "waiting_for_retry", "enqueued_as_error_for_orchestration"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskListQuery:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    namespace: str | None = None
    status: TaskState | None = None
    initiator: str | None = None
    source_system: str | None = None
    name: str | None = None
    ascending: bool = False
    created_from: datetime | None = None
    created_to: datetime | None = None

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValidationError(f"page: must be at least 1, got {self.page}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValidationError(
                f"per_page: must be between 1 and {MAX_PER_PAGE}, got {self.per_page}")


async def get_task(ctx: GatewayContext, task_uuid: UUID) -> TaskView:
    return await ctx.db.run_autocommit(task_view, task_uuid)  # a read: see run_autocommit


def _list(conn: Conn, q: TaskListQuery) -> TaskListView:
    row = conn.execute(
        "SELECT * FROM tasker.list_tasks_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (q.namespace, q.status.value if q.status else None, q.initiator, q.source_system,
         q.name, q.created_from, q.created_to, q.ascending, q.per_page,
         (q.page - 1) * q.per_page)).fetchone()
    assert row is not None
    total = int(row["total_count"])
    pages = math.ceil(total / q.per_page)
    return TaskListView(
        tasks=task_views(conn, row["task_uuids"]),
        pagination=Pagination(page=q.page, per_page=q.per_page, total_count=total,
                              total_pages=pages, has_next=q.page < pages,
                              has_previous=q.page > 1))


async def list_tasks(ctx: GatewayContext, query: TaskListQuery) -> TaskListView:
    return await ctx.db.run(_list, query)


def _cancel(conn: Conn, task_uuid: UUID, processor: UUID, metadata: dict[str, Any]) -> TaskView:
    row = conn.execute("SELECT tasker.cancel_task_v1(%s, %s, %s) AS ok",
                       (task_uuid, processor, Jsonb(metadata))).fetchone()
    if row is None or not row["ok"]:
        state = conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s",
                             (task_uuid,)).fetchone()
        current = state["s"] if state else "unknown"
        raise TaskAlreadyFinished(f"task {task_uuid} is already {current}; only unfinished"
                                  " tasks can be cancelled")
    return task_view(conn, task_uuid)


async def cancel_task(ctx: GatewayContext, task_uuid: UUID, *, actor: str,
                      reason: str | None) -> TaskView:
    metadata = {"actor": actor, "reason": reason or "cancelled through the API",
                "action": "cancel"}
    return await ctx.db.run(_cancel, task_uuid, ctx.processor_uuid, metadata)


def _context(conn: Conn, task_uuid: UUID) -> TaskContextView:
    row = conn.execute("SELECT context FROM tasker.tasks WHERE task_uuid = %s",
                       (task_uuid,)).fetchone()
    if row is None:
        raise NotFoundError(f"task {task_uuid} not found")
    results = conn.execute(
        "SELECT ns.name, ws.results FROM tasker.workflow_steps ws"
        " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
        " WHERE ws.task_uuid = %s AND ws.results IS NOT NULL ORDER BY ns.name",
        (task_uuid,)).fetchall()
    return TaskContextView(task_uuid=task_uuid, context=row["context"] or {},
                           step_results={r["name"]: r["results"] for r in results})


async def task_context(ctx: GatewayContext, task_uuid: UUID) -> TaskContextView:
    return await ctx.db.run(_context, task_uuid)


def _step_error(raw: Any) -> StepErrorView | None:
    if not isinstance(raw, dict):
        return None
    code = raw.get("status_code")
    kind = raw.get("error_type")
    return StepErrorView(message=str(raw.get("message", "")),
                         error_type=kind if isinstance(kind, str) else None,
                         retryable=raw.get("retryable") is True,
                         status_code=code if isinstance(code, int) and code >= 0 else None)


def _step_type(template: TaskTemplate, name: str, inputs: Any) -> str:
    template_step = inputs.get(TEMPLATE_STEP_KEY) if isinstance(inputs, dict) else None
    step = template.get_step(str(template_step or name))
    return step.step_type.value if step else "standard"


def _summary(conn: Conn, cache: TemplateCache, task_uuid: UUID
             ) -> tuple[TaskSummaryView, TaskTemplate]:
    data = load(conn, [task_uuid], with_rows=True).get(task_uuid)
    if data is None:
        raise NotFoundError(f"task {task_uuid} not found")
    task, row, rows = to_task_view(data), data.row, data.step_rows
    template = cache.by_uuid(conn, row["named_task_uuid"], row["template_updated_at"])
    names = {s["workflow_step_uuid"]: s["name"] for s in data.steps}
    dlq = conn.execute("SELECT * FROM tasker.get_task_dlq_status_v1(%s)", (task_uuid,)
                       ).fetchone()
    summaries = []
    for step in data.steps:
        extra = rows[step["workflow_step_uuid"]]
        state = step["current_state"]
        results = extra["results"]
        summaries.append(pick(
            StepSummaryView, step, step_type=_step_type(template, step["name"], extra["inputs"]),
            dependencies=sorted(names[p] for p in data.parents.get(step["workflow_step_uuid"], ())
                                if p in names),
            created_at=extra["created_at"],
            completed_at=extra["processed_at"] if state in _FINISHED_STEP else None,
            error=_step_error(results.get("error")) if state in _FAILING_STEP
            and isinstance(results, dict) else None))
    return TaskSummaryView(
        **task.model_dump(include=set(TaskSummaryView.model_fields)
                          - {"execution_context", "step_summaries", "dlq_status"}),
        execution_context=pick(TaskExecutionContextView, data.context),
        step_summaries=summaries,
        dlq_status=TaskDlqStatusView(
            in_dlq=bool(dlq and dlq["resolution_status"] == "pending"),
            dlq_entry_uuid=dlq["dlq_entry_uuid"] if dlq else None,
            dlq_reason=dlq["dlq_reason"] if dlq else None,
            resolution_status=dlq["resolution_status"] if dlq else None)), template


async def task_summary_with_template(ctx: GatewayContext, task_uuid: UUID
                                     ) -> tuple[TaskSummaryView, TaskTemplate]:
    """The summary and the template the task was created from."""
    return await ctx.db.run(_summary, ctx.templates, task_uuid)


async def task_summary(ctx: GatewayContext, task_uuid: UUID) -> TaskSummaryView:
    return (await task_summary_with_template(ctx, task_uuid))[0]


async def request_outcome(ctx: GatewayContext, request_id: str) -> TaskRequestOutcomeView:
    found = await ctx.db.run(read_outcome, request_id)
    if found is None:
        raise NotFoundError(f"no outcome recorded for task request {request_id} (yet)")
    return TaskRequestOutcomeView(request_id=found.request_id,
                                  outcome=RequestOutcomeName(found.outcome),
                                  task_uuid=found.task_uuid, reason=found.reason)
