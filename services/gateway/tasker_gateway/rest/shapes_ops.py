"""Template, analytics, DLQ and health views re-shaped as tasker-core's REST bodies
(models/core_ops.py, models/core_health.py)."""

from __future__ import annotations

from collections import Counter

from tasker_gateway.context import GatewayContext
from tasker_gateway.models.core_health import (
    DetailedHealthChecks,
    DetailedHealthResponse,
    HealthCheck,
    HealthInfo,
    ReadinessChecks,
    ReadinessResponse,
)
from tasker_gateway.models.core_ops import (
    DlqEntry,
    DlqEntryList,
    DlqInvestigationQueueEntry,
    DlqReasonName,
    DlqResolutionName,
    DlqStats,
    DlqStatsList,
    InvestigationQueue,
    NamespaceSummary,
    PerformanceMetrics,
    StalenessList,
    StalenessMonitoring,
    StepDefinition,
    TemplateDetail,
    TemplateListResponse,
    TemplateSummary,
    UpdateInvestigationResponse,
    pascal,
)
from tasker_gateway.models.operations import (
    DlqEntryListView,
    DlqEntryView,
    DlqStatsView,
    InvestigationQueueView,
    PerformanceMetricsView,
    StalenessView,
)
from tasker_gateway.models.system import (
    DetailedHealthView,
    HealthCheckView,
    HealthState,
    ReadinessView,
)
from tasker_gateway.models.templates import TemplateDetailView, TemplateListView
from tasker_gateway.rest.shapes_tasks import build
from tasker_gateway.usecases.system import VERSION


def template_list(view: TemplateListView) -> TemplateListResponse:
    counts = Counter(t.namespace for t in view.templates)
    return build(TemplateListResponse,
                 namespaces=[build(NamespaceSummary, name=n, description=None,
                                   template_count=counts[n]) for n in view.namespaces],
                 templates=[build(TemplateSummary, t) for t in view.templates],
                 total_count=len(view.templates))


def template_detail(view: TemplateDetailView) -> TemplateDetail:
    schemas = {s.get("name"): s.get("result_schema")
               for s in view.configuration.get("steps", ()) if isinstance(s, dict)}
    steps = []
    for step in view.steps:
        schema = schemas.get(step.name)
        steps.append(build(StepDefinition, step, default_retryable=step.retryable,
                           default_max_attempts=step.max_attempts,
                           result_schema=schema if isinstance(schema, dict) else None))
    return build(TemplateDetail, view, steps=steps)


def performance(view: PerformanceMetricsView) -> PerformanceMetrics:
    return build(PerformanceMetrics, view, tasks_per_hour=round(view.tasks_per_hour),
                 steps_per_hour=round(view.steps_per_hour),
                 analysis_period_start=view.analysis_period_start.isoformat(),
                 calculated_at=view.calculated_at.isoformat())


def dlq_entry(view: DlqEntryView) -> DlqEntry:
    return build(DlqEntry, view, dlq_reason=DlqReasonName(pascal(view.dlq_reason.value)),
                 resolution_status=DlqResolutionName(pascal(view.resolution_status.value)),
                 metadata=view.metadata)


def dlq_entries(view: DlqEntryListView) -> DlqEntryList:
    return DlqEntryList.model_construct([dlq_entry(e) for e in view.entries])


def dlq_updated(view: DlqEntryView) -> UpdateInvestigationResponse:
    return build(UpdateInvestigationResponse, success=True,
                 message="DLQ investigation updated", dlq_entry_uuid=view.dlq_entry_uuid,
                 entry=dlq_entry(view))


def dlq_stats(view: DlqStatsView) -> DlqStatsList:
    return DlqStatsList.model_construct([
        build(DlqStats, s, dlq_reason=DlqReasonName(pascal(s.dlq_reason.value)))
        for s in view.stats])


def investigation_queue(view: InvestigationQueueView) -> InvestigationQueue:
    return InvestigationQueue.model_construct([
        build(DlqInvestigationQueueEntry, e,
              dlq_reason=DlqReasonName(pascal(e.dlq_reason.value)), current_state=None,
              time_in_state_minutes=None) for e in view.entries])


def staleness(view: StalenessView) -> StalenessList:
    return StalenessList.model_construct([
        build(StalenessMonitoring, e, time_in_state_minutes=int(e.time_in_state_minutes),
              task_age_minutes=int(e.task_age_minutes)) for e in view.entries])


# Which of Tasker's checks stand for each of tasker-core's.
_CORE_CHECKS = {
    "web_database": ("database",),
    "orchestration_database": ("database",),
    "circuit_breaker": ("circuit_breakers",),
    "orchestration_system": ("state", "listener"),
    "command_processor": ("consumers", "failing_queues", "saturated_channels"),
}
_RANK = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}


def _check(view: HealthCheckView) -> HealthCheck:
    return build(HealthCheck, status=view.state, message=view.message, duration_ms=0)


def _combined(checks: dict[str, HealthCheckView], names: tuple[str, ...]) -> HealthCheck:
    found = [checks[n] for n in names if n in checks]
    if not found:
        return build(HealthCheck, status=HealthState.HEALTHY, message="ok", duration_ms=0)
    worst = max(found, key=lambda c: _RANK[c.state])
    message = ", ".join(f"{c.name}: {c.message}" for c in found)
    return build(HealthCheck, status=worst.state, message=message, duration_ms=0)


def _core_checks(checks: list[HealthCheckView]) -> dict[str, HealthCheck]:
    by_name = {c.name: c for c in checks}
    out = {name: _combined(by_name, parts) for name, parts in _CORE_CHECKS.items()}
    out.update({c.name: _check(c) for c in checks if c.name not in out})
    return out


def _info(ctx: GatewayContext, checks: list[HealthCheckView]) -> HealthInfo:
    pool = ctx.db.statistics().pool_max
    breaker = next((c for c in checks if c.name == "circuit_breakers"), None)
    state = {HealthState.HEALTHY: "closed", HealthState.DEGRADED: "half_open",
             HealthState.UNHEALTHY: "open"}[breaker.state if breaker else HealthState.HEALTHY]
    return build(HealthInfo, version=VERSION, environment=ctx.settings.environment,
                 operational_state=ctx.runtime.state, web_database_pool_size=pool,
                 orchestration_database_pool_size=pool, circuit_breaker_state=state)


def readiness(ctx: GatewayContext, view: ReadinessView) -> ReadinessResponse:
    return build(ReadinessResponse, view, checks=build(
        ReadinessChecks, **_core_checks(view.checks)), info=_info(ctx, view.checks),
        worker_id=ctx.runtime.instance_id, service="gateway")


def _level(name: str, degraded: bool, message: str) -> HealthCheck:
    status = HealthState.DEGRADED if degraded else HealthState.HEALTHY
    return build(HealthCheck, status=status, message=f"{name}: {message}", duration_ms=0)


def detailed(ctx: GatewayContext, view: DetailedHealthView) -> DetailedHealthResponse:
    checks = _core_checks(view.checks)
    pools = view.pool_utilization
    busiest = max((p.utilization_percent for p in pools), default=0.0)
    checks["pool_utilization"] = _level("database pool", busiest >= 90, f"{busiest}% in use")
    pressure = view.backpressure
    checks["queue_depth"] = _level("queues", pressure.active,
                                   pressure.reason or pressure.queue_depth_tier)
    saturated = "saturated_channels" in {c.name for c in view.checks}
    checks["channel_saturation"] = _level("channels", saturated,
                                          "saturated" if saturated else "ok")
    return build(DetailedHealthResponse, view,
                 checks=build(DetailedHealthChecks, **checks),
                 info=_info(ctx, view.checks), worker_id=ctx.runtime.instance_id,
                 service="gateway")
