"""Result processing: apply each step result in one transaction with everything it causes —
the step's final transition, decision/batch steps, newly ready steps, finalization requests."""

from __future__ import annotations

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
from tasker_shared.queue.processor import Envelope
from tasker_shared.runtime.metrics import RETRIES, TRANSITIONS
from tasker_shared.runtime.settings import Settings
from tasker_shared.runtime.tracing import inject_headers, message_span
from tasker_shared.store.tasks import evaluate_task
from tasker_shared.store.templates import TemplateCache

log = structlog.get_logger("tasker.results")

_AWAITING = (StepState.ENQUEUED_FOR_ORCHESTRATION, StepState.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION)


class ResultHandlers:
    """`handle_step_results` for the transactional consumer."""

    def __init__(self, *, processor_uuid: UUID, settings: Settings) -> None:
        self.processor_uuid = processor_uuid
        self.settings = settings
        self.templates = TemplateCache()
        self.applied = 0
        self.duplicates = 0

    def handle_step_results(self, conn: Conn, batch: list[Envelope[StepMessage]]) -> None:
        ids = [e.payload.step_uuid for e in batch]
        rows = {
            r["step_uuid"]: r
            # locked: a result delivered twice at once is applied once, the other copy waits
            # and then finds the step no longer awaiting orchestration
            for r in conn.execute("SELECT * FROM tasker.lock_step_results_v1(%s::uuid[])", (ids,))
        }
        touched: dict[UUID, dict[str, Any] | None] = {}
        seen: set[UUID] = set()
        for envelope in batch:
            row = rows.get(envelope.payload.step_uuid)
            if row is None:
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
                if self._apply(conn, row):
                    touched[row["task_uuid"]] = inject_headers(envelope.headers)
        for task_uuid, headers in sorted(touched.items(), key=lambda item: str(item[0])):
            with message_span("results.evaluate_task", headers,
                              attributes={"tasker.task_uuid": str(task_uuid)}):
                evaluate_task(conn, task_uuid, processor=self.processor_uuid, finalize=False,
                              headers=inject_headers(headers) or None)

    def _apply(self, conn: Conn, row: dict[str, Any]) -> bool:
        state = StepState(row["current_state"])
        if state not in _AWAITING:
            self.duplicates += 1
            log.info("duplicate_result", action="skip", step_uuid=str(row["step_uuid"]),
                     state=state)
            return False
        template = self.templates.by_uuid(conn, row["named_task_uuid"], row["template_updated_at"])
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
        new_state = conn.execute(
            "SELECT tasker.apply_step_result_v1(%s::uuid, %s::text, %s::numeric, %s::jsonb) AS s",
            (row["step_uuid"], str(decision.event), decision.backoff_seconds,
             Jsonb({"reason": decision.reason, "backoff_kind": decision.backoff_kind})),
        ).fetchone()
        applied = new_state is not None and new_state["s"] is not None
        if applied:
            self.applied += 1
            TRANSITIONS.labels("step", str(new_state["s"])).inc()  # type: ignore[index]
            if decision.event is StepEvent.WAIT_FOR_RETRY:
                RETRIES.labels(template.namespace).inc()
            if decision.event is StepEvent.FAIL and strategy == "fail_fast":
                self._skip_remaining_batches(conn, row, decision.reason)
        log.info("step_result_applied", action=str(decision.event),
                 step_uuid=str(row["step_uuid"]), task_uuid=str(row["task_uuid"]),
                 reason=decision.reason, backoff_seconds=decision.backoff_seconds)
        return applied

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

    @staticmethod
    def _skip_remaining_batches(conn: Conn, row: dict[str, Any], reason: str | None) -> None:
        """fail_fast: cancel the sibling batch workers that have not finished."""
        cancelled = conn.execute(
            "SELECT tasker.cancel_batch_siblings_v1(%s::uuid, %s::jsonb) AS n",
            (row["step_uuid"], Jsonb({"reason": "fail_fast", "error": reason})),
        ).fetchone()
        log.info("batch_fail_fast", action="cancel_siblings", step_uuid=str(row["step_uuid"]),
                 task_uuid=str(row["task_uuid"]), cancelled=cancelled["n"] if cancelled else 0)
