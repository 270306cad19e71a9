"""SyncTaskerClient: the same client, blocking, for plain synchronous code and any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

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

R = TypeVar("R")
T = TypeVar("T")

UNWIND_SECONDS = 2.0


class _LoopStream(Generic[T]):
    """An async iterator stepped from another thread; closable even while a step runs."""

    def __init__(self, updates: AsyncGenerator[T, None]) -> None:
        self._updates = updates
        self._step: asyncio.Task[Any] | None = None

    async def next(self) -> T | None:
        """The next item, or None at the end (runs on the loop)."""
        self._step = asyncio.current_task()
        try:
            return await next_or_none(self._updates)
        finally:
            self._step = None

    async def close(self) -> None:
        """Cancel a step still running (an interrupt left it behind), then close."""
        step = self._step
        if step is not None:
            step.cancel()
            await asyncio.wait({step}, timeout=UNWIND_SECONDS)
        await self._updates.aclose()


class SyncTaskerClient:
    """Blocking Tasker gateway client: `with SyncTaskerClient(...) as client:`.

    The gRPC channel lives on a private asyncio loop in a daemon thread, so calls work from
    any thread (also from threads of a Trio or asyncio program) and can be made concurrently.
    An interrupt (KeyboardInterrupt) while waiting cancels the call in flight.
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
        # A plain selector loop: asyncio.new_event_loop() may be patched by trio-asyncio.
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tasker-client-loop", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._run(self._aio.open())

    @property
    def config(self) -> ClientConfig:
        """The resolved address, credentials, timeout and retry policy."""
        return self._aio.config

    def close(self) -> None:
        """Close the channel, end calls still in flight and stop the loop thread; idempotent."""
        if self._closed:
            return
        try:
            self._run(self._shutdown())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    async def _shutdown(self) -> None:
        await self._aio.aclose()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:  # calls an interrupt abandoned
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=UNWIND_SECONDS)
        await self._loop.shutdown_asyncgens()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        if self._closed:
            coro.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a no-op once done; cancels the call on KeyboardInterrupt
            raise

    # -- tasks -----------------------------------------------------------------------------

    def create_task(
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
        return self._run(self._aio.create_task(
            name, namespace=namespace, version=version, context=context, initiator=initiator,
            source_system=source_system, reason=reason, tags=tags, priority=priority,
            correlation_id=correlation_id, parent_correlation_id=parent_correlation_id,
            idempotency_key=idempotency_key, options=options, wait=wait,
            wait_timeout=wait_timeout, request_id=request_id, call_timeout=call_timeout,
        ))

    def get_task(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> Task:
        """One task with its execution context and step readiness."""
        return self._run(self._aio.get_task(task_uuid, call_timeout=call_timeout))

    def list_tasks(
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
        return self._run(self._aio.list_tasks(
            namespace=namespace, status=status, name=name, initiator=initiator,
            source_system=source_system, page=page, per_page=per_page, sort=sort,
            created_after=created_after, created_before=created_before, call_timeout=call_timeout,
        ))

    def cancel_task(
        self, task_uuid: UuidLike, *, reason: str | None = None, call_timeout: float | None = None
    ) -> Task:
        """Cancel a task; TransitionRejected when it already finished."""
        return self._run(self._aio.cancel_task(task_uuid, reason=reason, call_timeout=call_timeout))

    def get_task_context(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskContext:
        """The context a task was requested with and its steps' results so far."""
        return self._run(self._aio.get_task_context(task_uuid, call_timeout=call_timeout))

    def get_task_summary(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> TaskSummary:
        """A task, its step summaries and its DLQ status in one view."""
        return self._run(self._aio.get_task_summary(task_uuid, call_timeout=call_timeout))

    def watch_task(
        self, task_uuid: UuidLike, *, include_steps: bool = False, call_timeout: float | None = None
    ) -> Iterator[TaskStatusUpdate]:
        """Live updates until the task is terminal; closing the iterator ends the stream."""
        stream = _LoopStream(self._aio.watch_task(
            task_uuid, include_steps=include_steps, call_timeout=call_timeout
        ))
        try:
            while (update := self._run(stream.next())) is not None:
                yield update
        finally:
            if not self._closed:
                self._run(stream.close())

    # -- steps -----------------------------------------------------------------------------

    def list_steps(
        self, task_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[Step, ...]:
        """The task's workflow steps with their readiness."""
        return self._run(self._aio.list_steps(task_uuid, call_timeout=call_timeout))

    def get_step(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> Step:
        """One workflow step of a task."""
        return self._run(self._aio.get_step(task_uuid, step_uuid, call_timeout=call_timeout))

    def resolve_step(
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
        return self._run(self._aio.resolve_step(
            task_uuid, step_uuid, action=action, reason=reason, actor=actor, result=result,
            metadata=metadata, call_timeout=call_timeout,
        ))

    def step_audit(
        self, task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
    ) -> tuple[StepAuditRecord, ...]:
        """The step's recorded results with their transitions, newest first."""
        return self._run(self._aio.step_audit(task_uuid, step_uuid, call_timeout=call_timeout))

    # -- templates -------------------------------------------------------------------------

    def list_templates(
        self, *, namespace: str | None = None, call_timeout: float | None = None
    ) -> TemplateCatalog:
        """Known templates, optionally in one namespace."""
        return self._run(self._aio.list_templates(namespace=namespace, call_timeout=call_timeout))

    def get_template(
        self, namespace: str, name: str, version: str, *, call_timeout: float | None = None
    ) -> TemplateDetail:
        """One template with its steps; NotFoundError when unknown."""
        return self._run(
            self._aio.get_template(namespace, name, version, call_timeout=call_timeout)
        )

    # -- DLQ -------------------------------------------------------------------------------

    def dlq_list(
        self,
        *,
        resolution_status: DlqResolutionStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        call_timeout: float | None = None,
    ) -> tuple[DlqEntry, ...]:
        """DLQ entries, optionally with one resolution status."""
        return self._run(self._aio.dlq_list(
            resolution_status=resolution_status, limit=limit, offset=offset,
            call_timeout=call_timeout,
        ))

    def dlq_get(self, task_uuid: UuidLike, *, call_timeout: float | None = None) -> DlqEntry:
        """The latest DLQ entry of a task, with its snapshot; NotFoundError when none."""
        return self._run(self._aio.dlq_get(task_uuid, call_timeout=call_timeout))

    def dlq_update(
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
        return self._run(self._aio.dlq_update(
            dlq_entry_uuid, resolution_status=resolution_status,
            resolution_notes=resolution_notes, resolved_by=resolved_by, metadata=metadata,
            call_timeout=call_timeout,
        ))

    def dlq_stats(self, *, call_timeout: float | None = None) -> tuple[DlqReasonStats, ...]:
        """DLQ entries grouped by reason."""
        return self._run(self._aio.dlq_stats(call_timeout=call_timeout))

    def dlq_investigation_queue(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[InvestigationQueueEntry, ...]:
        """Pending DLQ entries, highest priority first."""
        return self._run(self._aio.dlq_investigation_queue(limit=limit, call_timeout=call_timeout))

    def dlq_staleness(
        self, *, limit: int | None = None, call_timeout: float | None = None
    ) -> tuple[StalenessMonitoringEntry, ...]:
        """Active tasks and how close each is to its staleness threshold."""
        return self._run(self._aio.dlq_staleness(limit=limit, call_timeout=call_timeout))

    # -- analytics and health --------------------------------------------------------------

    def performance(
        self, *, hours: int | None = None, call_timeout: float | None = None
    ) -> PerformanceMetrics:
        """System performance over the last `hours` (server default 24)."""
        return self._run(self._aio.performance(hours=hours, call_timeout=call_timeout))

    def bottlenecks(
        self,
        *,
        limit: int | None = None,
        min_executions: int | None = None,
        call_timeout: float | None = None,
    ) -> BottleneckAnalysis:
        """Slowest steps and tasks, resource use and recommendations."""
        return self._run(self._aio.bottlenecks(
            limit=limit, min_executions=min_executions, call_timeout=call_timeout
        ))

    def health(self, *, call_timeout: float | None = None) -> CheckHealthResponse:
        """Basic health ("ok" while the gateway serves)."""
        return self._run(self._aio.health(call_timeout=call_timeout))

    def readiness(self, *, call_timeout: float | None = None) -> CheckReadinessResponse:
        """Readiness with its individual checks."""
        return self._run(self._aio.readiness(call_timeout=call_timeout))

    def detailed_health(self, *, call_timeout: float | None = None) -> CheckDetailedHealthResponse:
        """Checks plus pools, queue depths, channel saturation and backpressure."""
        return self._run(self._aio.detailed_health(call_timeout=call_timeout))
