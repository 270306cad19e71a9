"""Bounds on handler results (`tasker_worker.runtime.outcomes.bounded`): a result too deep,
too large or not JSON becomes a non-retryable failure that names the limit."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome
from tasker_worker.runtime.outcomes import bounded
from tasker_worker.sdk.results import StepResult, failure, success

MAX_BYTES = 4096
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _outcome(result: StepResult) -> StepOutcome:
    ids = uuid.uuid4()
    step = ClaimedStep(queue="worker_x_queue", msg_id=1, task_uuid=ids, step_uuid=uuid.uuid4(),
                       correlation_id=ids, step_name="s", attempt=1, max_attempts=3, inputs={},
                       checkpoint=None, task_context={}, namespace="x", task_name="t",
                       task_version="1", named_task_uuid=ids, dependency_results={},
                       headers=None)
    payload = result.to_execution_result(step_uuid=str(step.step_uuid), execution_time_ms=42,
                                         started_at=STARTED, completed_at=STARTED,
                                         worker_id="w1")
    return StepOutcome(step=step, success=result.success, payload=payload, handler="h",
                       error=result.error_message)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


def _refused(outcome: StepOutcome, code: str) -> str:
    assert outcome.success is False
    error = outcome.payload["error"]
    meta = outcome.payload["metadata"]
    assert error["retryable"] is False and meta["retryable"] is False
    assert error["error_type"] == "validation_error" and meta["error_code"] == code
    assert outcome.payload["result"] == {}
    assert (meta["execution_time_ms"], meta["worker_id"]) == (42, "w1")  # the run's timing
    assert outcome.error == error["message"]
    return str(error["message"])


def test_a_result_within_bounds_is_kept() -> None:
    outcome = _outcome(success({"value": _nested(DEFAULT_MAX_DEPTH - 1), "s": "x" * 1000}))
    assert bounded(outcome, max_bytes=MAX_BYTES) is outcome


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 5_000, 100_000])
def test_a_result_nested_too_deep_fails_the_step(depth: int) -> None:
    message = _refused(bounded(_outcome(success({"v": _nested(depth)})), max_bytes=MAX_BYTES),
                       "result_too_large")
    assert message == f"step result nests deeper than {DEFAULT_MAX_DEPTH} levels"


def test_a_result_too_large_fails_the_step() -> None:
    message = _refused(bounded(_outcome(success({"blob": "x" * MAX_BYTES})), max_bytes=MAX_BYTES),
                       "result_too_large")
    assert message.startswith("step result is ") and f"at most {MAX_BYTES} are allowed" in message


def test_deep_metadata_and_error_context_are_bounded_too() -> None:
    deep_meta = success({"ok": 1}, metadata={"m": _nested(500)})
    assert "step result metadata nests deeper" in _refused(
        bounded(_outcome(deep_meta), max_bytes=MAX_BYTES), "result_too_large")
    deep_context = failure("boom", context={"c": _nested(500)})
    assert "step error context nests deeper" in _refused(
        bounded(_outcome(deep_context), max_bytes=MAX_BYTES), "result_too_large")


@pytest.mark.parametrize("value", [{1, 2}, object(), math.nan, math.inf],
                         ids=["set", "object", "nan", "infinity"])
def test_a_result_json_cannot_hold_fails_the_step(value: Any) -> None:
    message = _refused(bounded(_outcome(success({"v": value})), max_bytes=MAX_BYTES),
                       "result_not_json")
    assert message.startswith("step result is not representable as JSON")
