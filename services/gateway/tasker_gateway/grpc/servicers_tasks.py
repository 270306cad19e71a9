"""TaskService and StepService: thin adapters from tasker.v1 messages to the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator

from trio_asyncio import trio_as_aio

from tasker_gateway.context import GatewayContext
from tasker_gateway.grpc import batch, inputs
from tasker_gateway.grpc.bridge import call, principal, to_grpc_error
from tasker_gateway.grpc.convert import enum_member, to_pb
from tasker_gateway.models.tasks import TaskView
from tasker_gateway.usecases import create, steps, tasks
from tasker_gateway.usecases.inputs import parse_request_id, parse_uuid
from tasker_gateway.usecases.watch import TaskWatch, open_watch
from tasker_shared.contracts.generated.tasker import v1 as pb


def task_pb(view: TaskView) -> pb.Task:
    return to_pb(view, pb.Task)


class TaskService(pb.TaskServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def create_task(self, message: pb.CreateTaskRequest) -> pb.CreateTaskResponse:
        requester = principal().subject

        async def run() -> pb.CreateTaskResponse:
            body = inputs.task_request(message.task, context_json=message.context_json)
            timeout = message.wait_timeout_ms / 1000 if message.wait_timeout_ms else None
            result = await create.create_task(
                self.ctx, body, requester=requester, wait=message.wait is not False,
                wait_timeout=timeout, request_id=message.request_id or None)
            if result.task is None:
                return pb.CreateTaskResponse(status=pb.CreateTaskStatus.ACCEPTED,
                                             request_id=result.request_id)
            return pb.CreateTaskResponse(
                status=pb.CreateTaskStatus.CREATED, request_id=result.request_id,
                task_uuid=str(result.task.task_uuid), task=task_pb(result.task))

        return await call(run)

    async def create_tasks(self, message: pb.CreateTasksRequest) -> pb.CreateTasksResponse:
        requester = principal().subject
        return await call(batch.create_tasks, self.ctx, message, requester=requester)

    async def get_task(self, message: pb.GetTaskRequest) -> pb.GetTaskResponse:
        async def run() -> pb.GetTaskResponse:
            view = await tasks.get_task(self.ctx, parse_uuid(message.task_uuid, "task_uuid"))
            return pb.GetTaskResponse(task=task_pb(view))

        return await call(run)

    async def list_tasks(self, message: pb.ListTasksRequest) -> pb.ListTasksResponse:
        async def run() -> pb.ListTasksResponse:
            view = await tasks.list_tasks(self.ctx, inputs.list_query(message))
            return to_pb(view, pb.ListTasksResponse)

        return await call(run)

    async def cancel_task(self, message: pb.CancelTaskRequest) -> pb.CancelTaskResponse:
        actor = principal().subject

        async def run() -> pb.CancelTaskResponse:
            view = await tasks.cancel_task(
                self.ctx, parse_uuid(message.task_uuid, "task_uuid"), actor=actor,
                reason=message.reason or None)
            return pb.CancelTaskResponse(task=task_pb(view))

        return await call(run)

    async def get_task_context(self, message: pb.GetTaskContextRequest
                               ) -> pb.GetTaskContextResponse:
        async def run() -> pb.GetTaskContextResponse:
            view = await tasks.task_context(self.ctx, parse_uuid(message.task_uuid, "task_uuid"))
            return to_pb(view, pb.GetTaskContextResponse)

        return await call(run)

    async def get_task_summary(self, message: pb.GetTaskSummaryRequest
                               ) -> pb.GetTaskSummaryResponse:
        async def run() -> pb.GetTaskSummaryResponse:
            view = await tasks.task_summary(self.ctx, parse_uuid(message.task_uuid, "task_uuid"))
            return pb.GetTaskSummaryResponse(summary=to_pb(view, pb.TaskSummary))

        return await call(run)

    async def get_task_request_outcome(self, message: pb.GetTaskRequestOutcomeRequest
                                       ) -> pb.GetTaskRequestOutcomeResponse:
        async def run() -> pb.GetTaskRequestOutcomeResponse:
            found = await tasks.request_outcome(self.ctx, parse_request_id(message.request_id))
            return pb.GetTaskRequestOutcomeResponse(
                outcome=to_pb(found, pb.TaskRequestOutcome))

        return await call(run)

    async def stream_task_status(self, message: pb.StreamTaskStatusRequest
                                 ) -> AsyncIterator[pb.TaskStatusUpdate]:
        async def start() -> TaskWatch:
            task_uuid = parse_uuid(message.task_uuid, "task_uuid")
            return await open_watch(self.ctx, task_uuid, include_steps=message.include_steps)

        watch = await call(start)
        try:
            async for update in trio_as_aio(watch):
                yield to_pb(update, pb.TaskStatusUpdate)
        except Exception as exc:
            raise to_grpc_error(exc) from None
        finally:
            watch.close()


class StepService(pb.StepServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def get_step(self, message: pb.GetStepRequest) -> pb.GetStepResponse:
        async def run() -> pb.GetStepResponse:
            view = await steps.get_step(self.ctx, parse_uuid(message.task_uuid, "task_uuid"),
                                        parse_uuid(message.step_uuid, "step_uuid"))
            return pb.GetStepResponse(step=to_pb(view, pb.Step))

        return await call(run)

    async def list_steps(self, message: pb.ListStepsRequest) -> pb.ListStepsResponse:
        async def run() -> pb.ListStepsResponse:
            views = await steps.list_steps(self.ctx, parse_uuid(message.task_uuid, "task_uuid"))
            return pb.ListStepsResponse(steps=[to_pb(v, pb.Step) for v in views])

        return await call(run)

    async def resolve_step(self, message: pb.ResolveStepRequest) -> pb.ResolveStepResponse:
        caller = principal()

        async def run() -> pb.ResolveStepResponse:
            task_uuid = parse_uuid(message.task_uuid, "task_uuid")
            step_uuid = parse_uuid(message.step_uuid, "step_uuid")
            view = await steps.resolve_step(self.ctx, task_uuid, step_uuid,
                                            inputs.step_action(message, caller.subject),
                                            principal=caller)
            return pb.ResolveStepResponse(
                step=to_pb(view.step, pb.Step),
                previous_state=enum_member(pb.StepState, view.previous_state))

        return await call(run)

    async def get_step_audit(self, message: pb.GetStepAuditRequest) -> pb.GetStepAuditResponse:
        async def run() -> pb.GetStepAuditResponse:
            view = await steps.step_audit(self.ctx, parse_uuid(message.task_uuid, "task_uuid"),
                                          parse_uuid(message.step_uuid, "step_uuid"))
            return to_pb(view, pb.GetStepAuditResponse)

        return await call(run)
