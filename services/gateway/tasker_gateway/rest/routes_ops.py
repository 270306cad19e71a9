"""REST routes for templates, analytics, the DLQ, configuration, health and metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tasker_gateway import permissions as P
from tasker_gateway.models.core_health import (
    DetailedHealthResponse,
    HealthResponse,
    ReadinessResponse,
)
from tasker_gateway.models.core_ops import (
    DlqEntry,
    DlqEntryList,
    DlqStatsList,
    InvestigationQueue,
    PerformanceMetrics,
    StalenessList,
    TemplateDetail,
    TemplateListResponse,
    UpdateInvestigationResponse,
)
from tasker_gateway.models.operations import BottleneckAnalysisView, DlqUpdateBody
from tasker_gateway.models.system import ConfigView
from tasker_gateway.rest import shapes_ops as shape
from tasker_gateway.rest.params import (
    BottleneckParams,
    DlqListParams,
    LimitParams,
    PerformanceParams,
    TemplateListParams,
)
from tasker_gateway.rest.spec import Reply, RestRequest, Route
from tasker_gateway.usecases import operations, system, templates
from tasker_gateway.usecases.inputs import parse_uuid
from tasker_shared.runtime.metrics import REGISTRY


async def list_templates(req: RestRequest) -> Reply:
    q: TemplateListParams = req.query
    view = await templates.templates(req.ctx, q.namespace)
    return Reply(status=200, body=shape.template_list(view))


async def get_template(req: RestRequest) -> Reply:
    p = req.path
    view = await templates.template(req.ctx, p["namespace"], p["name"], p["version"])
    return Reply(status=200, body=shape.template_detail(view))


async def performance(req: RestRequest) -> Reply:
    q: PerformanceParams = req.query
    view = await operations.performance(req.ctx, q.hours)
    return Reply(status=200, body=shape.performance(view))


async def bottlenecks(req: RestRequest) -> Reply:
    q: BottleneckParams = req.query
    return Reply(status=200, body=await operations.bottlenecks(req.ctx, q.limit,
                                                               q.min_executions))


async def dlq_list(req: RestRequest) -> Reply:
    q: DlqListParams = req.query
    view = await operations.dlq_entries(
        req.ctx, resolution_status=q.resolution_status.value if q.resolution_status else None,
        limit=q.limit, offset=q.offset)
    return Reply(status=200, body=shape.dlq_entries(view))


async def dlq_by_task(req: RestRequest) -> Reply:
    task_uuid = parse_uuid(req.path["task_uuid"], "task_uuid")
    view = await operations.dlq_entry_by_task(req.ctx, task_uuid)
    return Reply(status=200, body=shape.dlq_entry(view))


async def dlq_update(req: RestRequest) -> Reply:
    entry = parse_uuid(req.path["dlq_entry_uuid"], "dlq_entry_uuid")
    view = await operations.dlq_update(req.ctx, entry, req.body, principal=req.principal)
    return Reply(status=200, body=shape.dlq_updated(view))


async def dlq_stats(req: RestRequest) -> Reply:
    return Reply(status=200, body=shape.dlq_stats(await operations.dlq_stats(req.ctx)))


async def dlq_queue(req: RestRequest) -> Reply:
    q: LimitParams = req.query
    view = await operations.dlq_investigation_queue(req.ctx, q.limit)
    return Reply(status=200, body=shape.investigation_queue(view))


async def dlq_staleness(req: RestRequest) -> Reply:
    q: LimitParams = req.query
    view = await operations.dlq_staleness(req.ctx, q.limit)
    return Reply(status=200, body=shape.staleness(view))


async def get_config(req: RestRequest) -> Reply:
    return Reply(status=200, body=system.config(req.ctx))


def _simple(req: RestRequest, status: str) -> Reply:
    return Reply(status=200, body=HealthResponse(
        status=status, timestamp=system.now(), worker_id=req.ctx.runtime.instance_id,
        service="gateway"))


async def health(req: RestRequest) -> Reply:
    return _simple(req, "healthy")


async def live(req: RestRequest) -> Reply:
    return _simple(req, "alive")


async def ready(req: RestRequest) -> Reply:
    view = await system.readiness(req.ctx)
    return Reply(status=200 if view.ready else 503, body=shape.readiness(req.ctx, view))


async def detailed(req: RestRequest) -> Reply:
    view = await system.detailed(req.ctx)
    return Reply(status=503 if view.state == "unhealthy" else 200,
                 body=shape.detailed(req.ctx, view))


async def metrics(req: RestRequest) -> Reply:
    return Reply(status=200, body=generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/v1/templates", name="list_templates", handler=list_templates,
          summary="Registered task templates", tag="templates", permission=P.TEMPLATES_READ,
          query=TemplateListParams, responses={200: TemplateListResponse}),
    Route(method="GET", path="/v1/templates/{namespace}/{name}/{version}", name="get_template",
          handler=get_template, summary="One task template", tag="templates",
          permission=P.TEMPLATES_READ, responses={200: TemplateDetail}, errors=(404,)),
    Route(method="GET", path="/v1/analytics/performance", name="get_performance_metrics",
          handler=performance, summary="Performance metrics over the last `hours`",
          tag="analytics", permission=P.ANALYTICS_READ, query=PerformanceParams,
          responses={200: PerformanceMetrics}),
    Route(method="GET", path="/v1/analytics/bottlenecks", name="get_bottleneck_analysis",
          handler=bottlenecks, summary="Slowest steps and tasks, with recommendations",
          tag="analytics", permission=P.ANALYTICS_READ, query=BottleneckParams,
          responses={200: BottleneckAnalysisView}),
    Route(method="GET", path="/v1/dlq", name="list_dlq_entries", handler=dlq_list,
          summary="DLQ entries, newest first", tag="dlq", permission=P.DLQ_READ,
          query=DlqListParams, responses={200: DlqEntryList}),
    Route(method="GET", path="/v1/dlq/task/{task_uuid}", name="get_dlq_entry_by_task",
          handler=dlq_by_task, summary="The latest DLQ entry of a task, with its snapshot",
          tag="dlq", permission=P.DLQ_READ, responses={200: DlqEntry}, errors=(404,),
          uuid_params=("task_uuid",)),
    Route(method="PATCH", path="/v1/dlq/entry/{dlq_entry_uuid}", name="update_dlq_entry",
          handler=dlq_update, summary="Record an investigation's progress or resolution",
          tag="dlq", permission=P.DLQ_UPDATE, body=DlqUpdateBody,
          responses={200: UpdateInvestigationResponse},
          errors=(404, 413), uuid_params=("dlq_entry_uuid",)),
    Route(method="GET", path="/v1/dlq/stats", name="get_dlq_stats", handler=dlq_stats,
          summary="DLQ entries grouped by reason", tag="dlq", permission=P.DLQ_STATS,
          responses={200: DlqStatsList}),
    Route(method="GET", path="/v1/dlq/investigation-queue", name="get_dlq_investigation_queue",
          handler=dlq_queue, summary="Pending DLQ entries, highest priority first", tag="dlq",
          permission=P.DLQ_READ, query=LimitParams, responses={200: InvestigationQueue}),
    Route(method="GET", path="/v1/dlq/staleness", name="get_dlq_staleness",
          handler=dlq_staleness, summary="Unfinished tasks with their staleness health",
          tag="dlq", permission=P.DLQ_READ, query=LimitParams, responses={200: StalenessList}),
    Route(method="GET", path="/config", name="get_config", handler=get_config,
          summary="Effective configuration, secrets redacted (when enabled)", tag="system",
          permission=P.CONFIG_READ, responses={200: ConfigView}, errors=(404,)),
)

HEALTH_ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/health", name="health", handler=health,
          summary="Process is up", tag="health", permission=None,
          responses={200: HealthResponse}),
    Route(method="GET", path="/health/live", name="health_live", handler=live,
          summary="Liveness", tag="health", permission=None, responses={200: HealthResponse}),
    Route(method="GET", path="/health/ready", name="health_ready", handler=ready,
          summary="Readiness (503 when not ready)", tag="health", permission=None,
          responses={200: ReadinessResponse, 503: ReadinessResponse}),
    Route(method="GET", path="/health/detailed", name="health_detailed", handler=detailed,
          summary="Readiness plus pool, queue depths and backpressure", tag="health",
          permission=None, responses={200: DetailedHealthResponse,
                                           503: DetailedHealthResponse}),
    Route(method="GET", path="/metrics", name="metrics", handler=metrics,
          summary="Prometheus metrics", tag="health", permission=None,
          responses={200: "text/plain"}, content_type="text/plain"),
)
