"""Unit tests for tasker_worker.sdk.results: helpers and the StepExecutionResult JSON."""

from __future__ import annotations

import dataclasses
import json
import traceback
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasker_worker.sdk import (
    HandlerNotFound,
    PermanentError,
    RateLimitError,
    RetryableError,
    StepResult,
    ValidationError,
    batches,
    checkpoint,
    decision,
    failure,
    failure_from_exception,
    no_batches,
    no_branches,
    success,
)

STARTED = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
DONE = STARTED + timedelta(milliseconds=250)


def _json(result: StepResult, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "step_uuid": "step-1",
        "execution_time_ms": 250,
        "started_at": STARTED,
        "completed_at": DONE,
        "worker_id": "worker-a",
    }
    options.update(overrides)
    payload = result.to_execution_result(**options)
    assert json.loads(json.dumps(payload)) == payload  # plain JSON all the way down
    return payload


class TestSuccess:
    def test_shape(self) -> None:
        payload = _json(success({"total": 3}, metadata={"source": "api"}))
        assert payload == {
            "step_uuid": "step-1",
            "success": True,
            "status": "completed",
            "result": {"total": 3},
            "metadata": {
                "execution_time_ms": 250,
                "retryable": False,
                "completed_at": "2025-01-01T12:00:00.250000+00:00",
                "started_at": "2025-01-01T12:00:00+00:00",
                "worker_id": "worker-a",
                "context": {},
                "custom": {"source": "api"},
            },
        }

    def test_defaults_and_copies(self) -> None:
        data = {"a": 1}
        result = success(data)
        data["a"] = 2
        assert result.result == {"a": 1}
        assert success() == StepResult(success=True)
        assert not success().is_checkpoint

    def test_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            success().success = False  # type: ignore[misc]

    def test_naive_and_offset_datetimes_become_utc(self) -> None:
        naive = datetime(2025, 1, 1, 12, 0, 0)
        plus_two = datetime(2025, 1, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
        meta = _json(success(), started_at=naive, completed_at=plus_two)["metadata"]
        assert meta["started_at"] == "2025-01-01T12:00:00+00:00"
        assert meta["completed_at"] == "2025-01-01T12:00:00+00:00"

    def test_worker_id_none_and_negative_time(self) -> None:
        meta = _json(success(), worker_id=None, execution_time_ms=-5)["metadata"]
        assert meta["worker_id"] is None
        assert meta["execution_time_ms"] == 0


class TestFailure:
    def test_minimal_shape(self) -> None:
        payload = _json(failure("boom"))
        assert payload == {
            "step_uuid": "step-1",
            "success": False,
            "status": "failed",
            "result": {},
            "error": {"message": "boom", "error_type": "handler_error", "retryable": True},
            "metadata": {
                "execution_time_ms": 250,
                "retryable": True,
                "completed_at": "2025-01-01T12:00:00.250000+00:00",
                "started_at": "2025-01-01T12:00:00+00:00",
                "worker_id": "worker-a",
                "error_type": "handler_error",
                "context": {},
                "custom": {},
            },
        }

    @pytest.mark.parametrize("retryable", [True, False])
    def test_metadata_retryable_mirrors_error(self, retryable: bool) -> None:
        payload = _json(failure("x", retryable=retryable))
        assert payload["metadata"]["retryable"] is retryable
        assert payload["error"]["retryable"] is retryable

    def test_full_shape(self) -> None:
        result = failure(
            "gateway said no",
            error_type="permanent_error",
            retryable=False,
            status_code=404,
            context={"order_id": 7},
            metadata={"attempted": "GET /orders/7"},
            error_code="ORDER_MISSING",
            backtrace=["line 1", "line 2"],
        )
        payload = _json(result)
        assert payload["error"] == {
            "message": "gateway said no",
            "error_type": "permanent_error",
            "retryable": False,
            "backtrace": ["line 1", "line 2"],
            "status_code": 404,
            "context": {"order_id": 7},
        }
        meta = payload["metadata"]
        assert meta["error_code"] == "ORDER_MISSING"
        assert meta["error_type"] == "permanent_error"
        assert meta["context"] == {"order_id": 7}
        assert meta["custom"] == {"attempted": "GET /orders/7"}
        assert "orchestration_metadata" not in payload

    def test_empty_message(self) -> None:
        assert _json(failure(""))["error"]["message"] == "step failed"

    def test_handmade_result_without_type(self) -> None:
        payload = _json(StepResult(success=False, error_message="x"))
        assert payload["error"]["error_type"] == "handler_error"

    @pytest.mark.parametrize(
        ("retry_after", "header"),
        [(30, "30"), (1.2, "2"), (-3.0, "0"), (" Wed, 01 Jan 2025 12:00:00 GMT ", None)],
    )
    def test_retry_after_header(self, retry_after: str | float, header: str | None) -> None:
        payload = _json(failure("slow down", retry_after=retry_after))
        expected = header if header is not None else str(retry_after).strip()
        assert payload["orchestration_metadata"] == {
            "headers": {"Retry-After": expected},
            "custom": {},
        }

    def test_retry_after_must_be_finite(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            failure("x", retry_after=float("inf"))

    @pytest.mark.parametrize(
        ("status", "kind"), [(429, "rate_limit"), (503, "service_unavailable"), (None, "custom")]
    )
    def test_backoff_hint(self, status: int | None, kind: str) -> None:
        payload = _json(failure("x", status_code=status, backoff_hint_seconds=12.5))
        assert payload["orchestration_metadata"] == {
            "headers": {},
            "backoff_hint": {"backoff_type": kind, "delay_seconds": 13},
            "custom": {},
        }

    def test_backoff_hint_with_header(self) -> None:
        meta = _json(failure("x", retry_after=5, backoff_hint_seconds=5))["orchestration_metadata"]
        assert meta["headers"] == {"Retry-After": "5"}
        assert meta["backoff_hint"]["delay_seconds"] == 5

    def test_fractional_backoff_hint_is_a_valid_result(self) -> None:
        # The contract carries whole seconds: a float made result processing unable to
        # decode the result, and the retryable failure was treated as permanent.
        from tasker_shared.contracts.messages import decode_step_execution_result

        payload = _json(failure("x", backoff_hint_seconds=2.5),
                        step_uuid="0190a0b0-0000-7000-8000-000000000001")
        decoded = decode_step_execution_result(payload)
        assert decoded.orchestration_metadata is not None
        hint = decoded.orchestration_metadata.backoff_hint
        assert hint is not None and hint.delay_seconds == 3

    def test_negative_backoff_hint_rejected(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            failure("x", backoff_hint_seconds=-1)


def _raise(exc: BaseException) -> tuple[BaseException, list[str]]:
    try:
        raise exc
    except BaseException as caught:
        return caught, traceback.format_exception(caught)


class TestFailureFromException:
    def test_plain_exception(self) -> None:
        exc, lines = _raise(ValueError("bad amount"))
        result = failure_from_exception(exc, traceback_lines=lines)
        payload = _json(result)
        assert payload["error"]["message"] == "bad amount"
        assert payload["error"]["error_type"] == "ValueError"
        assert payload["error"]["retryable"] is False
        assert payload["metadata"]["retryable"] is False
        assert payload["error"]["backtrace"] == lines
        assert "orchestration_metadata" not in payload

    def test_retryable_builtin_and_empty_message(self) -> None:
        exc, lines = _raise(TimeoutError())
        result = failure_from_exception(exc, traceback_lines=lines)
        assert result.retryable is True
        assert result.error_message == "TimeoutError"
        assert result.error_type == "TimeoutError"

    def test_sdk_errors_carry_their_details(self) -> None:
        exc = RateLimitError(
            "too many", retry_after=7, error_code="RL", context={"bucket": "orders"}
        )
        payload = _json(failure_from_exception(exc, traceback_lines=[]))
        assert payload["error"]["error_type"] == "rate_limit"
        assert payload["error"]["status_code"] == 429
        assert payload["error"]["context"] == {"bucket": "orders"}
        assert payload["metadata"]["error_code"] == "RL"
        assert payload["metadata"]["retryable"] is True
        assert payload["orchestration_metadata"]["headers"] == {"Retry-After": "7"}

    def test_sdk_permanent(self) -> None:
        for exc in (PermanentError("no"), ValidationError("bad")):
            result = failure_from_exception(exc, traceback_lines=[])
            assert result.retryable is False
            assert result.error_type == exc.error_type

    def test_retryable_error_date(self) -> None:
        exc = RetryableError("later", retry_after="Wed, 01 Jan 2025 12:00:00 GMT")
        result = failure_from_exception(exc, traceback_lines=[])
        assert result.retry_after == "Wed, 01 Jan 2025 12:00:00 GMT"

    def test_handler_not_found(self) -> None:
        exc = HandlerNotFound("pkg.Missing", "not registered")
        result = failure_from_exception(exc, traceback_lines=[])
        assert result.error_type == "handler_not_found"
        assert result.retryable is False

    def test_foreign_attributes_of_wrong_type_ignored(self) -> None:
        class Odd(Exception):
            error_type = 5
            status_code = "404"
            context = ["not", "a", "dict"]
            error_code = 12
            retry_after = object()

        result = failure_from_exception(Odd("odd"), traceback_lines=[])
        assert result.error_type == "Odd"
        assert result.status_code is None
        assert result.error_context == {}
        assert result.error_code is None
        assert result.retry_after is None


class TestCheckpoint:
    def test_shape(self) -> None:
        result = checkpoint(500, 500, {"sum": 12})
        assert result.is_checkpoint
        payload = _json(result)
        assert payload["success"] is True
        assert payload["result"] == {
            "cursor": 500,
            "items_processed": 500,
            "accumulated_results": {"sum": 12},
        }
        assert payload["metadata"]["checkpoint_yield"] is True
        assert payload["metadata"]["retryable"] is False

    def test_without_accumulated(self) -> None:
        assert checkpoint({"page": 3}, 0).result["accumulated_results"] is None

    def test_negative_items_rejected(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            checkpoint(0, -1)

    def test_plain_success_has_no_flag(self) -> None:
        assert "checkpoint_yield" not in _json(success())["metadata"]


class TestDecision:
    def test_create_steps(self) -> None:
        result = decision(["a", "b", "a"])
        assert result.success
        assert result.result == {
            "decision_point_outcome": {"type": "create_steps", "step_names": ["a", "b"]}
        }

    def test_extra_fields(self) -> None:
        result = decision(("a",), extra={"route": "fast"})
        assert result.result["route"] == "fast"

    def test_empty_is_no_branches(self) -> None:
        assert decision([]) == no_branches()
        assert no_branches().result == {"decision_point_outcome": {"type": "no_branches"}}
        assert no_branches(extra={"why": "x"}).result["why"] == "x"

    @pytest.mark.parametrize("names", ["abc", ["ok", ""], ["ok", 3]])
    def test_bad_names(self, names: Any) -> None:
        with pytest.raises(TypeError):
            decision(names)


class TestBatches:
    CONFIGS = [
        {"batch_id": "001", "start_cursor": 0, "end_cursor": 10, "batch_size": 10, "x": 1},
        {"batch_id": "002", "start_cursor": 10, "end_cursor": 15, "batch_size": 5},
    ]

    def test_create_batches(self) -> None:
        result = batches(self.CONFIGS, worker_template_name="process_batch", total_items=15)
        assert result.result == {
            "batch_processing_outcome": {
                "type": "create_batches",
                "worker_template_name": "process_batch",
                "worker_count": 2,
                "cursor_configs": [
                    {"batch_id": "001", "start_cursor": 0, "end_cursor": 10, "batch_size": 10},
                    {"batch_id": "002", "start_cursor": 10, "end_cursor": 15, "batch_size": 5},
                ],
                "total_items": 15,
            }
        }

    def test_extra(self) -> None:
        result = batches(
            self.CONFIGS, worker_template_name="w", total_items=15, extra={"file": "a.csv"}
        )
        assert result.result["file"] == "a.csv"

    def test_empty_is_no_batches(self) -> None:
        assert batches([], worker_template_name="w", total_items=0) == no_batches()
        assert no_batches().result == {"batch_processing_outcome": {"type": "no_batches"}}
        assert no_batches(extra={"n": 0}).result["n"] == 0

    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="worker_template_name"):
            batches(self.CONFIGS, worker_template_name="", total_items=1)
        with pytest.raises(ValueError, match="lacks end_cursor, batch_size"):
            batches([{"batch_id": "1", "start_cursor": 0}], worker_template_name="w", total_items=1)
        with pytest.raises(ValueError, match="unique"):
            batches([self.CONFIGS[0], self.CONFIGS[0]], worker_template_name="w", total_items=1)
