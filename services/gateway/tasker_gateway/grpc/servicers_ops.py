"""TemplateService, HealthService, AnalyticsService, DlqService and ConfigService."""

from __future__ import annotations

from datetime import UTC, datetime

from tasker_gateway.context import GatewayContext
from tasker_gateway.grpc import inputs
from tasker_gateway.grpc.bridge import call, principal
from tasker_gateway.grpc.convert import state_name, to_pb
from tasker_gateway.usecases import operations, system, templates
from tasker_gateway.usecases.inputs import parse_uuid
from tasker_shared.contracts.generated.tasker import v1 as pb


class TemplateService(pb.TemplateServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def list_templates(self, message: pb.ListTemplatesRequest
                             ) -> pb.ListTemplatesResponse:
        async def run() -> pb.ListTemplatesResponse:
            view = await templates.templates(self.ctx, message.namespace or None)
            return to_pb(view, pb.ListTemplatesResponse)

        return await call(run)

    async def get_template(self, message: pb.GetTemplateRequest) -> pb.GetTemplateResponse:
        async def run() -> pb.GetTemplateResponse:
            view = await templates.template(self.ctx, message.namespace, message.name,
                                            message.version)
            return pb.GetTemplateResponse(template=to_pb(view, pb.TemplateDetail))

        return await call(run)


class HealthService(pb.HealthServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def check_health(self, message: pb.CheckHealthRequest) -> pb.CheckHealthResponse:
        return pb.CheckHealthResponse(status="ok", timestamp=datetime.now(UTC))

    async def check_liveness(self, message: pb.CheckLivenessRequest
                             ) -> pb.CheckLivenessResponse:
        return pb.CheckLivenessResponse(status="alive", timestamp=datetime.now(UTC))

    async def check_readiness(self, message: pb.CheckReadinessRequest
                              ) -> pb.CheckReadinessResponse:
        async def run() -> pb.CheckReadinessResponse:
            return to_pb(await system.readiness(self.ctx), pb.CheckReadinessResponse)

        return await call(run)

    async def check_detailed_health(self, message: pb.CheckDetailedHealthRequest
                                    ) -> pb.CheckDetailedHealthResponse:
        async def run() -> pb.CheckDetailedHealthResponse:
            view = await system.detailed(self.ctx)
            return to_pb(view, pb.CheckDetailedHealthResponse)

        return await call(run)


class AnalyticsService(pb.AnalyticsServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def get_performance_metrics(self, message: pb.GetPerformanceMetricsRequest
                                      ) -> pb.GetPerformanceMetricsResponse:
        async def run() -> pb.GetPerformanceMetricsResponse:
            view = await operations.performance(self.ctx, message.hours or 24)
            return pb.GetPerformanceMetricsResponse(metrics=to_pb(view, pb.PerformanceMetrics))

        return await call(run)

    async def get_bottleneck_analysis(self, message: pb.GetBottleneckAnalysisRequest
                                      ) -> pb.GetBottleneckAnalysisResponse:
        async def run() -> pb.GetBottleneckAnalysisResponse:
            limit = 10 if message.limit is None else message.limit
            minimum = 5 if message.min_executions is None else message.min_executions
            view = await operations.bottlenecks(self.ctx, limit, minimum)
            return pb.GetBottleneckAnalysisResponse(analysis=to_pb(view, pb.BottleneckAnalysis))

        return await call(run)


class DlqService(pb.DlqServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def list_entries(self, message: pb.ListDlqEntriesRequest
                           ) -> pb.ListDlqEntriesResponse:
        async def run() -> pb.ListDlqEntriesResponse:
            page = message.pagination
            status = message.resolution_status
            view = await operations.dlq_entries(
                self.ctx, resolution_status=state_name(status) if status else None,
                limit=(page.limit if page and page.limit else 50),
                offset=(page.offset if page else 0))
            return to_pb(view, pb.ListDlqEntriesResponse)

        return await call(run)

    async def get_entry_by_task(self, message: pb.GetDlqEntryByTaskRequest
                                ) -> pb.GetDlqEntryByTaskResponse:
        async def run() -> pb.GetDlqEntryByTaskResponse:
            view = await operations.dlq_entry_by_task(
                self.ctx, parse_uuid(message.task_uuid, "task_uuid"))
            return pb.GetDlqEntryByTaskResponse(entry=to_pb(view, pb.DlqEntry))

        return await call(run)

    async def update_investigation(self, message: pb.UpdateInvestigationRequest
                                   ) -> pb.UpdateInvestigationResponse:
        caller = principal()

        async def run() -> pb.UpdateInvestigationResponse:
            entry = parse_uuid(message.dlq_entry_uuid, "dlq_entry_uuid")
            view = await operations.dlq_update(self.ctx, entry, inputs.dlq_update(message),
                                               principal=caller)
            return pb.UpdateInvestigationResponse(entry=to_pb(view, pb.DlqEntry))

        return await call(run)

    async def get_stats(self, message: pb.GetDlqStatsRequest) -> pb.GetDlqStatsResponse:
        async def run() -> pb.GetDlqStatsResponse:
            return to_pb(await operations.dlq_stats(self.ctx), pb.GetDlqStatsResponse)

        return await call(run)

    async def get_investigation_queue(self, message: pb.GetInvestigationQueueRequest
                                      ) -> pb.GetInvestigationQueueResponse:
        async def run() -> pb.GetInvestigationQueueResponse:
            limit = 50 if message.limit is None else message.limit
            view = await operations.dlq_investigation_queue(self.ctx, limit)
            return to_pb(view, pb.GetInvestigationQueueResponse)

        return await call(run)

    async def get_staleness_monitoring(self, message: pb.GetStalenessMonitoringRequest
                                       ) -> pb.GetStalenessMonitoringResponse:
        async def run() -> pb.GetStalenessMonitoringResponse:
            limit = 50 if message.limit is None else message.limit
            view = await operations.dlq_staleness(self.ctx, limit)
            return to_pb(view, pb.GetStalenessMonitoringResponse)

        return await call(run)


class ConfigService(pb.ConfigServiceBase):  # type: ignore[misc]
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def get_config(self, message: pb.GetConfigRequest) -> pb.GetConfigResponse:
        async def run() -> pb.GetConfigResponse:
            return to_pb(system.config(self.ctx), pb.GetConfigResponse)

        return await call(run)
