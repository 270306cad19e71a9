"""Task and step views re-shaped as tasker-core's REST bodies (models/core_tasks.py).

The use cases return Tasker's views (also what gRPC serves); REST answers with tasker-core's
field names. Bodies are built with `model_construct`: the views are already validated, and a
task's context (up to a megabyte) is not validated twice.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar, cast

from tasker_gateway.models.common import ApiModel
from tasker_gateway.models.core_tasks import (
    DlqSummaryInfo,
    ResolvedStepResponse,
    StepAuditList,
    StepAuditResponse,
    StepErrorSummary,
    StepReadinessStatus,
    StepResponse,
    StepResponseList,
    StepSummaryInfo,
    TaskListResponse,
    TaskResponse,
    TaskSummaryLinks,
    TaskSummaryMetadata,
    TaskSummaryResponse,
    TaskTemplateSummary,
    TemplateStepSummary,
)
from tasker_gateway.models.steps import ResolveStepView, StepAuditView, StepView
from tasker_gateway.models.tasks import StepReadinessView, TaskListView, TaskSummaryView, TaskView
from tasker_shared.domain.template import TaskTemplate

M = TypeVar("M", bound=ApiModel)


def build(model: type[M], source: ApiModel | None = None, **values: Any) -> M:
    """`model` from `values`, then the fields of `source` it has and `values` does not give."""
    if source is not None:
        for name in model.model_fields:
            if name not in values and name in type(source).model_fields:
                values[name] = getattr(source, name)
    return cast(M, model.model_construct(**values))


def whole_seconds(value: float | None) -> int | None:
    """A backoff in whole seconds (rounded up: never earlier than asked)."""
    return None if value is None else math.ceil(value)


def readiness(step: StepReadinessView) -> StepReadinessStatus:
    return build(StepReadinessStatus, step,
                 backoff_request_seconds=whole_seconds(step.backoff_request_seconds))


def task_response(view: TaskView) -> TaskResponse:
    return build(TaskResponse, view, initiator=view.initiator or "",
                 source_system=view.source_system or "", reason=view.reason or "",
                 steps=[readiness(s) for s in view.steps])


def task_list(view: TaskListView) -> TaskListResponse:
    return build(TaskListResponse, tasks=[task_response(t) for t in view.tasks],
                 pagination=view.pagination)


def step_response(view: StepView, model: type[StepResponse] = StepResponse,
                  **extra: Any) -> StepResponse:
    return build(model, view, step_uuid=view.workflow_step_uuid,
                 completed_at=view.processed_at,
                 backoff_request_seconds=whole_seconds(view.backoff_request_seconds), **extra)


def step_list(views: list[StepView]) -> StepResponseList:
    return StepResponseList.model_construct([step_response(v) for v in views])


def resolved_step(view: ResolveStepView) -> StepResponse:
    return step_response(view.step, ResolvedStepResponse, previous_state=view.previous_state)


def audit_list(view: StepAuditView) -> StepAuditList:
    records = []
    for record in view.records:
        result = record.transition_metadata.get("result")
        records.append(build(StepAuditResponse, record,
                             transition_uuid=record.workflow_step_transition_uuid,
                             result=result if isinstance(result, dict) else None))
    return StepAuditList.model_construct(records)


def _template_steps(template: TaskTemplate) -> TaskTemplateSummary:
    return build(TaskTemplateSummary, steps=[build(
        TemplateStepSummary, name=s.name, step_type=s.step_type.value,
        handler=s.handler.callable, dependencies=list(s.dependencies),
        retryable=s.retry.retryable, max_attempts=s.retry.max_attempts)
        for s in template.steps])


def task_summary(view: TaskSummaryView, template: TaskTemplate) -> TaskSummaryResponse:
    context = view.execution_context
    task = build(TaskSummaryMetadata, view, initiator=view.initiator or "",
                 source_system=view.source_system or "", reason=view.reason or "",
                 **{name: getattr(context, name) for name in type(context).model_fields
                    if name in TaskSummaryMetadata.model_fields})
    steps = [build(StepSummaryInfo, s, step_uuid=s.workflow_step_uuid,
                   error=build(StepErrorSummary, s.error) if s.error is not None else None)
             for s in view.step_summaries]
    dlq = build(DlqSummaryInfo, view.dlq_status)
    base = f"/v1/tasks/{view.task_uuid}"
    return build(TaskSummaryResponse, task=task, template=_template_steps(template),
                 steps=steps, dlq=dlq,
                 links=build(TaskSummaryLinks, task=base, steps=f"{base}/workflow_steps",
                             dlq="/v1/dlq"))
