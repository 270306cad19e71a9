"""CreateTasks on gRPC: the request's items read one by one (a bad item is answered on its
own), the use case's results as CreateTasksResult messages."""

from __future__ import annotations

from tasker_gateway.context import GatewayContext
from tasker_gateway.grpc import inputs
from tasker_gateway.grpc.convert import to_pb
from tasker_gateway.models.batch import BatchOutcome
from tasker_gateway.usecases import create_batch
from tasker_gateway.usecases.create_batch import BatchItem, ItemResult
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.errors import TaskerError

_OUTCOMES = {BatchOutcome.CREATED: pb.CreateTaskOutcome.CREATED,
             BatchOutcome.ACCEPTED: pb.CreateTaskOutcome.ACCEPTED,
             BatchOutcome.DUPLICATE: pb.CreateTaskOutcome.DUPLICATE,
             BatchOutcome.INVALID: pb.CreateTaskOutcome.INVALID}


def batch_item(message: pb.CreateTasksItem) -> BatchItem:
    rid = message.request_id or None
    try:
        return BatchItem(body=inputs.task_request(message.task, context_json=message.context_json),
                         request_id=rid)
    except TaskerError as exc:
        return BatchItem(body=None, request_id=rid, error=exc)


def result_pb(result: ItemResult) -> pb.CreateTasksResult:
    return pb.CreateTasksResult(
        index=result.index, outcome=_OUTCOMES[result.outcome],
        request_id=result.request_id or "",
        task_uuid=str(result.task_uuid) if result.task_uuid else None,
        task=to_pb(result.task, pb.Task) if result.task is not None else None,
        existing_task_uuid=str(result.existing_task_uuid) if result.existing_task_uuid
        else None,
        reason=result.reason, error_code=result.error_code)


async def create_tasks(ctx: GatewayContext, message: pb.CreateTasksRequest, *, requester: str
                       ) -> pb.CreateTasksResponse:
    create_batch.check_batch_size(ctx.settings.gateway, len(message.items))
    timeout = message.wait_timeout_ms / 1000 if message.wait_timeout_ms else None
    results = await create_batch.create_tasks(
        ctx, [batch_item(item) for item in message.items], requester=requester,
        wait=message.wait is not False, wait_timeout=timeout,
        include_tasks=message.include_tasks is True)
    return pb.CreateTasksResponse(results=[result_pb(r) for r in results])
