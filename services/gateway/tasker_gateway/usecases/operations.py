"""Analytics (cached for `analytics_cache_seconds`) and DLQ investigation use cases."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tasker_gateway.auth import Principal
from tasker_gateway.context import GatewayContext
from tasker_gateway.models.operations import (
    BottleneckAnalysisView,
    DlqEntryListView,
    DlqEntryView,
    DlqReasonStatsView,
    DlqStatsView,
    DlqUpdateBody,
    InvestigationQueueEntryView,
    InvestigationQueueView,
    PerformanceMetricsView,
    StalenessEntryView,
    StalenessView,
)
from tasker_gateway.usecases.inputs import bounded, check_json_input
from tasker_gateway.usecases.views import pick
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError
from tasker_shared.store import analytics, dlq

MAX_HOURS = 24 * 365
MAX_LIMIT = 1000


async def performance(ctx: GatewayContext, hours: int) -> PerformanceMetricsView:
    bounded(hours, "hours", low=1, high=MAX_HOURS)

    async def compute() -> PerformanceMetricsView:
        row = await ctx.db.run(lambda conn: analytics.performance_metrics(conn, hours=hours))
        return PerformanceMetricsView(**row)

    return await ctx.analytics.get(("performance", hours), compute)


async def bottlenecks(ctx: GatewayContext, limit: int, min_executions: int
                      ) -> BottleneckAnalysisView:
    bounded(limit, "limit", low=1, high=MAX_LIMIT)
    bounded(min_executions, "min_executions", low=0, high=1_000_000)
    stats = ctx.db.statistics()
    in_use = max(stats.pool_size - stats.pool_available, 0)
    usage = round(in_use / stats.pool_max, 4) if stats.pool_max else 0.0

    async def compute() -> BottleneckAnalysisView:
        data = await ctx.db.run(lambda conn: analytics.bottleneck_analysis(
            conn, limit=limit, min_executions=min_executions, pool_utilization=usage))
        return BottleneckAnalysisView.model_validate(data)

    return await ctx.analytics.get(("bottlenecks", limit, min_executions), compute)


def _entry(row: dict[str, Any]) -> DlqEntryView:
    return pick(DlqEntryView, row)


async def dlq_entries(ctx: GatewayContext, *, resolution_status: str | None, limit: int,
                      offset: int) -> DlqEntryListView:
    bounded(limit, "limit", low=1, high=MAX_LIMIT)
    bounded(offset, "offset", low=0, high=2**31 - 1)
    rows = await ctx.db.run(lambda conn: dlq.list_entries(
        conn, resolution_status=resolution_status, limit=limit, offset=offset))
    return DlqEntryListView(entries=[_entry(r) for r in rows])


async def dlq_entry_by_task(ctx: GatewayContext, task_uuid: UUID) -> DlqEntryView:
    row = await ctx.db.run(dlq.entry_by_task, task_uuid)
    if row is None:
        raise NotFoundError(f"task {task_uuid} has no DLQ entry")
    return _entry(row)


def _update(conn: Conn, entry_uuid: UUID, body: DlqUpdateBody, principal: Principal
            ) -> DlqEntryView:
    resolved_by = note = None
    if body.resolved_by or body.resolution_status:  # who resolved: the caller, when known
        resolved_by, note = principal.audit_actor(body.resolved_by)
    metadata = dict(body.metadata) if body.metadata else {}
    if note is not None:
        metadata["resolved_by_note"] = note
    return _entry(dlq.update_investigation(
        conn, entry_uuid,
        resolution_status=body.resolution_status.value if body.resolution_status else None,
        resolution_notes=body.resolution_notes, resolved_by=resolved_by,
        metadata=metadata or None))


async def dlq_update(ctx: GatewayContext, entry_uuid: UUID, body: DlqUpdateBody, *,
                     principal: Principal) -> DlqEntryView:
    check_json_input(ctx.settings.gateway, body.metadata, "metadata")
    return await ctx.db.run(_update, entry_uuid, body, principal)


async def dlq_stats(ctx: GatewayContext) -> DlqStatsView:
    rows = await ctx.db.run(dlq.stats)
    return DlqStatsView(stats=[pick(DlqReasonStatsView, r) for r in rows])


async def dlq_investigation_queue(ctx: GatewayContext, limit: int) -> InvestigationQueueView:
    bounded(limit, "limit", low=1, high=MAX_LIMIT)
    rows = await ctx.db.run(lambda conn: dlq.investigation_queue(conn, limit=limit))
    return InvestigationQueueView(entries=[pick(InvestigationQueueEntryView, r) for r in rows])


async def dlq_staleness(ctx: GatewayContext, limit: int) -> StalenessView:
    bounded(limit, "limit", low=1, high=MAX_LIMIT)
    staleness = ctx.settings.staleness
    rows = await ctx.db.run(lambda conn: dlq.staleness_monitoring(
        conn, limit=limit,
        waiting_for_dependencies_minutes=staleness.waiting_for_dependencies_minutes,
        waiting_for_retry_minutes=staleness.waiting_for_retry_minutes,
        steps_in_process_minutes=staleness.steps_in_process_minutes))
    return StalenessView(entries=[pick(StalenessEntryView, r) for r in rows])
