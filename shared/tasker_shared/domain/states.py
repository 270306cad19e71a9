"""Task and step state machines: the states, events and transition tables (SPEC §2).

The same tables are loaded into SQL by the migrations (`tasker.task_state_transitions`,
`tasker.step_state_transitions`) and enforced there by the compare-and-swap functions;
a property test checks the two agree.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    PENDING = "pending"
    INITIALIZING = "initializing"
    ENQUEUING_STEPS = "enqueuing_steps"
    STEPS_IN_PROCESS = "steps_in_process"
    EVALUATING_RESULTS = "evaluating_results"
    WAITING_FOR_DEPENDENCIES = "waiting_for_dependencies"
    WAITING_FOR_RETRY = "waiting_for_retry"
    BLOCKED_BY_FAILURES = "blocked_by_failures"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESOLVED_MANUALLY = "resolved_manually"


class StepState(StrEnum):
    PENDING = "pending"
    ENQUEUED = "enqueued"
    IN_PROGRESS = "in_progress"
    ENQUEUED_FOR_ORCHESTRATION = "enqueued_for_orchestration"
    ENQUEUED_AS_ERROR_FOR_ORCHESTRATION = "enqueued_as_error_for_orchestration"
    WAITING_FOR_RETRY = "waiting_for_retry"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESOLVED_MANUALLY = "resolved_manually"


class TaskEvent(StrEnum):
    START = "start"
    READY_STEPS_FOUND = "ready_steps_found"
    NO_STEPS_FOUND = "no_steps_found"
    NO_DEPENDENCIES_READY = "no_dependencies_ready"
    STEPS_ENQUEUED = "steps_enqueued"
    ENQUEUE_FAILED = "enqueue_failed"
    STEP_COMPLETED = "step_completed"
    ALL_STEPS_COMPLETED = "all_steps_completed"
    STEP_FAILED = "step_failed"
    ALL_STEPS_SUCCESSFUL = "all_steps_successful"
    PERMANENT_FAILURE = "permanent_failure"
    DEPENDENCIES_READY = "dependencies_ready"
    RETRY_READY = "retry_ready"
    GIVE_UP = "give_up"
    MANUAL_RESOLUTION = "manual_resolution"
    CANCEL = "cancel"
    STALENESS_TIMEOUT = "staleness_timeout"
    RESUME = "resume"  # an operator fixed a step of a task in error


class StepEvent(StrEnum):
    ENQUEUE = "enqueue"
    START = "start"
    RECLAIM = "reclaim"
    ENQUEUE_FOR_ORCHESTRATION = "enqueue_for_orchestration"
    ENQUEUE_AS_ERROR_FOR_ORCHESTRATION = "enqueue_as_error_for_orchestration"
    COMPLETE = "complete"
    FAIL = "fail"
    WAIT_FOR_RETRY = "wait_for_retry"
    RETRY = "retry"
    RESET_FOR_RETRY = "reset_for_retry"
    CANCEL = "cancel"
    COMPLETE_MANUALLY = "complete_manually"
    RESOLVE_MANUALLY = "resolve_manually"


T = TaskState
S = StepState

TASK_TERMINAL: frozenset[TaskState] = frozenset({T.COMPLETE, T.ERROR, T.CANCELLED, T.RESOLVED_MANUALLY})
TASK_ACTIVE: frozenset[TaskState] = frozenset(
    {T.INITIALIZING, T.ENQUEUING_STEPS, T.STEPS_IN_PROCESS, T.EVALUATING_RESULTS}
)
TASK_WAITING: frozenset[TaskState] = frozenset(
    {T.WAITING_FOR_DEPENDENCIES, T.WAITING_FOR_RETRY, T.BLOCKED_BY_FAILURES}
)
TASK_PROCESSABLE: frozenset[TaskState] = frozenset(
    {T.PENDING, T.WAITING_FOR_DEPENDENCIES, T.WAITING_FOR_RETRY}
)
# States in which a task has its outcome: terminal, or blocked by failures (entered only
# once none of its steps is running or waiting for a retry; an operator must act). Watchers
# return on these.
TASK_SETTLED: frozenset[TaskState] = TASK_TERMINAL | {T.BLOCKED_BY_FAILURES}

STEP_TERMINAL: frozenset[StepState] = frozenset({S.COMPLETE, S.CANCELLED, S.RESOLVED_MANUALLY})
STEP_SATISFIES_DEPENDENCY: frozenset[StepState] = frozenset({S.COMPLETE, S.RESOLVED_MANUALLY})
STEP_IN_PIPELINE: frozenset[StepState] = frozenset(
    {
        S.ENQUEUED,
        S.IN_PROGRESS,
        S.ENQUEUED_FOR_ORCHESTRATION,
        S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION,
    }
)

_TASK_NON_TERMINAL = [s for s in TaskState if s not in TASK_TERMINAL]

TASK_TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (T.PENDING, TaskEvent.START): T.INITIALIZING,
    (T.INITIALIZING, TaskEvent.READY_STEPS_FOUND): T.ENQUEUING_STEPS,
    (T.INITIALIZING, TaskEvent.NO_STEPS_FOUND): T.COMPLETE,
    (T.INITIALIZING, TaskEvent.NO_DEPENDENCIES_READY): T.WAITING_FOR_DEPENDENCIES,
    (T.ENQUEUING_STEPS, TaskEvent.STEPS_ENQUEUED): T.STEPS_IN_PROCESS,
    (T.ENQUEUING_STEPS, TaskEvent.ENQUEUE_FAILED): T.ERROR,
    (T.STEPS_IN_PROCESS, TaskEvent.STEP_COMPLETED): T.EVALUATING_RESULTS,
    (T.STEPS_IN_PROCESS, TaskEvent.ALL_STEPS_COMPLETED): T.EVALUATING_RESULTS,
    (T.STEPS_IN_PROCESS, TaskEvent.STEP_FAILED): T.WAITING_FOR_RETRY,
    (T.EVALUATING_RESULTS, TaskEvent.ALL_STEPS_SUCCESSFUL): T.COMPLETE,
    (T.EVALUATING_RESULTS, TaskEvent.READY_STEPS_FOUND): T.ENQUEUING_STEPS,
    (T.EVALUATING_RESULTS, TaskEvent.NO_DEPENDENCIES_READY): T.WAITING_FOR_DEPENDENCIES,
    (T.EVALUATING_RESULTS, TaskEvent.STEP_FAILED): T.WAITING_FOR_RETRY,
    (T.EVALUATING_RESULTS, TaskEvent.PERMANENT_FAILURE): T.BLOCKED_BY_FAILURES,
    (T.WAITING_FOR_DEPENDENCIES, TaskEvent.DEPENDENCIES_READY): T.EVALUATING_RESULTS,
    (T.WAITING_FOR_RETRY, TaskEvent.RETRY_READY): T.ENQUEUING_STEPS,
    (T.WAITING_FOR_RETRY, TaskEvent.DEPENDENCIES_READY): T.EVALUATING_RESULTS,
    (T.BLOCKED_BY_FAILURES, TaskEvent.GIVE_UP): T.ERROR,
    (T.BLOCKED_BY_FAILURES, TaskEvent.MANUAL_RESOLUTION): T.RESOLVED_MANUALLY,
    (T.BLOCKED_BY_FAILURES, TaskEvent.DEPENDENCIES_READY): T.EVALUATING_RESULTS,
    (T.ERROR, TaskEvent.RESUME): T.EVALUATING_RESULTS,
    (T.WAITING_FOR_DEPENDENCIES, TaskEvent.STALENESS_TIMEOUT): T.ERROR,
    (T.WAITING_FOR_RETRY, TaskEvent.STALENESS_TIMEOUT): T.ERROR,
    (T.STEPS_IN_PROCESS, TaskEvent.STALENESS_TIMEOUT): T.ERROR,
    **{(state, TaskEvent.CANCEL): T.CANCELLED for state in _TASK_NON_TERMINAL},
}

_STEP_OPERATOR_SOURCES = [s for s in StepState if s not in STEP_TERMINAL]

STEP_TRANSITIONS: dict[tuple[StepState, StepEvent], StepState] = {
    (S.PENDING, StepEvent.ENQUEUE): S.ENQUEUED,
    (S.ENQUEUED, StepEvent.START): S.IN_PROGRESS,
    (S.PENDING, StepEvent.START): S.IN_PROGRESS,
    (S.IN_PROGRESS, StepEvent.RECLAIM): S.IN_PROGRESS,
    (S.IN_PROGRESS, StepEvent.ENQUEUE_FOR_ORCHESTRATION): S.ENQUEUED_FOR_ORCHESTRATION,
    (S.IN_PROGRESS, StepEvent.ENQUEUE_AS_ERROR_FOR_ORCHESTRATION): (
        S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION
    ),
    (S.ENQUEUED_FOR_ORCHESTRATION, StepEvent.COMPLETE): S.COMPLETE,
    (S.ENQUEUED_FOR_ORCHESTRATION, StepEvent.FAIL): S.ERROR,
    (S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, StepEvent.FAIL): S.ERROR,
    (S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, StepEvent.COMPLETE): S.COMPLETE,
    (S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, StepEvent.WAIT_FOR_RETRY): S.WAITING_FOR_RETRY,
    (S.IN_PROGRESS, StepEvent.WAIT_FOR_RETRY): S.WAITING_FOR_RETRY,
    (S.ENQUEUED, StepEvent.WAIT_FOR_RETRY): S.WAITING_FOR_RETRY,
    (S.PENDING, StepEvent.WAIT_FOR_RETRY): S.WAITING_FOR_RETRY,
    (S.WAITING_FOR_RETRY, StepEvent.RETRY): S.PENDING,
    (S.ERROR, StepEvent.RETRY): S.PENDING,
    (S.ERROR, StepEvent.RESET_FOR_RETRY): S.PENDING,
    (S.IN_PROGRESS, StepEvent.COMPLETE): S.COMPLETE,
    (S.IN_PROGRESS, StepEvent.FAIL): S.ERROR,
    (S.PENDING, StepEvent.FAIL): S.ERROR,
    (S.ENQUEUED, StepEvent.FAIL): S.ERROR,
    **{(state, StepEvent.CANCEL): S.CANCELLED for state in _STEP_OPERATOR_SOURCES},
    **{(state, StepEvent.COMPLETE_MANUALLY): S.COMPLETE for state in _STEP_OPERATOR_SOURCES},
    **{
        (state, StepEvent.RESOLVE_MANUALLY): S.RESOLVED_MANUALLY
        for state in _STEP_OPERATOR_SOURCES
    },
}


def next_task_state(current: TaskState, event: TaskEvent) -> TaskState | None:
    """The state `event` leads to from `current`, or None when the table refuses it."""
    return TASK_TRANSITIONS.get((current, event))


def next_step_state(current: StepState, event: StepEvent) -> StepState | None:
    """The state `event` leads to from `current`, or None when the table refuses it."""
    return STEP_TRANSITIONS.get((current, event))
