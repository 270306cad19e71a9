"""Runs claimed steps: resolve the handler, build the context, run it (async under Trio,
sync in a thread) with a timeout, follow checkpoint yields, record the result."""

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
from tasker_shared.errors import TaskerError
from tasker_shared.runtime.metrics import STEP_DURATION, STEP_RESULTS
from tasker_shared.runtime.settings import WorkerSettings
from tasker_shared.runtime.tracing import inject_headers, message_span, tracing_enabled
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome, save_checkpoint
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
    ) -> None:
        self.db = db
        self.registry = registry
        self.templates = templates
        self.settings = settings
        self.worker_id = worker_id
        self.completed = 0
        self.failed = 0
        self.stale = 0

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
        try:
            template = await self.templates.get(step.namespace, step.task_name, step.task_version,
                                                step.named_task_uuid)
            template_step = step.inputs.get(TEMPLATE_STEP_KEY) or step.step_name
            spec = template.step(template_step) if template.has_step(template_step) else None
            if spec is None:
                raise HandlerNotFound(template_step, f"template {template.key} has no such step")
            handler_name = spec.handler.callable
            resolved = self.registry.resolve(spec.handler.callable, spec.handler.method)
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
                           handler=handler_name, error=result.error_message)

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
            context = StepContext(
                task_uuid=str(step.task_uuid), step_uuid=str(step.step_uuid),
                correlation_id=str(step.correlation_id), step_name=step.step_name,
                handler_name=spec.handler.callable, namespace=step.namespace,
                task_name=step.task_name, task_version=step.task_version,
                task_context=step.task_context, step_inputs=step.inputs,
                step_config=dict(spec.handler.initialization),
                dependency_results=step.dependency_results, attempt=step.attempt,
                max_attempts=step.max_attempts, deadline=deadline, checkpoint=checkpoint)
            result = await self._invoke(resolved, context, limit_seconds)
            if not result.is_checkpoint:
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
                      limit_seconds: float) -> StepResult:
        with trio.move_on_after(limit_seconds) as scope:
            try:
                if resolved.is_async:
                    return await resolved.invoke_async(context)
                return await trio.to_thread.run_sync(resolved.invoke_sync, context,
                                                     abandon_on_cancel=True)
            except TaskerError as exc:
                if isinstance(exc, HandlerNotFound):
                    raise
                return failure_from_exception(
                    exc, traceback_lines=traceback.format_exception(exc))
            except Exception as exc:
                return failure_from_exception(
                    exc, traceback_lines=traceback.format_exception(exc))
        assert scope.cancelled_caught
        return failure(f"handler {resolved.callable_name} timed out after {limit_seconds:g}s",
                       error_type="handler_timeout", retryable=True)
