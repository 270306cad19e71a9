"""Following a task to an outcome (`task watch`, `task create --watch`): each step's state as
it changes, a failed step's error and its next retry, then the final results, and an exit
status naming the outcome.

The watch ends when the task is final (complete, error, cancelled, resolved manually) or
needs an operator: blocked by failures once none of its steps is still running.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasker_cli.jsonout import enum_text, message_json
from tasker_cli.remote import Output
from tasker_cli.render import final_table, outcome_line, step_failure_line, update_line
from tasker_client import SyncTaskerClient, json_value
from tasker_client.proto.tasker.v1 import TaskStatusUpdate

# The outcome of a watch and its exit status (documented in `tasker task watch --help`).
EXIT_CODES: dict[str, int] = {
    "complete": 0,
    "error": 3,
    "cancelled": 4,
    "blocked_by_failures": 5,
    "resolved_manually": 6,
}
EXIT_FAILED = 1  # the watch itself failed: gateway unreachable, task not found, deadline
EXIT_STATUS_HELP = (
    "exit status: 0 complete, 3 error, 4 cancelled, 5 blocked by failures (a step failed for "
    "good: resolve it with `tasker step resolve`), 6 resolved manually, 1 the task could not "
    "be followed (gateway error, not found, --timeout passed), 2 usage error, 130 interrupted, "
    "141 output closed"
)
FINAL_TASK_STATES = frozenset({"complete", "error", "cancelled", "resolved_manually"})
NEEDS_OPERATOR = "blocked_by_failures"
# Steps a worker or the orchestration still has in hand.
RUNNING_STEP_STATES = frozenset({
    "enqueued", "in_progress", "enqueued_for_orchestration",
    "enqueued_as_error_for_orchestration",
})
FAILED_STEP_STATES = frozenset({"error", "waiting_for_retry"})


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFailure:
    """A failed attempt of a step: its error and, when it will be retried, when."""

    step_uuid: str
    name: str
    state: str
    attempts: int
    max_attempts: int
    message: str
    error_type: str | None
    retryable: bool
    next_retry_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"event": "step_failure", "step_uuid": self.step_uuid, "step_name": self.name,
                "state": self.state, "attempts": self.attempts,
                "max_attempts": self.max_attempts, "message": self.message,
                "error_type": self.error_type, "retryable": self.retryable,
                "next_retry_at": self.next_retry_at}


def step_failure(client: SyncTaskerClient, task_uuid: str, step_uuid: str,
                 state: str) -> StepFailure:
    """The error a step's last attempt recorded (from its results) and its next retry time;
    `state` is the one the failure put it in (it may have moved on since)."""
    step = client.get_step(task_uuid, step_uuid)
    results = json_value(step.results_json, step.results)
    found = results.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = error.get("error_type")
    return StepFailure(
        step_uuid=step_uuid, name=step.name, state=state,
        attempts=int(step.attempts), max_attempts=int(step.max_attempts),
        message=str(error.get("message") or "(no error message recorded)"),
        error_type=kind if isinstance(kind, str) else None,
        retryable=error.get("retryable") is True, next_retry_at=step.next_retry_at)


class Watch:
    """One watch of one task; `run()` returns the exit status."""

    def __init__(self, client: SyncTaskerClient, task_uuid: str, out: Output, *,
                 show_steps: bool = True, timeout: float | None = None) -> None:
        self.client = client
        self.task_uuid = task_uuid
        self.out = out
        self.show_steps = show_steps
        self.timeout = timeout
        self.task_state: str | None = None
        self.steps: dict[str, tuple[str, str]] = {}  # step uuid -> (name, state)
        self.failures: dict[str, StepFailure] = {}  # step uuid -> its latest failure

    def run(self) -> int:
        updates: Iterator[TaskStatusUpdate] = self.client.watch_task(
            self.task_uuid, include_steps=True, call_timeout=self.timeout)
        try:
            for update in updates:
                self._apply(update)
                if self.settled():
                    break
        finally:
            close = getattr(updates, "close", None)
            if close is not None:
                close()
        return self._finish()

    def settled(self) -> bool:
        """Final, or blocked by failures with nothing left running."""
        if self.task_state in FINAL_TASK_STATES:
            return True
        return self.task_state == NEEDS_OPERATOR and not any(
            state in RUNNING_STEP_STATES for _, state in self.steps.values())

    def _apply(self, update: TaskStatusUpdate) -> None:
        if update.step_uuid and update.step_state is not None:
            name, state = update.step_name or update.step_uuid, enum_text(update.step_state) or ""
            self.steps[update.step_uuid] = (name, state)
            if self.show_steps:
                self._show(update)
            if state in FAILED_STEP_STATES:
                self._failed(update.step_uuid, state)
            return
        if update.task_state is not None:
            changed = enum_text(update.task_state) != self.task_state
            self.task_state = enum_text(update.task_state)
            if changed:
                self._show(update)

    def _show(self, update: TaskStatusUpdate) -> None:
        if self.out.json:
            self.out.emit({"event": "update", **message_json(update)})
        else:
            self.out.console.print(update_line(update), soft_wrap=True)

    def _failed(self, step_uuid: str, state: str) -> None:
        failure = step_failure(self.client, self.task_uuid, step_uuid, state)
        self.failures[step_uuid] = failure
        if self.out.json:
            self.out.emit(failure.as_json())
        else:
            self.out.console.print(step_failure_line(failure, now=datetime.now(UTC)), soft_wrap=True)

    def _finish(self) -> int:
        task = self.client.get_task(self.task_uuid)
        status = enum_text(task.status) or "unknown"
        results = self.client.get_task_context(self.task_uuid).step_results
        rows = []
        for step in task.steps:
            state = enum_text(step.current_state) or ""
            failure = self.failures.get(step.workflow_step_uuid)
            if state == "error" and failure is None:  # failed before this watch began
                failure = step_failure(self.client, self.task_uuid, step.workflow_step_uuid,
                                       state)
            stored = results.get(step.name)
            rows.append({
                "step_uuid": step.workflow_step_uuid, "name": step.name, "state": state,
                "attempts": int(step.attempts), "max_attempts": int(step.max_attempts),
                "result": stored.get("result") if isinstance(stored, dict) and state != "error"
                else None,
                "error": failure.message if failure is not None and state in FAILED_STEP_STATES
                else None,
            })
        code = EXIT_CODES.get(status, EXIT_FAILED)
        if self.out.json:
            self.out.emit({"event": "outcome", "task_uuid": self.task_uuid, "status": status,
                           "exit_code": code, "steps": rows})
        else:
            self.out.console.print(final_table(rows))
            self.out.console.print(outcome_line(self.task_uuid, status, rows), soft_wrap=True)
        return code
