"""The client on asyncio, grpclib's home: TaskerClient (Trio) and SyncTaskerClient drive it."""

from __future__ import annotations

import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from grpclib.client import Channel

from tasker_client.config import ClientConfig, RetryPolicy, resolve_config
from tasker_client.convert import UuidLike, from_struct, parse_enum, to_struct, uuid_text
from tasker_client.results import (
    CreateTaskResult,
    StepResolution,
    TaskContext,
    TaskPage,
    TemplateCatalog,
)
from tasker_client.retry import Attempts
from tasker_shared.contracts.generated.tasker.v1 import (
    AnalyticsServiceStub,
    BottleneckAnalysis,
    CancelTaskRequest,
    CheckDetailedHealthRequest,
    CheckDetailedHealthResponse,
    CheckHealthRequest,
    CheckHealthResponse,
    CheckReadinessRequest,
    CheckReadinessResponse,
    CreateTaskRequest,
    DlqEntry,
    DlqReasonStats,
    DlqResolutionStatus,
    DlqServiceStub,
    GetBottleneckAnalysisRequest,
    GetDlqEntryByTaskRequest,
    GetDlqStatsRequest,
    GetInvestigationQueueRequest,
    GetPerformanceMetricsRequest,
    GetStalenessMonitoringRequest,
    GetStepAuditRequest,
    GetStepRequest,
    GetTaskContextRequest,
    GetTaskRequest,
    GetTaskSummaryRequest,
    GetTemplateRequest,
    HealthServiceStub,
    InvestigationQueueEntry,
    ListDlqEntriesRequest,
    ListStepsRequest,
    ListTasksRequest,
    ListTemplatesRequest,
    OffsetPagination,
    PaginationRequest,
    PerformanceMetrics,
    ResolutionStrategy,
    ResolveStepRequest,
    SortDirection,
    StalenessMonitoringEntry,
    Step,
    StepAuditRecord,
    StepServiceStub,
    StreamTaskStatusRequest,
    Task,
    TaskRequest,
    TaskServiceStub,
    TaskState,
    TaskStatusUpdate,
    TaskSummary,
    TemplateDetail,
    TemplateServiceStub,
    TimestampRange,
    UpdateInvestigationRequest,
)
from tasker_shared.errors import ValidationError

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True, slots=True)
class _Stubs:
    """The generated service stubs, all on one channel."""

    tasks: TaskServiceStub
    steps: StepServiceStub
    templates: TemplateServiceStub
    dlq: DlqServiceStub
    analytics: AnalyticsServiceStub
    health: HealthServiceStub


class AioTaskerClient:
    """Typed Tasker gateway client for asyncio code; `async with` opens and closes the channel."""

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        api_key_header: str | None = None,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        self.config = config or resolve_config(
            address,
            token=token,
            api_key=api_key,
            api_key_header=api_key_header,
            timeout=timeout,
            retry=retry,
        )
        self._channel: Channel | None = None
        self._stubs: _Stubs | None = None
        endpoint = self.config.endpoint
        self._target = f"gateway at {endpoint.host}:{endpoint.port}"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the channel (it connects lazily, on the first call)."""
        if self._channel is not None:
            return
        endpoint = self.config.endpoint
        self._channel = Channel(endpoint.host, endpoint.port, ssl=True if endpoint.tls else None)
        metadata = self.config.credentials.metadata()
        self._stubs = _Stubs(
            tasks=TaskServiceStub(self._channel, metadata=metadata),
            steps=StepServiceStub(self._channel, metadata=metadata),
            templates=TemplateServiceStub(self._channel, metadata=metadata),
            dlq=DlqServiceStub(self._channel, metadata=metadata),
            analytics=AnalyticsServiceStub(self._channel, metadata=metadata),
            health=HealthServiceStub(self._channel, metadata=metadata),
        )

    async def aclose(self) -> None:
        """Close the channel; idempotent."""
        channel, self._channel, self._stubs = self._channel, None, None
        if channel is not None:
            channel.close()

    @property
    def _api(self) -> _Stubs:
        if self._stubs is None:
            raise RuntimeError("the client is not open: use `async with` (or await open())")
        return self._stubs

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _unary(
        self, method: Callable[..., Awaitable[R]], request: Any, call_timeout: float | None
    ) -> R:
        attempts = Attempts(
            self.config.retry, call_timeout or self.config.timeout, target=self._target
        )
        while True:
            left = attempts.begin()
            try:
                return await method(request, timeout=left)
            except Exception as exc:
                await attempts.failed(exc)

    # -- tasks -----------------------------------------------------------------------------

    async def create_task(
        self,
        name: str,
        *,
        namespace: str = "",
        version: str = "",
        context: Mapping[str, Any] | None = None,
        initiator: str = "",
        source_system: str = "",
        reason: str = "",
        tags: Sequence[str] = (),
        priority: int | None = None,
        correlation_id: str = "",
        parent_correlation_id: str | None = None,
        idempotency_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
        request_id: str | None = None,
        call_timeout: float | None = None,
    ) -> CreateTaskResult:
        """Request a task; with `wait` the reply comes once ingestion created (or refused) it."""
        if not name:
            raise ValidationError("name: is required")
        request = CreateTaskRequest(
            task=TaskRequest(
                name=name,
                namespace=namespace,
                version=version,
                context=to_struct(context if context is not None else {}),
                initiator=initiator,
                source_system=source_system,
                reason=reason,
                tags=list(tags),
                options=to_struct(options),
                priority=priority,
                correlation_id=correlation_id,
                parent_correlation_id=parent_correlation_id,
                idempotency_key=idempotency_key,
            ),
            wait=wait,
            wait_timeout_ms=0 if wait_timeout is None else max(1, round(wait_timeout * 1000)),
            # One id for every attempt, so a retried request is the same request.
            request_id=request_id or str(uuid.uuid4()),
        )
        reply = await self._unary(self._api.tasks.create_task, request, call_timeout)
        return CreateTaskResult(
            status=reply.status,
            request_id=reply.request_id or request.request_id,
            task_uuid=reply.task_uuid or (reply.task.task_uuid if reply.task else None),
            task=reply.task,
        )

    async def get_task(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> Task:
        """One task with its execution context and step readiness."""
        request = GetTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
        return (await self._unary(self._api.tasks.get_task, request, call_timeout)).task

    async def list_tasks(
        self,
        *,
        namespace: str | None = None,
        status: TaskState | str | None = None,
        name: str | None = None,
        initiator: str | None = None,
        source_system: str | None = None,
        page: int = 1,
        per_page: int = 25,
        sort: SortDirection | str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        call_timeout: float | None = None,
    ) -> TaskPage:
        """One page of tasks, newest first unless `sort` is "asc"."""
        if page < 1 or not 1 <= per_page <= 100:
            raise ValidationError("page must be >= 1 and per_page within [1, 100]")
        created = None
        if created_after is not None or created_before is not None:
            created = TimestampRange(start=created_after, end=created_before)
        request = ListTasksRequest(
            pagination=PaginationRequest(page=page, per_page=per_page),
            namespace=namespace,
            status=None if status is None else parse_enum(TaskState, status),
            initiator=initiator,
            source_system=source_system,
            name=name,
            sort_direction=(
                SortDirection.UNSPECIFIED if sort is None else parse_enum(SortDirection, sort)
            ),
            created_at=created,
        )
        reply = await self._unary(self._api.tasks.list_tasks, request, call_timeout)
        pagination = reply.pagination
        return TaskPage(
            tasks=tuple(reply.tasks),
            page=pagination.page if pagination else page,
            per_page=pagination.per_page if pagination else per_page,
            total_count=pagination.total_count if pagination else len(reply.tasks),
            total_pages=pagination.total_pages if pagination else 1,
            has_next=pagination.has_next if pagination else False,
        )

    async def cancel_task(
        self, task_uuid: UuidLike, *, reason: str | None = None, call_timeout: float | None = None
    ) -> Task:
        """Cancel a task; TransitionRejected when it already finished."""
        request = CancelTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"), reason=reason)
        return (await self._unary(self._api.tasks.cancel_task, request, call_timeout)).task

    async def get_task_context(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskContext:
        """The context a task was requested with and its steps' results so far."""
        request = GetTaskContextRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
        reply = await self._unary(self._api.tasks.get_task_context, request, call_timeout)
        return TaskContext(
            task_uuid=reply.task_uuid,
            context=from_struct(reply.context),
            step_results=from_struct(reply.step_results),
        )

    async def get_task_summary(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskSummary:
        """A task, its step summaries and its DLQ status in one view."""
        request = GetTaskSummaryRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
        return (await self._unary(self._api.tasks.get_task_summary, request, call_timeout)).summary

    async def watch_task(
        self, task_uuid: UuidLike, *, include_steps: bool = False, call_timeout: float | None = None
    ) -> AsyncGenerator[TaskStatusUpdate, None]:
        """Live updates until the task is terminal (`call_timeout` bounds the whole watch)."""
        request = StreamTaskStatusRequest(
            task_uuid=uuid_text(task_uuid, "task_uuid"), include_steps=include_steps
        )
        stub = self._api.tasks
        attempts = Attempts(self.config.retry, call_timeout, target=self._target)
        received = False
        while True:
            left = attempts.begin()
            try:
                async with aclosing(
                    stub.stream_task_status(request, timeout=left)
                ) as stream:
                    async for update in stream:
                        received = True
                        yield update
                return
            except Exception as exc:
                if received:  # the stream broke midway: resuming could repeat updates
                    attempts.give_up(exc)
                await attempts.failed(exc)

    # -- steps -----------------------------------------------------------------------------

    async def list_steps(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[Step, ...]:
        """The task's workflow steps with their readiness."""
        request = ListStepsRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
        return tuple((await self._unary(self._api.steps.list_steps, request, call_timeout)).steps)

    async def get_step(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> Step:
        """One workflow step of a task."""
        request = GetStepRequest(
            task_uuid=uuid_text(task_uuid, "task_uuid"), step_uuid=uuid_text(step_uuid, "step_uuid")
        )
        return (await self._unary(self._api.steps.get_step, request, call_timeout)).step

    async def resolve_step(
        self,
        task_uuid: UuidLike,
        step_uuid: UuidLike,
        *,
        action: ResolutionStrategy | str,
        reason: str = "",
        actor: str = "",
        result: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        call_timeout: float | None = None,
    ) -> StepResolution:
        """reset_for_retry, resolve_manually or complete_manually (with `result`) a step."""
        strategy = parse_enum(ResolutionStrategy, action)
        if result is not None and strategy != ResolutionStrategy.COMPLETE_MANUALLY:
            raise ValidationError("result: only allowed with complete_manually")
        request = ResolveStepRequest(
            task_uuid=uuid_text(task_uuid, "task_uuid"),
            step_uuid=uuid_text(step_uuid, "step_uuid"),
            action=strategy,
            reason=reason,
            actor=actor,
            result=to_struct(result),
            metadata=to_struct(metadata),
        )
        reply = await self._unary(self._api.steps.resolve_step, request, call_timeout)
        return StepResolution(step=reply.step, previous_state=reply.previous_state)

    async def step_audit(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[StepAuditRecord, ...]:
        """The step's recorded results with their transitions, newest first."""
        request = GetStepAuditRequest(
            task_uuid=uuid_text(task_uuid, "task_uuid"), step_uuid=uuid_text(step_uuid, "step_uuid")
        )
        reply = await self._unary(self._api.steps.get_step_audit, request, call_timeout)
        return tuple(reply.records)

    # -- templates -------------------------------------------------------------------------

    async def list_templates(
        self, *, namespace: str | None = None, call_timeout: float | None = None
    ) -> TemplateCatalog:
        """Known templates, optionally in one namespace."""
        request = ListTemplatesRequest(namespace=namespace)
        reply = await self._unary(self._api.templates.list_templates, request, call_timeout)
        return TemplateCatalog(templates=tuple(reply.templates), namespaces=tuple(reply.namespaces))

    async def get_template(
        self, namespace: str, name: str, version: str, *, call_timeout: float | None = None
    ) -> TemplateDetail:
        """One template with its steps; NotFoundError when unknown."""
        request = GetTemplateRequest(namespace=namespace, name=name, version=version)
        return (await self._unary(self._api.templates.get_template, request, call_timeout)).template

    # -- DLQ -------------------------------------------------------------------------------

    async def dlq_list(
        self,
        *,
        resolution_status: DlqResolutionStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        call_timeout: float | None = None,
    ) -> tuple[DlqEntry, ...]:
        """DLQ entries, optionally with one resolution status."""
        if limit < 1 or offset < 0:
            raise ValidationError("limit must be >= 1 and offset >= 0")
        request = ListDlqEntriesRequest(
            resolution_status=(
                None if resolution_status is None
                else parse_enum(DlqResolutionStatus, resolution_status)
            ),
            pagination=OffsetPagination(limit=limit, offset=offset),
        )
        return tuple((await self._unary(self._api.dlq.list_entries, request, call_timeout)).entries)

    async def dlq_get(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> DlqEntry:
        """The latest DLQ entry of a task, with its snapshot; NotFoundError when none."""
        request = GetDlqEntryByTaskRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
        return (await self._unary(self._api.dlq.get_entry_by_task, request, call_timeout)).entry

    async def dlq_update(
        self,
        dlq_entry_uuid: UuidLike,
        *,
        resolution_status: DlqResolutionStatus | str | None = None,
        resolution_notes: str | None = None,
        resolved_by: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        call_timeout: float | None = None,
    ) -> DlqEntry:
        """Record an investigation's findings; unset fields stay unchanged."""
        request = UpdateInvestigationRequest(
            dlq_entry_uuid=uuid_text(dlq_entry_uuid, "dlq_entry_uuid"),
            resolution_status=(
                None if resolution_status is None
                else parse_enum(DlqResolutionStatus, resolution_status)
            ),
            resolution_notes=resolution_notes,
            resolved_by=resolved_by,
            metadata=to_struct(metadata),
        )
        return (await self._unary(self._api.dlq.update_investigation, request, call_timeout)).entry

    async def dlq_stats(self, *, call_timeout: float | None = None) -> tuple[DlqReasonStats, ...]:
        """DLQ entries grouped by reason."""
        reply = await self._unary(self._api.dlq.get_stats, GetDlqStatsRequest(), call_timeout)
        return tuple(reply.stats)

    async def dlq_investigation_queue(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[InvestigationQueueEntry, ...]:
        """Pending DLQ entries, highest priority first."""
        request = GetInvestigationQueueRequest(limit=limit)
        reply = await self._unary(self._api.dlq.get_investigation_queue, request, call_timeout)
        return tuple(reply.entries)

    async def dlq_staleness(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[StalenessMonitoringEntry, ...]:
        """Active tasks and how close each is to its staleness threshold."""
        request = GetStalenessMonitoringRequest(limit=limit)
        reply = await self._unary(self._api.dlq.get_staleness_monitoring, request, call_timeout)
        return tuple(reply.entries)

    # -- analytics and health --------------------------------------------------------------

    async def performance(
        self, *, hours: int | None = None, call_timeout: float | None = None
    ) -> PerformanceMetrics:
        """System performance over the last `hours` (server default 24)."""
        request = GetPerformanceMetricsRequest(hours=hours)
        method = self._api.analytics.get_performance_metrics
        reply = await self._unary(method, request, call_timeout)
        return reply.metrics

    async def bottlenecks(
        self,
        *,
        limit: int | None = None,
        min_executions: int | None = None,
        call_timeout: float | None = None,
    ) -> BottleneckAnalysis:
        """Slowest steps and tasks, resource use and recommendations."""
        request = GetBottleneckAnalysisRequest(limit=limit, min_executions=min_executions)
        method = self._api.analytics.get_bottleneck_analysis
        reply = await self._unary(method, request, call_timeout)
        return reply.analysis

    async def health(self, *, call_timeout: float | None = None) -> CheckHealthResponse:
        """Basic health ("ok" while the gateway serves)."""
        return await self._unary(self._api.health.check_health, CheckHealthRequest(), call_timeout)

    async def readiness(self, *, call_timeout: float | None = None) -> CheckReadinessResponse:
        """Readiness with its individual checks."""
        request = CheckReadinessRequest()
        return await self._unary(self._api.health.check_readiness, request, call_timeout)

    async def detailed_health(
        self, *, call_timeout: float | None = None
    ) -> CheckDetailedHealthResponse:
        """Checks plus pools, queue depths, channel saturation and backpressure."""
        request = CheckDetailedHealthRequest()
        return await self._unary(self._api.health.check_detailed_health, request, call_timeout)


async def next_or_none(updates: AsyncIterator[R]) -> R | None:
    """The next item of an async iterator, or None once it is exhausted."""
    try:
        return await anext(updates)
    except StopAsyncIteration:
        return None
