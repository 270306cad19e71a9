"""Outcomes counted and logged by whichever process's transaction decided them: a task's
outcome (the worker's record for a plain success, result processing for the rest, the
finalizer for retry timers and the readiness sweep) and the results a record applied."""

from __future__ import annotations

from typing import Any

import structlog

from tasker_shared.runtime.metrics import DLQ_ENTRIES, TASKS_FINISHED, TRANSITIONS
from tasker_shared.store.tasks import count_evaluation

log = structlog.get_logger("tasker.outcomes")

# evaluate_task_v1's action -> the task's final state
FINISHED = {"completed": "complete", "blocked": "blocked_by_failures", "error": "error"}


def report_outcome(evaluation: dict[str, Any], *, task_uuid: object,
                   reason: str | None = None) -> bool:
    """Count and log a committed evaluation that decided its task's outcome; True if it did."""
    action = str(evaluation.get("action"))
    if action not in FINISHED:
        return False
    TASKS_FINISHED.labels(FINISHED[action]).inc()
    if evaluation.get("dlq_entry") is not None:  # failed: handed to operators
        DLQ_ENTRIES.labels("max_retries_exceeded").inc()
    log.info("task_finalized", action=action, task_uuid=str(task_uuid), reason=reason,
             state=evaluation.get("state"), dlq_entry=evaluation.get("dlq_entry"))
    return True


def count_record(outcomes: dict[str, Any]) -> dict[str, str]:
    """A committed `record_step_results_v1` answer: counts the step results it applied and
    the task transitions and outcomes their evaluations made (result processing counts its
    own); returns the per-step statuses ('recorded' / 'stale')."""
    statuses = dict(outcomes)
    applied = statuses.pop("applied", None) or []
    evaluations = statuses.pop("tasks", None) or {}
    if applied:
        TRANSITIONS.labels("step", "complete").inc(len(applied))
    for task_uuid, evaluation in evaluations.items():
        count_evaluation(evaluation)
        report_outcome(evaluation, task_uuid=task_uuid, reason="step_result")
    return statuses
