"""DLQ, analytics and health calls: arguments checked and turned into requests, replies read."""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import Any

from tasker_client.convert import UuidLike, parse_enum, to_struct, uuid_text
from tasker_client.core import Call
from tasker_client.errors import ValidationError
from tasker_client.proto.tasker.v1 import (
    BottleneckAnalysis,
    CheckDetailedHealthRequest,
    CheckDetailedHealthResponse,
    CheckHealthRequest,
    CheckHealthResponse,
    CheckReadinessRequest,
    CheckReadinessResponse,
    DlqEntry,
    DlqReasonStats,
    DlqResolutionStatus,
    GetBottleneckAnalysisRequest,
    GetDlqEntryByTaskRequest,
    GetDlqStatsRequest,
    GetInvestigationQueueRequest,
    GetPerformanceMetricsRequest,
    GetStalenessMonitoringRequest,
    InvestigationQueueEntry,
    ListDlqEntriesRequest,
    OffsetPagination,
    PerformanceMetrics,
    StalenessMonitoringEntry,
    UpdateInvestigationRequest,
)


def _entries(reply: Any) -> tuple[Any, ...]:
    return tuple(reply.entries)


def _status(value: DlqResolutionStatus | str | None) -> DlqResolutionStatus | None:
    return None if value is None else parse_enum(DlqResolutionStatus, value)


def _same(reply: Any) -> Any:
    return reply


def dlq_list(
    *,
    resolution_status: DlqResolutionStatus | str | None = None,
    limit: int = 50,
    offset: int = 0,
    call_timeout: float | None = None,
) -> Call[tuple[DlqEntry, ...]]:
    """DLQ entries, optionally with one resolution status."""
    if limit < 1 or offset < 0:
        raise ValidationError("limit must be >= 1 and offset >= 0")
    request = ListDlqEntriesRequest(
        resolution_status=_status(resolution_status),
        pagination=OffsetPagination(limit=limit, offset=offset),
    )
    return Call(service="dlq", method="list_entries", request=request, timeout=call_timeout,
                convert=_entries)


def dlq_get(task_uuid: UuidLike, *, call_timeout: float | None = None) -> Call[DlqEntry]:
    """The latest DLQ entry of a task, with its snapshot; NotFoundError when none."""
    request = GetDlqEntryByTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
    return Call(service="dlq", method="get_entry_by_task", request=request, timeout=call_timeout,
                convert=attrgetter("entry"))


def dlq_update(
    dlq_entry_uuid: UuidLike,
    *,
    resolution_status: DlqResolutionStatus | str | None = None,
    resolution_notes: str | None = None,
    resolved_by: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    call_timeout: float | None = None,
) -> Call[DlqEntry]:
    """Record an investigation's findings; unset fields stay unchanged."""
    request = UpdateInvestigationRequest(
        dlq_entry_uuid=uuid_text(dlq_entry_uuid, "dlq_entry_uuid"),
        resolution_status=_status(resolution_status),
        resolution_notes=resolution_notes,
        resolved_by=resolved_by,
        metadata=to_struct(metadata),
    )
    return Call(service="dlq", method="update_investigation", request=request,
                timeout=call_timeout, convert=attrgetter("entry"))


def dlq_stats(*, call_timeout: float | None = None) -> Call[tuple[DlqReasonStats, ...]]:
    """DLQ entries grouped by reason."""
    return Call(service="dlq", method="get_stats", request=GetDlqStatsRequest(),
                timeout=call_timeout, convert=lambda reply: tuple(reply.stats))


def dlq_investigation_queue(
    *, limit: int | None = None, call_timeout: float | None = None
) -> Call[tuple[InvestigationQueueEntry, ...]]:
    """Pending DLQ entries, highest priority first."""
    request = GetInvestigationQueueRequest(limit=limit)
    return Call(service="dlq", method="get_investigation_queue", request=request,
                timeout=call_timeout, convert=_entries)


def dlq_staleness(
    *, limit: int | None = None, call_timeout: float | None = None
) -> Call[tuple[StalenessMonitoringEntry, ...]]:
    """Active tasks and how close each is to its staleness threshold."""
    request = GetStalenessMonitoringRequest(limit=limit)
    return Call(service="dlq", method="get_staleness_monitoring", request=request,
                timeout=call_timeout, convert=_entries)


def performance(
    *, hours: int | None = None, call_timeout: float | None = None
) -> Call[PerformanceMetrics]:
    """System performance over the last `hours` (server default 24)."""
    request = GetPerformanceMetricsRequest(hours=hours)
    return Call(service="analytics", method="get_performance_metrics", request=request,
                timeout=call_timeout, convert=attrgetter("metrics"))


def bottlenecks(
    *,
    limit: int | None = None,
    min_executions: int | None = None,
    call_timeout: float | None = None,
) -> Call[BottleneckAnalysis]:
    """Slowest steps and tasks, resource use and recommendations."""
    request = GetBottleneckAnalysisRequest(limit=limit, min_executions=min_executions)
    return Call(service="analytics", method="get_bottleneck_analysis", request=request,
                timeout=call_timeout, convert=attrgetter("analysis"))


def health(*, call_timeout: float | None = None) -> Call[CheckHealthResponse]:
    """Basic health ("ok" while the gateway serves)."""
    return Call(service="health", method="check_health", request=CheckHealthRequest(),
                timeout=call_timeout, convert=_same)


def readiness(*, call_timeout: float | None = None) -> Call[CheckReadinessResponse]:
    """Readiness with its individual checks."""
    return Call(service="health", method="check_readiness", request=CheckReadinessRequest(),
                timeout=call_timeout, convert=_same)


def detailed_health(*, call_timeout: float | None = None) -> Call[CheckDetailedHealthResponse]:
    """Checks plus pools, queue depths, channel saturation and backpressure."""
    return Call(service="health", method="check_detailed_health",
                request=CheckDetailedHealthRequest(), timeout=call_timeout, convert=_same)
