"""Unit tests for tasker_worker.sdk.context: StepContext helpers and the batch view."""

from __future__ import annotations

from typing import Any

import pytest

from tasker_shared.errors import ContractError
from tasker_worker.sdk import BatchWorkerContext, StepContext


def _context(**overrides: Any) -> StepContext:
    fields: dict[str, Any] = {
        "task_uuid": "task-1",
        "step_uuid": "step-1",
        "correlation_id": "corr-1",
        "step_name": "ship_order",
        "handler_name": "orders.Ship",
        "namespace": "orders",
        "task_name": "fulfil",
        "task_version": "1.0.0",
    }
    fields.update(overrides)
    return StepContext(**fields)


DEPENDENCIES: dict[str, Any] = {
    "validate": {
        "step_uuid": "s0",
        "success": True,
        "status": "completed",
        "result": {"order": {"id": 7, "lines": [{"sku": "A"}, {"sku": "B"}]}, "ok": None},
    },
    "manual": {"note": "operator-supplied"},
}


class TestInputsAndConfig:
    def test_inputs(self) -> None:
        ctx = _context(task_context={"order_id": 7})
        assert ctx.input_data is ctx.task_context
        assert ctx.get_input("order_id") == 7
        assert ctx.get_input("missing") is None
        assert ctx.get_input_or("missing", "dflt") == "dflt"
        assert ctx.get_input_or("order_id", "dflt") == 7

    def test_config(self) -> None:
        ctx = _context(step_config={"url": "http://x"})
        assert ctx.get_config("url") == "http://x"
        assert ctx.get_config("timeout") is None
        assert ctx.get_config("timeout", 5) == 5

    def test_defaults(self) -> None:
        ctx = _context()
        assert ctx.step_inputs == {}
        assert ctx.dependency_results == {}
        assert ctx.deadline is None
        assert ctx.checkpoint is None


class TestDependencies:
    def test_unwraps_result(self) -> None:
        ctx = _context(dependency_results=DEPENDENCIES)
        assert ctx.dependency_result("validate")["order"]["id"] == 7

    def test_raw_value_without_result_field(self) -> None:
        ctx = _context(dependency_results=DEPENDENCIES)
        assert ctx.dependency_result("manual") == {"note": "operator-supplied"}

    def test_missing_dependency(self) -> None:
        ctx = _context(dependency_results=DEPENDENCIES)
        with pytest.raises(KeyError, match=r"no result from dependency 'nope'.*manual, validate"):
            ctx.dependency_result("nope")
        with pytest.raises(KeyError, match=r"available: none"):
            _context().dependency_result("nope")

    def test_field_paths(self) -> None:
        ctx = _context(dependency_results=DEPENDENCIES)
        assert ctx.dependency_field("validate", "order", "id") == 7
        assert ctx.dependency_field("validate", "order", "lines", 1, "sku") == "B"
        assert ctx.dependency_field("validate", "order", "lines", -1, "sku") == "B"
        assert ctx.dependency_field("validate") == DEPENDENCIES["validate"]["result"]
        assert ctx.dependency_field("validate", "ok") is None
        assert ctx.dependency_field("validate", "order", "missing") is None
        assert ctx.dependency_field("validate", "order", "lines", 5) is None
        assert ctx.dependency_field("validate", "order", "lines", "x") is None
        assert ctx.dependency_field("validate", "order", "id", "deeper") is None
        with pytest.raises(KeyError):
            ctx.dependency_field("nope", "x")


class TestAttempts:
    @pytest.mark.parametrize(
        ("attempt", "max_attempts", "is_retry", "is_last"),
        [(1, 3, False, False), (2, 3, True, False), (3, 3, True, True), (1, 1, False, True)],
    )
    def test_flags(self, attempt: int, max_attempts: int, is_retry: bool, is_last: bool) -> None:
        ctx = _context(attempt=attempt, max_attempts=max_attempts)
        assert ctx.is_retry is is_retry
        assert ctx.is_last_attempt is is_last


class TestCheckpoint:
    def test_none(self) -> None:
        ctx = _context()
        assert not ctx.has_checkpoint
        assert ctx.checkpoint_cursor is None

    def test_present(self) -> None:
        ctx = _context(checkpoint={"cursor": 40, "items_processed": 40})
        assert ctx.has_checkpoint
        assert ctx.checkpoint_cursor == 40


CURSOR = {"batch_id": "002", "start_cursor": 100, "end_cursor": 200, "batch_size": 100}
META = {"cursor_field": "row", "failure_strategy": "continue_on_failure"}


class TestBatch:
    def test_not_a_batch_worker(self) -> None:
        assert _context().batch is None
        assert _context(step_inputs={"cursor": None}).batch is None

    def test_from_inputs(self) -> None:
        ctx = _context(step_inputs={"cursor": CURSOR, "batch_metadata": META, "is_no_op": False})
        assert ctx.batch == BatchWorkerContext(
            batch_id="002",
            start_cursor=100,
            end_cursor=200,
            batch_size=100,
            is_no_op=False,
            cursor_field="row",
            failure_strategy="continue_on_failure",
            resume_cursor=None,
            accumulated_results=None,
            items_processed=0,
        )
        batch = ctx.batch
        assert batch is not None
        assert batch.effective_start_cursor == 100

    def test_from_config_and_checkpoint(self) -> None:
        ctx = _context(
            step_config={"cursor": CURSOR, "__template_step_name": "process_batch"},
            checkpoint={"cursor": 150, "items_processed": 50, "accumulated_results": {"n": 50}},
        )
        batch = ctx.batch
        assert batch is not None
        assert batch.cursor_field is None
        assert batch.failure_strategy is None
        assert batch.is_no_op is False
        assert batch.resume_cursor == 150
        assert batch.effective_start_cursor == 150
        assert batch.accumulated_results == {"n": 50}
        assert batch.items_processed == 50

    def test_no_op_placeholder(self) -> None:
        cursor = {"batch_id": "000", "start_cursor": 0, "end_cursor": 0, "batch_size": 0}
        batch = _context(step_inputs={"cursor": cursor, "is_no_op": True}).batch
        assert batch is not None
        assert batch.is_no_op
        assert batch.batch_size == 0

    def test_accumulated_results_must_be_a_mapping(self) -> None:
        ctx = _context(
            step_inputs={"cursor": {"batch_id": 1}},
            checkpoint={"cursor": 1, "accumulated_results": [1, 2]},
        )
        batch = ctx.batch
        assert batch is not None
        assert batch.batch_id == "1"
        assert batch.accumulated_results is None
        assert batch.start_cursor is None
        assert batch.batch_size == 0

    @pytest.mark.parametrize("cursor", ["001", {"start_cursor": 0}])
    def test_malformed_cursor(self, cursor: Any) -> None:
        with pytest.raises(ContractError, match="malformed batch cursor"):
            _ = _context(step_inputs={"cursor": cursor}).batch
