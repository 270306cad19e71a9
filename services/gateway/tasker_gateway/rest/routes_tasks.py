"""REST routes for tasks and their steps (SPEC 7.1)."""

from __future__ import annotations

from uuid import UUID

from tasker_gateway import permissions as P
from tasker_gateway.models.core_tasks import (
    ResolvedStepResponse,
    StepAuditList,
    StepResponse,
    StepResponseList,
    TaskListResponse,
    TaskResponse,
    TaskSummaryResponse,
)
from tasker_gateway.models.steps import (
    CompleteManually,
    ResetForRetry,
    StepActionBody,
    StepActionRequest,
)
from tasker_gateway.models.tasks import (
    TaskAccepted,
    TaskContextView,
    TaskRequestBody,
    TaskRequestOutcomeView,
)
from tasker_gateway.rest import routes_batch
from tasker_gateway.rest import shapes_tasks as shape
from tasker_gateway.rest.params import CancelParams, CreateTaskParams, TaskListParams
from tasker_gateway.rest.spec import Reply, RestRequest, Route
from tasker_gateway.usecases import create, steps, tasks
from tasker_gateway.usecases.inputs import parse_request_id, parse_uuid


def _task(req: RestRequest) -> UUID:
    return parse_uuid(req.path["task_uuid"], "task_uuid")


def _step(req: RestRequest) -> UUID:
    return parse_uuid(req.path["step_uuid"], "step_uuid")


async def create_task(req: RestRequest) -> Reply:
    q: CreateTaskParams = req.query
    gateway = req.ctx.settings.gateway
    wait = q.wait_timeout_ms / 1000 if q.wait_timeout_ms else gateway.create_wait_timeout_seconds
    result = await create.create_task(  # answer 202 rather than time out the request
        req.ctx, req.body, requester=req.principal.subject, wait=q.wait,
        wait_timeout=min(wait, gateway.request_timeout_seconds * 0.8), request_id=q.request_id)
    headers = {"X-Task-Request-Id": result.request_id}
    if result.task is None:
        return Reply(status=202, body=TaskAccepted(request_id=result.request_id),
                     headers={**headers, "Location": f"/v1/task_requests/{result.request_id}"})
    return Reply(status=201, body=shape.task_response(result.task),
                 headers={**headers, "Location": f"/v1/tasks/{result.task.task_uuid}"})


async def list_tasks(req: RestRequest) -> Reply:
    q: TaskListParams = req.query
    query = tasks.TaskListQuery(
        page=q.page, per_page=q.per_page, namespace=q.namespace, status=q.status,
        initiator=q.initiator, source_system=q.source_system, name=q.name,
        ascending=q.sort == "asc", created_from=q.created_after, created_to=q.created_before)
    return Reply(status=200, body=shape.task_list(await tasks.list_tasks(req.ctx, query)))


async def get_task(req: RestRequest) -> Reply:
    return Reply(status=200, body=shape.task_response(await tasks.get_task(req.ctx, _task(req))))


async def cancel_task(req: RestRequest) -> Reply:
    q: CancelParams = req.query
    view = await tasks.cancel_task(req.ctx, _task(req), actor=req.principal.subject,
                                   reason=q.reason)
    return Reply(status=200, body=shape.task_response(view))


async def task_summary(req: RestRequest) -> Reply:
    view, template = await tasks.task_summary_with_template(req.ctx, _task(req))
    return Reply(status=200, body=shape.task_summary(view, template))


async def task_context(req: RestRequest) -> Reply:
    return Reply(status=200, body=await tasks.task_context(req.ctx, _task(req)))


async def request_outcome(req: RestRequest) -> Reply:
    rid = parse_request_id(req.path["request_id"])
    return Reply(status=200, body=await tasks.request_outcome(req.ctx, rid))


async def list_steps(req: RestRequest) -> Reply:
    found = await steps.list_steps(req.ctx, _task(req))
    return Reply(status=200, body=shape.step_list(found))


async def get_step(req: RestRequest) -> Reply:
    view = await steps.get_step(req.ctx, _task(req), _step(req))
    return Reply(status=200, body=shape.step_response(view))


def step_action(body: StepActionBody) -> steps.StepAction:
    if isinstance(body, ResetForRetry):
        return steps.StepAction(action=body.action_type, reason=body.reason, actor=body.reset_by)
    if isinstance(body, CompleteManually):
        data = body.completion_data
        return steps.StepAction(action=body.action_type, reason=body.reason,
                                actor=body.completed_by, result=dict(data.result),
                                metadata=dict(data.metadata) if data.metadata else None)
    return steps.StepAction(action=body.action_type, reason=body.reason, actor=body.resolved_by)


async def resolve_step(req: RestRequest) -> Reply:
    task_uuid, step_uuid = _task(req), _step(req)
    view = await steps.resolve_step(req.ctx, task_uuid, step_uuid, step_action(req.body.root),
                                    principal=req.principal)
    return Reply(status=200, body=shape.resolved_step(view))


async def step_audit(req: RestRequest) -> Reply:
    view = await steps.step_audit(req.ctx, _task(req), _step(req))
    return Reply(status=200, body=shape.audit_list(view))


_TASK = "/v1/tasks/{task_uuid}"
_STEP = _TASK + "/workflow_steps/{step_uuid}"
_T = ("task_uuid",)
_TS = ("task_uuid", "step_uuid")

ROUTES: tuple[Route, ...] = (
    Route(method="POST", path="/v1/tasks", name="create_task", handler=create_task,
          summary="Create a task (through the ingestion queue)", tag="tasks",
          permission=P.TASKS_CREATE, query=CreateTaskParams, body=TaskRequestBody,
          responses={201: TaskResponse, 202: TaskAccepted}, errors=(404, 409, 413, 422, 503)),
    routes_batch.CREATE_TASKS,
    Route(method="GET", path="/v1/tasks", name="list_tasks", handler=list_tasks,
          summary="List tasks, newest first, with filters", tag="tasks",
          permission=P.TASKS_LIST, query=TaskListParams, responses={200: TaskListResponse}),
    Route(method="GET", path=_TASK, name="get_task", handler=get_task,
          summary="A task with its execution context and steps", tag="tasks",
          permission=P.TASKS_READ, responses={200: TaskResponse}, errors=(404,), uuid_params=_T),
    Route(method="DELETE", path=_TASK, name="cancel_task", handler=cancel_task,
          summary="Cancel a task and its unfinished steps", tag="tasks",
          permission=P.TASKS_CANCEL, query=CancelParams, responses={200: TaskResponse},
          errors=(400, 404), uuid_params=_T),
    Route(method="GET", path=_TASK + "/summary", name="get_task_summary", handler=task_summary,
          summary="A task, its step summaries and its DLQ status", tag="tasks",
          permission=P.TASKS_READ, responses={200: TaskSummaryResponse}, errors=(404,),
          uuid_params=_T),
    Route(method="GET", path=_TASK + "/context", name="get_task_context", handler=task_context,
          summary="A task's context and the results of its steps", tag="tasks",
          permission=P.TASKS_CONTEXT, responses={200: TaskContextView}, errors=(404,),
          uuid_params=_T),
    Route(method="GET", path="/v1/task_requests/{request_id}", name="get_task_request",
          handler=request_outcome, summary="What ingestion did with a queued request",
          tag="tasks", permission=P.TASKS_READ, responses={200: TaskRequestOutcomeView},
          errors=(404,)),
    Route(method="GET", path=_TASK + "/workflow_steps", name="list_steps", handler=list_steps,
          summary="The steps of a task with their readiness", tag="steps",
          permission=P.STEPS_READ, responses={200: StepResponseList}, errors=(404,),
          uuid_params=_T),
    Route(method="GET", path=_STEP, name="get_step", handler=get_step,
          summary="One step of a task", tag="steps", permission=P.STEPS_READ,
          responses={200: StepResponse}, errors=(404,), uuid_params=_TS),
    Route(method="PATCH", path=_STEP, name="resolve_step", handler=resolve_step,
          summary="Operator action: reset_for_retry, resolve_manually or complete_manually",
          tag="steps", permission=P.STEPS_RESOLVE, body=StepActionRequest,
          responses={200: ResolvedStepResponse}, errors=(404, 409, 413), uuid_params=_TS),
    Route(method="GET", path=_STEP + "/audit", name="get_step_audit", handler=step_audit,
          summary="Results recorded for a step, newest first", tag="steps",
          permission=P.STEPS_READ, responses={200: StepAuditList}, errors=(404,),
          uuid_params=_TS),
)
