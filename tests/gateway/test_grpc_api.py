"""Every tasker.v1 RPC over gRPC (grpclib client through trio-asyncio): success and errors."""

from __future__ import annotations

import trio
from grpclib.const import Cardinality, Status
from grpclib.reflection.v1.reflection_grpc import ServerReflectionStub
from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest
from trio_asyncio import aio_as_trio

from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import Gateway, grpc_client, running_gateway
from tests.gateway.helpers import (
    create_with_trailers,
    fail_step,
    grpc_fails,
    linear_request,
    open_dlq_entry,
    step_uuids,
    until,
    wait_state,
)

MISSING = "00000000-0000-7000-8000-000000000000"


async def test_task_and_step_rpcs_over_a_completed_task(pipeline_gw: Gateway) -> None:
    gw = pipeline_gw
    async with grpc_client(gw.grpc_port) as rpc:
        created = await rpc(rpc.tasks.create_task, linear_request(3, tags=["grpc"]))
        assert created.status is pb.CreateTaskStatus.CREATED
        assert created.task.name == "linear_workflow" and created.task.total_steps == 4
        task = created.task_uuid
        await wait_state(gw, task, "complete")

        got = (await rpc(rpc.tasks.get_task, pb.GetTaskRequest(task_uuid=task))).task
        assert got.status is pb.TaskState.COMPLETE
        assert got.completion_percentage == 100.0 and got.tags == ["grpc"]
        assert [s.name for s in got.steps] == [f"linear_step_{i}" for i in range(1, 5)]

        listed = await rpc(rpc.tasks.list_tasks, pb.ListTasksRequest(
            namespace="examples", status=pb.TaskState.COMPLETE,
            pagination=pb.PaginationRequest(page=1, per_page=10)))
        assert [t.task_uuid for t in listed.tasks] == [task]
        assert listed.pagination.total_count == 1
        empty = await rpc(rpc.tasks.list_tasks, pb.ListTasksRequest(
            status=pb.TaskState.ERROR, sort_direction=pb.SortDirection.ASC))
        assert empty.tasks == [] and empty.pagination.total_pages == 0

        context = await rpc(rpc.tasks.get_task_context, pb.GetTaskContextRequest(task_uuid=task))
        assert context.context.to_dict() == {"even_number": 3.0}
        assert context.step_results.to_dict()["linear_step_4"]["result"]["value"] == 3.0 ** 16

        summary = (await rpc(rpc.tasks.get_task_summary,
                             pb.GetTaskSummaryRequest(task_uuid=task))).summary
        assert summary.execution_context.execution_status is pb.TaskExecutionStatus.ALL_COMPLETE
        assert summary.step_summaries[1].dependencies == ["linear_step_1"]
        assert summary.dlq_status.in_dlq is False

        updates = await rpc.stream(rpc.tasks.stream_task_status,
                                   pb.StreamTaskStatusRequest(task_uuid=task))
        assert [u.update_type for u in updates] == [
            pb.StatusUpdateType.TASK_STATE_CHANGE, pb.StatusUpdateType.TASK_COMPLETE]

        steps = (await rpc(rpc.steps.list_steps, pb.ListStepsRequest(task_uuid=task))).steps
        assert all(s.current_state is pb.StepState.COMPLETE for s in steps)
        first = steps[0]
        step = (await rpc(rpc.steps.get_step, pb.GetStepRequest(
            task_uuid=task, step_uuid=first.workflow_step_uuid))).step
        assert step.name == "linear_step_1" and step.results.to_dict()["success"] is True
        audit = await rpc(rpc.steps.get_step_audit, pb.GetStepAuditRequest(
            task_uuid=task, step_uuid=first.workflow_step_uuid))
        assert len(audit.records) == 1 and audit.records[0].success
        assert audit.records[0].to_state is pb.StepState.ENQUEUED_FOR_ORCHESTRATION

        await grpc_fails(rpc(rpc.tasks.cancel_task, pb.CancelTaskRequest(task_uuid=task)),
                         Status.FAILED_PRECONDITION)


async def test_create_task_outcomes(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        first = await rpc(rpc.tasks.create_task, linear_request(5))
        status, message, trailers = await create_with_trailers(rpc, linear_request(5))
        assert status is Status.ALREADY_EXISTS
        assert trailers["existing-task-uuid"] == first.task.task_uuid in message
        await grpc_fails(rpc(rpc.tasks.create_task, pb.CreateTaskRequest(task=pb.TaskRequest(
            name="nope", namespace="examples", version="1.0.0"))), Status.NOT_FOUND)
        invalid = await grpc_fails(rpc(rpc.tasks.create_task, pb.CreateTaskRequest(
            task=pb.TaskRequest(name="linear_workflow", namespace="examples", version="1.0.0",
                                context=Struct.from_dict({"even_number": "x"})))),
            Status.INVALID_ARGUMENT)
        assert "even_number" in (invalid.message or "")
        await grpc_fails(rpc(rpc.tasks.create_task, pb.CreateTaskRequest()),
                         Status.INVALID_ARGUMENT)
        await grpc_fails(rpc(rpc.tasks.create_task, pb.CreateTaskRequest(
            task=pb.TaskRequest(name="x", namespace="bad-namespace"))), Status.INVALID_ARGUMENT)
        accepted = await rpc(rpc.tasks.create_task, linear_request(6, priority=5), )
        assert accepted.task.priority == 5
        queued = await rpc(rpc.tasks.create_task, pb.CreateTaskRequest(
            task=linear_request(7).task, wait=False, request_id="client-chosen-1"))
        assert queued.status is pb.CreateTaskStatus.ACCEPTED
        assert queued.request_id == "client-chosen-1" and queued.task_uuid is None
        await grpc_fails(rpc(rpc.tasks.create_task, pb.CreateTaskRequest(
            task=linear_request(8).task, request_id="bad id")), Status.INVALID_ARGUMENT)

        async def traced() -> dict[str, str]:
            async with rpc.channel.request("/tasker.v1.HealthService/CheckHealth",
                                           Cardinality.UNARY_UNARY, pb.CheckHealthRequest,
                                           pb.CheckHealthResponse,
                                           metadata={"x-request-id": "trace-7"}) as stream:
                await stream.send_message(pb.CheckHealthRequest(), end=True)
                await stream.recv_message()
                await stream.recv_trailing_metadata()
                return dict(stream.trailing_metadata or {})

        assert (await aio_as_trio(traced)())["x-request-id"] == "trace-7"


async def test_operator_actions_and_the_status_stream(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        created = await rpc(rpc.tasks.create_task, linear_request(2))
        task = created.task_uuid
        steps = step_uuids(gw, task)
        updates: list[pb.TaskStatusUpdate] = []

        async def watch() -> None:
            updates.extend(await rpc.stream(rpc.tasks.stream_task_status,
                                            pb.StreamTaskStatusRequest(task_uuid=task,
                                                                       include_steps=True)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await trio.sleep(0.2)
            fail_step(gw, steps["linear_step_1"])
            await grpc_fails(rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
                task_uuid=task, step_uuid=steps["linear_step_2"],
                action=pb.ResolutionStrategy.RESET_FOR_RETRY, reason="x")),
                Status.FAILED_PRECONDITION)
            reset = await rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
                task_uuid=task, step_uuid=steps["linear_step_1"],
                action=pb.ResolutionStrategy.RESET_FOR_RETRY, reason="retry it", actor="ops"))
            assert reset.previous_state is pb.StepState.ERROR
            assert reset.step.current_state is pb.StepState.ENQUEUED and reset.step.attempts == 0
            resolved = await rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
                task_uuid=task, step_uuid=steps["linear_step_1"],
                action=pb.ResolutionStrategy.RESOLVE_MANUALLY, reason="done by hand"))
            assert resolved.step.current_state is pb.StepState.RESOLVED_MANUALLY
            for name in ("linear_step_2", "linear_step_3", "linear_step_4"):
                done = await rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
                    task_uuid=task, step_uuid=steps[name],
                    action=pb.ResolutionStrategy.COMPLETE_MANUALLY, reason="manual",
                    result=Struct.from_dict({"value": 1}),
                    metadata=Struct.from_dict({"ticket": "OPS-1"})))
                assert done.step.results.to_dict()["result"] == {"value": 1.0}

            async def streamed() -> bool:
                return bool(updates)

            await until(streamed)
        kinds = [u.update_type for u in updates]
        assert kinds[0] is pb.StatusUpdateType.TASK_STATE_CHANGE
        assert kinds[-1] is pb.StatusUpdateType.TASK_COMPLETE
        step_changes = [(u.step_name, u.step_state) for u in updates
                        if u.update_type is pb.StatusUpdateType.STEP_STATE_CHANGE]
        assert ("linear_step_1", pb.StepState.ERROR) in step_changes
        assert ("linear_step_4", pb.StepState.COMPLETE) in step_changes
        states = [u.task_state for u in updates
                  if u.update_type is pb.StatusUpdateType.TASK_STATE_CHANGE]
        assert states[-1] is pb.TaskState.COMPLETE


async def test_step_and_task_errors(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        task = (await rpc(rpc.tasks.create_task, linear_request(9))).task_uuid
        for call in (
            rpc(rpc.tasks.get_task, pb.GetTaskRequest(task_uuid=MISSING)),
            rpc(rpc.tasks.get_task_context, pb.GetTaskContextRequest(task_uuid=MISSING)),
            rpc(rpc.tasks.get_task_summary, pb.GetTaskSummaryRequest(task_uuid=MISSING)),
            rpc(rpc.tasks.cancel_task, pb.CancelTaskRequest(task_uuid=MISSING)),
            rpc(rpc.steps.list_steps, pb.ListStepsRequest(task_uuid=MISSING)),
            rpc(rpc.steps.get_step, pb.GetStepRequest(task_uuid=task, step_uuid=MISSING)),
            rpc(rpc.steps.get_step_audit, pb.GetStepAuditRequest(task_uuid=task,
                                                                 step_uuid=MISSING)),
            rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
                task_uuid=task, step_uuid=MISSING,
                action=pb.ResolutionStrategy.RESOLVE_MANUALLY, reason="r")),
            rpc.stream(rpc.tasks.stream_task_status,
                       pb.StreamTaskStatusRequest(task_uuid=MISSING)),
        ):
            await grpc_fails(call, Status.NOT_FOUND)
        bad = await grpc_fails(rpc(rpc.tasks.get_task, pb.GetTaskRequest(task_uuid="nope")),
                               Status.INVALID_ARGUMENT)
        assert "task_uuid" in (bad.message or "")
        await grpc_fails(rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
            task_uuid=task, step_uuid=MISSING)), Status.INVALID_ARGUMENT)
        await grpc_fails(rpc(rpc.tasks.list_tasks, pb.ListTasksRequest(
            pagination=pb.PaginationRequest(per_page=500))), Status.INVALID_ARGUMENT)
        cancelled = await rpc(rpc.tasks.cancel_task, pb.CancelTaskRequest(task_uuid=task,
                                                                          reason="no longer"))
        assert cancelled.task.status is pb.TaskState.CANCELLED
        steps = step_uuids(gw, task)
        await grpc_fails(rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
            task_uuid=task, step_uuid=steps["linear_step_1"],
            action=pb.ResolutionStrategy.COMPLETE_MANUALLY, reason="late")),
            Status.FAILED_PRECONDITION)


async def test_template_health_analytics_rpcs(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        listed = await rpc(rpc.templates.list_templates, pb.ListTemplatesRequest(
            namespace="examples"))
        assert "linear_workflow" in {t.name for t in listed.templates}
        assert listed.namespaces == ["examples"]
        detail = (await rpc(rpc.templates.get_template, pb.GetTemplateRequest(
            namespace="examples", name="linear_workflow", version="1.0.0"))).template
        assert [s.name for s in detail.steps][:2] == ["linear_step_1", "linear_step_2"]
        assert detail.input_schema.to_dict()["required"] == ["even_number"]
        await grpc_fails(rpc(rpc.templates.get_template, pb.GetTemplateRequest(
            namespace="examples", name="nope", version="1")), Status.NOT_FOUND)
        await grpc_fails(rpc(rpc.templates.list_templates, pb.ListTemplatesRequest(
            namespace="no such")), Status.INVALID_ARGUMENT)

        assert (await rpc(rpc.health.check_health, pb.CheckHealthRequest())).status == "ok"
        live = await rpc(rpc.health.check_liveness, pb.CheckLivenessRequest())
        assert live.status == "alive"
        ready = await rpc(rpc.health.check_readiness, pb.CheckReadinessRequest())
        assert ready.ready and ready.status == "ready"
        detailed = await rpc(rpc.health.check_detailed_health, pb.CheckDetailedHealthRequest())
        assert detailed.state is pb.HealthState.HEALTHY and detailed.uptime_seconds >= 0
        assert {q.queue_name for q in detailed.queue_depths} >= {"orchestration_task_requests"}

        metrics = (await rpc(rpc.analytics.get_performance_metrics,
                             pb.GetPerformanceMetricsRequest(hours=2))).metrics
        assert metrics.total_tasks == 0 and metrics.system_health_score >= 0
        analysis = (await rpc(rpc.analytics.get_bottleneck_analysis,
                              pb.GetBottleneckAnalysisRequest(limit=5, min_executions=0))
                    ).analysis
        assert analysis.resource_utilization.system_health.total_tasks == 0
        await grpc_fails(rpc(rpc.analytics.get_bottleneck_analysis,
                             pb.GetBottleneckAnalysisRequest(limit=0)), Status.INVALID_ARGUMENT)
        await grpc_fails(rpc(rpc.config.get_config, pb.GetConfigRequest()), Status.NOT_FOUND)


async def test_dlq_rpcs(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        task = (await rpc(rpc.tasks.create_task, linear_request(11))).task_uuid
        entry = open_dlq_entry(gw, task)
        listed = await rpc(rpc.dlq.list_entries, pb.ListDlqEntriesRequest(
            resolution_status=pb.DlqResolutionStatus.PENDING,
            pagination=pb.OffsetPagination(limit=10)))
        assert [e.dlq_entry_uuid for e in listed.entries] == [entry]
        assert listed.entries[0].dlq_reason is pb.DlqReason.MANUAL_DLQ
        by_task = await rpc(rpc.dlq.get_entry_by_task, pb.GetDlqEntryByTaskRequest(
            task_uuid=task))
        assert by_task.entry.task_snapshot.to_dict()["task_uuid"] == task
        stats = await rpc(rpc.dlq.get_stats, pb.GetDlqStatsRequest())
        assert stats.stats[0].pending == 1
        queue = await rpc(rpc.dlq.get_investigation_queue, pb.GetInvestigationQueueRequest())
        assert queue.entries[0].dlq_entry_uuid == entry
        stale = await rpc(rpc.dlq.get_staleness_monitoring,
                          pb.GetStalenessMonitoringRequest(limit=5))
        assert stale.entries[0].health_status is pb.StalenessHealth.HEALTHY
        updated = await rpc(rpc.dlq.update_investigation, pb.UpdateInvestigationRequest(
            dlq_entry_uuid=entry, resolution_status=pb.DlqResolutionStatus.MANUALLY_RESOLVED,
            resolution_notes="fixed", metadata=Struct.from_dict({"ticket": 7})))
        assert updated.entry.resolution_status is pb.DlqResolutionStatus.MANUALLY_RESOLVED
        assert updated.entry.resolved_by == "anonymous"
        await grpc_fails(rpc(rpc.dlq.update_investigation, pb.UpdateInvestigationRequest(
            dlq_entry_uuid=MISSING, resolution_notes="x")), Status.NOT_FOUND)
        await grpc_fails(rpc(rpc.dlq.get_entry_by_task, pb.GetDlqEntryByTaskRequest(
            task_uuid=MISSING)), Status.NOT_FOUND)
        await grpc_fails(rpc(rpc.dlq.get_investigation_queue,
                             pb.GetInvestigationQueueRequest(limit=5000)),
                         Status.INVALID_ARGUMENT)


async def test_config_rpc_and_reflection(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False,
                               gateway={"config_endpoint_enabled": True}) as gw, \
            grpc_client(gw.grpc_port) as rpc:
        config = await rpc(rpc.config.get_config, pb.GetConfigRequest())
        data = config.config.to_dict()
        assert data["database"]["url"] == "***REDACTED***"
        assert "database.url" in config.redacted_fields and config.environment == "test"

        async def reflect() -> list[str]:
            stub = ServerReflectionStub(rpc.channel)
            async with stub.ServerReflectionInfo.open() as stream:
                await stream.send_message(ServerReflectionRequest(list_services=""))
                services = await stream.recv_message()
                await stream.send_message(ServerReflectionRequest(
                    file_containing_symbol="tasker.v1.TaskService"))
                found = await stream.recv_message()
                await stream.end()
            assert found is not None and services is not None
            assert found.file_descriptor_response.file_descriptor_proto
            return [s.name for s in services.list_services_response.service]

        names = await aio_as_trio(reflect)()
        assert "tasker.v1.TaskService" in names and "grpc.health.v1.Health" in names
