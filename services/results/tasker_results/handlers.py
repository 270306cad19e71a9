"""Result processing: apply each step result in one transaction with everything it causes —
the step's final transition, decision/batch steps, newly ready steps, the task's outcome
when nothing is left to run (no separate finalization hop), retry timers."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg.types.json import Jsonb

from tasker_results.decide import Decision, decide
from tasker_shared.contracts.payloads import StepMessage
from tasker_shared.db.database import Conn
from tasker_shared.domain.dynamic import TEMPLATE_STEP_KEY, DynamicPlan, decision_warnings, plan_batches, plan_decision
from tasker_shared.domain.states import StepEvent, StepState
from tasker_shared.domain.template import TaskTemplate
from tasker_shared.errors import ValidationError
from tasker_shared.queue import pgmq
from tasker_shared.queue.processor import AfterCommit, Envelope
from tasker_shared.runtime.metrics import RETRIES, TRANSITIONS
from tasker_shared.runtime.settings import Settings
from tasker_shared.runtime.tracing import inject_headers, message_span
from tasker_shared.store.outcomes import report_outcome
from tasker_shared.store.tasks import count_evaluation
from tasker_shared.store.templates import TemplateCache

log = structlog.get_logger("tasker.results")

_AWAITING = (StepState.ENQUEUED_FOR_ORCHESTRATION, StepState.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION)


def lock_result_messages(
    conn: Conn, queue: str, ids: list[int] | None, limit: int
) -> list[pgmq.RawMessage]:
    """The results queue's lock: the messages and, locked with them, the steps they name;
    one naming a step that does not exist is set aside before the batch is handled."""
    return pgmq.unknown_set_aside(
        pgmq.lock_messages_with(conn, "tasker.lock_step_result_messages_v1", queue, ids,
                                limit),
        key="step_uuid", what="step")


@dataclass(kw_only=True, slots=True)
class _Pending:
    """A result decided on, waiting for the batch's apply call."""

    row: dict[str, Any]
    decision: Decision
    namespace: str
    fail_fast: bool
    headers: dict[str, Any] = field(default_factory=dict)


class ResultHandlers:
    """`handle_step_results` for the transactional consumer."""

    def __init__(self, *, processor_uuid: UUID, settings: Settings) -> None:
        self.processor_uuid = processor_uuid
        self.settings = settings
        self.templates = TemplateCache()
        self._resolved: dict[UUID, tuple[datetime, TaskTemplate]] = {}
        self.applied = 0
        self.duplicates = 0
        self.finalized = 0

    def handle_step_results(
        self, conn: Conn, batch: list[Envelope[StepMessage]]
    ) -> AfterCommit | None:
        """Decide on every result of the batch, then apply the decisions, evaluate the tasks
        they moved and cancel fail_fast siblings in ONE call. The steps were locked with
        their messages (`lock_step_result_messages`): a result delivered twice at once is
        applied once, the other copy waits and then finds the step no longer awaiting."""
        pending: list[_Pending] = []
        seen: set[UUID] = set()
        for envelope in batch:
            row = envelope.row
            if row is None or row["step_uuid"] is None:
                pgmq.set_aside(conn, "orchestration_step_results", envelope.msg_id,
                               f"unknown step {envelope.payload.step_uuid}")
                continue
            if row["step_uuid"] in seen:  # the same result twice in one batch
                self.duplicates += 1
                continue
            seen.add(row["step_uuid"])
            with message_span("results.step_result", envelope.headers, attributes={
                    "tasker.task_uuid": str(row["task_uuid"]),
                    "tasker.step_uuid": str(row["step_uuid"]),
                    "tasker.step_name": str(row["step_name"])}):
                item = self._decide(conn, row)
                if item is not None:
                    item.headers = inject_headers(envelope.headers)
                    pending.append(item)
        return self._apply(conn, pending) if pending else None

    def _decide(self, conn: Conn, row: dict[str, Any]) -> _Pending | None:
        state = StepState(row["current_state"])
        if state not in _AWAITING:
            self.duplicates += 1
            log.info("duplicate_result", action="skip", step_uuid=str(row["step_uuid"]),
                     state=state)
            return None
        template = self._template(conn, row)
        inputs = row["inputs"] or {}
        template_step = inputs.get(TEMPLATE_STEP_KEY) or row["step_name"]
        decision = decide(state=state, results=row["results"], attempts=row["attempts"],
                          max_attempts=row["max_attempts"], backoff=self.settings.backoff)
        strategy = (inputs.get("batch_metadata") or {}).get("failure_strategy")
        if decision.event is StepEvent.FAIL and strategy == "continue_on_failure":
            # The worker's failure stays visible in its results; convergence still runs.
            decision = Decision(event=StepEvent.COMPLETE, reason="continue_on_failure")
        elif decision.event is StepEvent.COMPLETE and template.has_step(template_step):
            decision = self._dynamic(conn, row, template, template_step, decision)
        return _Pending(row=row, decision=decision, namespace=template.namespace,
                        fail_fast=decision.event is StepEvent.FAIL and strategy == "fail_fast")

    def _template(self, conn: Conn, row: dict[str, Any]) -> TaskTemplate:
        """The task's template with this deployment's `environments` overrides applied, as
        ingestion created the task's first steps: steps created at run time (decision
        branches, batch workers, convergence steps) get the same retry settings."""
        entry = self.templates.entry(conn, row["named_task_uuid"], row["template_updated_at"])
        cached = self._resolved.get(entry.named_task_uuid)
        if cached is None or cached[0] != entry.updated_at:
            cached = (entry.updated_at,
                      entry.template.resolve_for_environment(self.settings.environment))
            self._resolved[entry.named_task_uuid] = cached
        return cached[1]

    def _apply(self, conn: Conn, pending: list[_Pending]) -> AfterCommit:
        """Send the batch's apply call; its outcome is read after the commit (in pipeline
        mode the call, the message delete and the COMMIT travel together)."""
        items = [{
            "step_uuid": str(p.row["step_uuid"]),
            "event": str(p.decision.event),
            "backoff_seconds": p.decision.backoff_seconds,
            "metadata": {"reason": p.decision.reason, "backoff_kind": p.decision.backoff_kind},
            # fail_fast: cancel the sibling batch workers that have not finished
            "cancel_siblings": ({"reason": "fail_fast", "error": p.decision.reason}
                                if p.fail_fast else None),
        } for p in pending]
        by_task: dict[UUID, dict[str, Any]] = {}
        for p in pending:
            by_task.setdefault(p.row["task_uuid"], p.headers)
        with ExitStack() as spans:
            headers: dict[str, Any] = {}
            for task_uuid, task_headers in sorted(by_task.items(), key=lambda kv: str(kv[0])):
                spans.enter_context(message_span(
                    "results.evaluate_task", task_headers,
                    attributes={"tasker.task_uuid": str(task_uuid)}))
                headers[str(task_uuid)] = inject_headers(task_headers) or None
            cursor = conn.execute(
                "SELECT tasker.apply_step_results_v1(%s::jsonb, %s::uuid, %s::jsonb) AS r",
                (Jsonb(items), self.processor_uuid, Jsonb(headers)))
        return lambda: self._applied(pending, cursor.fetchone())

    def _applied(self, pending: list[_Pending], row: dict[str, Any] | None) -> None:
        """Statistics, metrics and logs of a committed apply call."""
        outcome: dict[str, Any] = row["r"] if row else {}
        states = outcome.get("steps") or {}
        cancelled = outcome.get("cancelled") or {}
        for p in pending:
            step = str(p.row["step_uuid"])
            new_state = states.get(step)
            decision = p.decision
            if new_state is not None:
                self.applied += 1
                TRANSITIONS.labels("step", str(new_state)).inc()
                if decision.event is StepEvent.WAIT_FOR_RETRY:
                    RETRIES.labels(p.namespace).inc()
                if step in cancelled:
                    log.info("batch_fail_fast", action="cancel_siblings", step_uuid=step,
                             task_uuid=str(p.row["task_uuid"]), cancelled=cancelled[step])
            log.info("step_result_applied", action=str(decision.event), step_uuid=step,
                     task_uuid=str(p.row["task_uuid"]), reason=decision.reason,
                     backoff_seconds=decision.backoff_seconds, applied=new_state is not None)
        for task_uuid, evaluation in (outcome.get("tasks") or {}).items():
            count_evaluation(evaluation)
            if report_outcome(evaluation, task_uuid=task_uuid, reason="step_result"):
                self.finalized += 1

    def _dynamic(self, conn: Conn, row: dict[str, Any], template: TaskTemplate,
                 template_step: str, decision: Decision) -> Decision:
        step = template.step(template_step)
        result = (row["results"] or {}).get("result") or {}
        if not isinstance(result, dict):
            return decision
        try:
            plan: DynamicPlan | None = None
            if step.is_decision and "decision_point_outcome" in result:
                if not self.settings.decisions.enabled:
                    return decision
                plan = plan_decision(
                    template, template_step, result["decision_point_outcome"],
                    self._existing(conn, row["task_uuid"]),
                    max_steps=self.settings.decisions.max_steps_per_decision,
                    max_depth=self.settings.decisions.max_decision_depth)
                for warning in decision_warnings(
                        template, template_step, plan,
                        warn_steps=self.settings.decisions.warn_threshold_steps,
                        warn_depth=self.settings.decisions.warn_threshold_depth):
                    log.warning("decision_near_limits", action="decision",
                                step_uuid=str(row["step_uuid"]), task_uuid=str(row["task_uuid"]),
                                reason=warning)
            elif step.is_batchable and "batch_processing_outcome" in result:
                if not self.settings.batches.enabled:
                    return decision
                plan = plan_batches(
                    template, template_step, result["batch_processing_outcome"],
                    self._existing(conn, row["task_uuid"]),
                    max_batches=self.settings.batches.max_parallel_batches)
        except ValidationError as exc:
            self._record_plan_error(conn, row, str(exc))
            return Decision(event=StepEvent.FAIL, reason=str(exc))
        if plan is not None and not plan.empty:
            try:
                with conn.transaction():  # a savepoint: a rejected plan leaves nothing behind
                    conn.execute("SELECT tasker.create_steps_v1(%s::uuid, %s::jsonb, %s::jsonb)",
                                 (row["task_uuid"], Jsonb(plan.steps), Jsonb(plan.edges)))
            except psycopg.Error as exc:
                if exc.sqlstate != "TK400":  # a cycle; anything else is not the plan's fault
                    raise
                message = (f"step '{template_step}': its steps cannot be created: "
                           f"{exc.diag.message_primary or exc}")
                self._record_plan_error(conn, row, message)
                return Decision(event=StepEvent.FAIL, reason=message)
        return decision

    @staticmethod
    def _existing(conn: Conn, task_uuid: UUID) -> list[str]:
        return [
            r["name"] for r in conn.execute(
                "SELECT ns.name FROM tasker.workflow_steps ws JOIN tasker.named_steps ns"
                " ON ns.named_step_uuid = ws.named_step_uuid WHERE ws.task_uuid = %s",
                (task_uuid,))
        ]

    @staticmethod
    def _record_plan_error(conn: Conn, row: dict[str, Any], message: str) -> None:
        conn.execute(
            "UPDATE tasker.workflow_steps SET results = jsonb_set(COALESCE(results, '{}'),"
            " '{error}', %s) WHERE workflow_step_uuid = %s",
            (Jsonb({"message": message, "error_type": "validation_error", "retryable": False}),
             row["step_uuid"]),
        )
