"""TaskerClient: the typed gateway client for Trio code (grpclib runs through trio-asyncio)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

import trio
import trio_asyncio

from tasker_client.aio_client import AioTaskerClient, next_or_none
from tasker_client.config import ClientConfig, RetryPolicy
from tasker_client.convert import UuidLike
from tasker_client.results import (
    CreateTaskResult,
    StepResolution,
    TaskContext,
    TaskPage,
    TemplateCatalog,
)
from tasker_shared.contracts.generated.tasker.v1 import (
    BottleneckAnalysis,
    CheckDetailedHealthResponse,
    CheckHealthResponse,
    CheckReadinessResponse,
    DlqEntry,
    DlqReasonStats,
    DlqResolutionStatus,
    InvestigationQueueEntry,
    PerformanceMetrics,
    ResolutionStrategy,
    SortDirection,
    StalenessMonitoringEntry,
    Step,
    StepAuditRecord,
    Task,
    TaskState,
    TaskStatusUpdate,
    TaskSummary,
    TemplateDetail,
)

P = ParamSpec("P")
R = TypeVar("R")


class TaskerClient:
    """Typed Tasker gateway client for Trio: `async with TaskerClient(...) as client:`.

    Inside an enclosing `trio_asyncio.open_loop()` the client uses that loop; otherwise it
    opens its own for its lifetime. Every call has a deadline (`call_timeout`, default the
    client's) spanning its retries; UNAVAILABLE is retried with exponential backoff.
    """

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
        self._aio = AioTaskerClient(
            address,
            token=token,
            api_key=api_key,
            api_key_header=api_key_header,
            timeout=timeout,
            retry=retry,
            config=config,
        )
        self._stack: AsyncExitStack | None = None
        self._loop: Any = None

    @property
    def config(self) -> ClientConfig:
        """The resolved address, credentials, timeout and retry policy."""
        return self._aio.config

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("TaskerClient is already open")
        async with AsyncExitStack() as stack:
            loop = trio_asyncio.current_loop.get()
            if loop is None:
                loop = await stack.enter_async_context(trio_asyncio.open_loop())
            self._loop = loop
            await self._bridge(self._aio.open)
            stack.push_async_callback(self._close_channel)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _close_channel(self) -> None:
        with trio.CancelScope(shield=True):
            await self._bridge(self._aio.aclose)

    async def _bridge(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await trio_asyncio.aio_as_trio(fn, loop=self._loop)(*args, **kwargs)
        return result

    async def _call(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._stack is None:
            raise RuntimeError("the client is not open: use `async with TaskerClient(...)`")
        return await self._bridge(fn, *args, **kwargs)

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
        return await self._call(
            self._aio.create_task, name, namespace=namespace, version=version, context=context,
            initiator=initiator, source_system=source_system, reason=reason, tags=tags,
            priority=priority, correlation_id=correlation_id,
            parent_correlation_id=parent_correlation_id, idempotency_key=idempotency_key,
            options=options, wait=wait, wait_timeout=wait_timeout, request_id=request_id,
            call_timeout=call_timeout,
        )

    async def get_task(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> Task:
        """One task with its execution context and step readiness."""
        return await self._call(self._aio.get_task, task_uuid, call_timeout=call_timeout)

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
        return await self._call(
            self._aio.list_tasks, namespace=namespace, status=status, name=name,
            initiator=initiator, source_system=source_system, page=page, per_page=per_page,
            sort=sort, created_after=created_after, created_before=created_before,
            call_timeout=call_timeout,
        )

    async def cancel_task(
        self, task_uuid: UuidLike, *, reason: str | None = None, call_timeout: float | None = None
    ) -> Task:
        """Cancel a task; TransitionRejected when it already finished."""
        return await self._call(
            self._aio.cancel_task, task_uuid, reason=reason, call_timeout=call_timeout
        )

    async def get_task_context(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskContext:
        """The context a task was requested with and its steps' results so far."""
        return await self._call(self._aio.get_task_context, task_uuid, call_timeout=call_timeout)

    async def get_task_summary(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskSummary:
        """A task, its step summaries and its DLQ status in one view."""
        return await self._call(self._aio.get_task_summary, task_uuid, call_timeout=call_timeout)

    async def watch_task(
        self, task_uuid: UuidLike, *, include_steps: bool = False, call_timeout: float | None = None
    ) -> AsyncGenerator[TaskStatusUpdate, None]:
        """Live updates until the task is terminal; close early with `contextlib.aclosing`."""
        if self._stack is None:
            raise RuntimeError("the client is not open: use `async with TaskerClient(...)`")
        updates = self._aio.watch_task(
            task_uuid, include_steps=include_steps, call_timeout=call_timeout
        )
        try:
            while (update := await self._call(next_or_none, updates)) is not None:
                yield update
        finally:
            with trio.CancelScope(shield=True):
                await self._bridge(updates.aclose)

    # -- steps -----------------------------------------------------------------------------

    async def list_steps(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[Step, ...]:
        """The task's workflow steps with their readiness."""
        return await self._call(self._aio.list_steps, task_uuid, call_timeout=call_timeout)

    async def get_step(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> Step:
        """One workflow step of a task."""
        return await self._call(self._aio.get_step, task_uuid, step_uuid, call_timeout=call_timeout)

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
        return await self._call(
            self._aio.resolve_step, task_uuid, step_uuid, action=action, reason=reason,
            actor=actor, result=result, metadata=metadata, call_timeout=call_timeout,
        )

    async def step_audit(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[StepAuditRecord, ...]:
        """The step's recorded results with their transitions, newest first."""
        return await self._call(
            self._aio.step_audit, task_uuid, step_uuid, call_timeout=call_timeout
        )

    # -- templates -------------------------------------------------------------------------

    async def list_templates(
        self, *, namespace: str | None = None, call_timeout: float | None = None
    ) -> TemplateCatalog:
        """Known templates, optionally in one namespace."""
        return await self._call(
            self._aio.list_templates, namespace=namespace, call_timeout=call_timeout
        )

    async def get_template(
        self, namespace: str, name: str, version: str, *, call_timeout: float | None = None
    ) -> TemplateDetail:
        """One template with its steps; NotFoundError when unknown."""
        return await self._call(
            self._aio.get_template, namespace, name, version, call_timeout=call_timeout
        )

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
        return await self._call(
            self._aio.dlq_list, resolution_status=resolution_status, limit=limit, offset=offset,
            call_timeout=call_timeout,
        )

    async def dlq_get(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> DlqEntry:
        """The latest DLQ entry of a task, with its snapshot; NotFoundError when none."""
        return await self._call(self._aio.dlq_get, task_uuid, call_timeout=call_timeout)

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
        return await self._call(
            self._aio.dlq_update, dlq_entry_uuid, resolution_status=resolution_status,
            resolution_notes=resolution_notes, resolved_by=resolved_by, metadata=metadata,
            call_timeout=call_timeout,
        )

    async def dlq_stats(self, *, call_timeout: float | None = None) -> tuple[DlqReasonStats, ...]:
        """DLQ entries grouped by reason."""
        return await self._call(self._aio.dlq_stats, call_timeout=call_timeout)

    async def dlq_investigation_queue(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[InvestigationQueueEntry, ...]:
        """Pending DLQ entries, highest priority first."""
        return await self._call(
            self._aio.dlq_investigation_queue, limit=limit, call_timeout=call_timeout
        )

    async def dlq_staleness(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[StalenessMonitoringEntry, ...]:
        """Active tasks and how close each is to its staleness threshold."""
        return await self._call(self._aio.dlq_staleness, limit=limit, call_timeout=call_timeout)

    # -- analytics and health --------------------------------------------------------------

    async def performance(
        self, *, hours: int | None = None, call_timeout: float | None = None
    ) -> PerformanceMetrics:
        """System performance over the last `hours` (server default 24)."""
        return await self._call(self._aio.performance, hours=hours, call_timeout=call_timeout)

    async def bottlenecks(
        self,
        *,
        limit: int | None = None,
        min_executions: int | None = None,
        call_timeout: float | None = None,
    ) -> BottleneckAnalysis:
        """Slowest steps and tasks, resource use and recommendations."""
        return await self._call(
            self._aio.bottlenecks, limit=limit, min_executions=min_executions,
            call_timeout=call_timeout,
        )

    async def health(self, *, call_timeout: float | None = None) -> CheckHealthResponse:
        """Basic health ("ok" while the gateway serves)."""
        return await self._call(self._aio.health, call_timeout=call_timeout)

    async def readiness(self, *, call_timeout: float | None = None) -> CheckReadinessResponse:
        """Readiness with its individual checks."""
        return await self._call(self._aio.readiness, call_timeout=call_timeout)

    async def detailed_health(
        self, *, call_timeout: float | None = None
    ) -> CheckDetailedHealthResponse:
        """Checks plus pools, queue depths, channel saturation and backpressure."""
        return await self._call(self._aio.detailed_health, call_timeout=call_timeout)
