"""Runs claimed steps: resolve the handler, build the context, run it (`async def` on the
asyncio handler loop or, when marked, under Trio; sync in a thread) with a timeout and
cancellable by the worker, follow checkpoint yields, record the result."""

from __future__ import annotations

import dataclasses
import time
import traceback
from datetime import UTC, datetime

import structlog
import trio

from tasker_shared.db.database import Database
from tasker_shared.domain.dynamic import TEMPLATE_STEP_KEY
from tasker_shared.domain.template import TaskTemplate
from tasker_shared.domain.template.model import EventDeclaration
from tasker_shared.runtime.metrics import STEP_DURATION, STEP_RESULTS
from tasker_shared.runtime.settings import WorkerSettings
from tasker_shared.runtime.tracing import inject_headers, message_span, tracing_enabled
from tasker_worker.runtime.aio import run_on_asyncio
from tasker_worker.runtime.cancellation import CHECK_SECONDS, RunControl, RunningSteps
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome, save_checkpoint
from tasker_worker.runtime.heartbeat import Heartbeats
from tasker_worker.runtime.templates import WorkerTemplates
from tasker_worker.sdk.context import StepContext
from tasker_worker.sdk.errors import HandlerNotFound
from tasker_worker.sdk.handlers import HandlerRegistry, ResolvedHandler
from tasker_worker.sdk.results import StepResult, failure, failure_from_exception

log = structlog.get_logger("tasker.worker")

MAX_CHECKPOINT_ROUNDS = 10_000


class StepExecutor:
    """Executes one claimed step at a time per call; shared by the worker's executor tasks."""

    def __init__(
        self,
        *,
        db: Database,
        registry: HandlerRegistry,
        templates: WorkerTemplates,
        settings: WorkerSettings,
        worker_id: str,
        cancel_check_seconds: float = CHECK_SECONDS,
        lease_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.registry = registry
        self.templates = templates
        self.settings = settings
        self.worker_id = worker_id
        self.completed = 0
        self.failed = 0
        self.stale = 0
        self.running = RunningSteps(cancel_check_seconds)
        self.heartbeats = Heartbeats(db, lease_seconds=lease_seconds, worker_id=worker_id)
        # Sync handlers get threads of their own, as many as steps may run (Trio's default
        # limiter, 40 threads, is shared with everything else that uses threads).
        self._threads = trio.CapacityLimiter(settings.max_concurrent_handlers)

    async def watch_cancellations(self) -> None:
        """Run alongside the executors: cancels the handler runs whose step was cancelled,
        resolved or re-claimed (see `RunningSteps`), and writes the handlers' heartbeats
        (which cancel a run as soon as they find its claim lost)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.heartbeats.serve)
            await self.running.watch(self.db)

    async def execute(self, step: ClaimedStep) -> StepOutcome:
        """Run the step's handler; the caller records the outcome (in a batch).

        Traced as `worker.execute_step` (parent: the span that enqueued the step); the
        outcome's headers carry this span to result processing.
        """
        with message_span("worker.execute_step", step.headers, attributes={
                "tasker.task_uuid": str(step.task_uuid), "tasker.step_uuid": str(step.step_uuid),
                "tasker.step_name": step.step_name, "tasker.namespace": step.namespace,
                "tasker.attempt": step.attempt}) as current:
            outcome = await self._execute(step)
            if not tracing_enabled():
                return outcome
            current.set_attribute("tasker.success", outcome.success)
            return dataclasses.replace(outcome, step=dataclasses.replace(
                step, headers=inject_headers(step.headers)))

    async def _execute(self, step: ClaimedStep) -> StepOutcome:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        handler_name = "?"
        declared: tuple[EventDeclaration, ...] = ()
        try:
            template = await self.templates.get(step.namespace, step.task_name, step.task_version,
                                                step.named_task_uuid)
            template_step = step.inputs.get(TEMPLATE_STEP_KEY) or step.step_name
            spec = template.step(template_step) if template.has_step(template_step) else None
            if spec is None:
                raise HandlerNotFound(template_step, f"template {template.key} has no such step")
            handler_name = spec.handler.callable
            declared = spec.publishes_events
            resolved = self.registry.resolve(spec.handler.callable, spec.handler.method,
                                             resolver=spec.handler.resolver)
            timeout = float(spec.timeout_seconds or self.settings.handler_timeout_seconds)
            result = await self._run(step, template, template_step, resolved, timeout)
        except HandlerNotFound as exc:
            result = failure(str(exc), error_type="handler_not_found", retryable=False)
        except Exception as exc:
            result = failure_from_exception(exc, traceback_lines=traceback.format_exception(exc))
        elapsed_ms = int((time.perf_counter() - t0) * 1000)
        STEP_DURATION.labels(step.namespace, handler_name).observe(elapsed_ms / 1000)
        payload = result.to_execution_result(
            step_uuid=str(step.step_uuid), execution_time_ms=elapsed_ms, started_at=started_at,
            completed_at=datetime.now(UTC), worker_id=self.worker_id)
        return StepOutcome(step=step, success=result.success, payload=payload,
                           handler=handler_name, error=result.error_message, declared=declared)

    def count(self, outcome: StepOutcome, recorded: str) -> None:
        """Statistics, metrics and a log line for a recorded outcome."""
        step = outcome.step
        if recorded == "stale":
            self.stale += 1
        elif outcome.success:
            self.completed += 1
        else:
            self.failed += 1
        STEP_RESULTS.labels(step.namespace, "stale" if recorded == "stale" else
                            ("success" if outcome.success else "failure")).inc()
        log.info("step_executed", action="execute", handler=outcome.handler,
                 success=outcome.success, outcome=recorded, attempt=step.attempt,
                 task_uuid=str(step.task_uuid), step_uuid=str(step.step_uuid),
                 correlation_id=str(step.correlation_id), error=outcome.error)

    async def _run(self, step: ClaimedStep, template: TaskTemplate, template_step: str,
                   resolved: ResolvedHandler, limit_seconds: float) -> StepResult:
        checkpoint = step.checkpoint
        spec = template.step(template_step)
        for _ in range(MAX_CHECKPOINT_ROUNDS):
            deadline = time.time() + limit_seconds
            control = RunControl()
            sink = self.heartbeats.for_run(step, control)
            context = StepContext(
                task_uuid=str(step.task_uuid), step_uuid=str(step.step_uuid),
                correlation_id=str(step.correlation_id), step_name=step.step_name,
                handler_name=spec.handler.callable, namespace=step.namespace,
                task_name=step.task_name, task_version=step.task_version,
                task_context=step.task_context, step_inputs=step.inputs,
                step_config=dict(spec.handler.initialization),
                dependency_results=step.dependency_results, attempt=step.attempt,
                max_attempts=step.max_attempts, deadline=deadline, checkpoint=checkpoint,
                cancel_token=control.token, heartbeat_sink=sink)
            self.running.add(step.step_uuid, step.attempt, control)
            try:
                result = await self._invoke(resolved, context, limit_seconds, control)
            finally:
                sink.close()
                self.running.remove(step.step_uuid, step.attempt, control)
            if not result.is_checkpoint or control.token.cancelled:
                return result
            checkpoint = await self.db.run_autocommit(
                save_checkpoint, step, cursor=result.result.get("cursor"),
                items_processed=int(result.result.get("items_processed") or 0),
                accumulated=result.result.get("accumulated_results"))
            if checkpoint is None:
                # Cancelled (fail_fast) or re-claimed: stop; the result would be refused.
                log.info("checkpoint_refused", action="abandon", step_uuid=str(step.step_uuid),
                         attempt=step.attempt)
                return failure("checkpoint refused: the step is no longer in progress under "
                               f"attempt {step.attempt}", error_type="checkpoint_refused",
                               retryable=False)
        return failure("checkpoint loop did not finish", error_type="handler_error",
                       retryable=False)

    async def _invoke(self, resolved: ResolvedHandler, context: StepContext,
                      limit_seconds: float, control: RunControl) -> StepResult:
        """Run the handler until it returns, its timeout, or `control.cancel` (the watcher).
        A cancelled or timed-out handler is told through its context before it is
        cancelled, so it sees `context.cancelled` wherever it notices."""
        result = None
        control.expire_after(limit_seconds)
        try:
            with control.scope:
                result = await self._result_of(resolved, context)
        except BaseException:  # cancelled from outside: the worker is stopping
            control.token.cancel("the worker is stopping")
            raise
        control.settle()
        if result is not None and not control.token.cancelled:
            return result
        if control.timed_out:
            return failure(f"handler {resolved.callable_name} timed out after "
                           f"{limit_seconds:g}s", error_type="handler_timeout", retryable=True)
        # The step was taken from this run: whatever is returned is refused as stale.
        return failure(f"handler {resolved.callable_name} cancelled: {control.token.reason}",
                       error_type="cancelled", retryable=False)

    async def _result_of(self, resolved: ResolvedHandler, context: StepContext) -> StepResult:
        try:
            return await self._call(resolved, context)
        except HandlerNotFound as exc:
            return failure(str(exc), error_type="handler_not_found", retryable=False)
        except Exception as exc:
            return failure_from_exception(exc, traceback_lines=traceback.format_exception(exc))

    async def _call(self, resolved: ResolvedHandler, context: StepContext) -> StepResult:
        runtime = resolved.runtime
        if runtime == "asyncio":
            return await run_on_asyncio(resolved.invoke_async(context))
        if runtime == "trio":
            return await resolved.invoke_async(context)
        return await trio.to_thread.run_sync(resolved.invoke_sync, context,
                                             abandon_on_cancel=True, limiter=self._threads)
