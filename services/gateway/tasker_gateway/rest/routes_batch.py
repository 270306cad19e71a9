"""REST batch create: POST /v1/tasks/batch, N task requests in one round trip."""

from __future__ import annotations

import json
from typing import Any

from tasker_gateway import permissions as P
from tasker_gateway.models.batch import (
    BatchTaskRequest,
    CreateTasksBody,
    CreateTasksItemResult,
    CreateTasksParams,
    CreateTasksResponse,
)
from tasker_gateway.rest import shapes_tasks as shape
from tasker_gateway.rest.spec import Reply, RestRequest, Route
from tasker_gateway.usecases import create_batch
from tasker_gateway.usecases.create_batch import BatchItem, ItemResult
from tasker_gateway.usecases.inputs import validated
from tasker_shared.errors import TaskerError


def batch_item(index: int, raw: BatchTaskRequest | dict[str, Any]) -> BatchItem:
    """A valid item as it is; for any other, the error validating it alone reports."""
    if isinstance(raw, BatchTaskRequest):
        return BatchItem(body=raw, request_id=raw.request_id)
    given = raw.get("request_id")
    rid = given if isinstance(given, str) else None
    try:
        body = validated(lambda: BatchTaskRequest.model_validate_json(json.dumps(raw),
                                                                      strict=True),
                         where=f"tasks[{index}]")
    except TaskerError as exc:
        return BatchItem(body=None, request_id=rid, error=exc)
    return BatchItem(body=body, request_id=body.request_id)


def item_result(result: ItemResult) -> CreateTasksItemResult:
    return CreateTasksItemResult(
        index=result.index, outcome=result.outcome, request_id=result.request_id,
        task_uuid=result.task_uuid,
        task=shape.task_response(result.task) if result.task is not None else None,
        existing_task_uuid=result.existing_task_uuid, reason=result.reason,
        error_code=result.error_code)


async def create_tasks(req: RestRequest) -> Reply:
    q: CreateTasksParams = req.query
    body: CreateTasksBody = req.body
    gateway = req.ctx.settings.gateway
    create_batch.check_batch_size(gateway, len(body.tasks))
    wait = q.wait_timeout_ms / 1000 if q.wait_timeout_ms else gateway.create_wait_timeout_seconds
    results = await create_batch.create_tasks(  # answer "accepted" rather than time out
        req.ctx, [batch_item(i, raw) for i, raw in enumerate(body.tasks)],
        requester=req.principal.subject, wait=q.wait,
        wait_timeout=min(wait, gateway.request_timeout_seconds * 0.8),
        include_tasks=q.include_tasks)
    return Reply(status=200, body=CreateTasksResponse(results=[item_result(r) for r in results]))


CREATE_TASKS = Route(
    method="POST", path="/v1/tasks/batch", name="create_tasks", handler=create_tasks,
    summary="Create many tasks in one round trip, each item answered on its own", tag="tasks",
    permission=P.TASKS_CREATE, query=CreateTasksParams, body=CreateTasksBody,
    responses={200: CreateTasksResponse}, errors=(413, 503))
