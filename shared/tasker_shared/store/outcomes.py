"""A task's outcome as an evaluation reports it: counted and logged by whichever service's
transaction decided it (result processing for a task its last result finished, the
finalizer for retry timers and the readiness sweep)."""

from __future__ import annotations

from typing import Any

import structlog

from tasker_shared.runtime.metrics import DLQ_ENTRIES, TASKS_FINISHED

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
