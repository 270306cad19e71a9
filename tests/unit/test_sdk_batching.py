"""Unit and property tests for tasker_worker.sdk.batching."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker_worker.sdk import (
    BatchAggregation,
    StepContext,
    aggregate_batch_results,
    cursor_ranges,
    no_batches,
)


class TestCursorRanges:
    def test_even_and_short_last(self) -> None:
        assert cursor_ranges(25, 10) == [
            {"batch_id": "001", "start_cursor": 0, "end_cursor": 10, "batch_size": 10},
            {"batch_id": "002", "start_cursor": 10, "end_cursor": 20, "batch_size": 10},
            {"batch_id": "003", "start_cursor": 20, "end_cursor": 25, "batch_size": 5},
        ]

    def test_empty(self) -> None:
        assert cursor_ranges(0, 10) == []

    def test_wide_ids(self) -> None:
        ranges = cursor_ranges(1000, 1)
        assert ranges[0]["batch_id"] == "0001"
        assert ranges[-1]["batch_id"] == "1000"

    def test_max_batches(self) -> None:
        ranges = cursor_ranges(100, 10, max_batches=4)
        assert [r["batch_size"] for r in ranges] == [25, 25, 25, 25]
        assert len(cursor_ranges(100, 50, max_batches=4)) == 2

    @pytest.mark.parametrize(
        ("total", "size", "max_batches", "message"),
        [(-1, 1, None, "total_items"), (1, 0, None, "batch_size"), (1, 1, 0, "max_batches")],
    )
    def test_validation(self, total: int, size: int, max_batches: int | None, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            cursor_ranges(total, size, max_batches=max_batches)


@given(
    total=st.integers(min_value=0, max_value=5000),
    size=st.integers(min_value=1, max_value=700),
    max_batches=st.none() | st.integers(min_value=1, max_value=50),
)
def test_property_ranges_partition(total: int, size: int, max_batches: int | None) -> None:
    ranges = cursor_ranges(total, size, max_batches=max_batches)
    covered = [i for r in ranges for i in range(r["start_cursor"], r["end_cursor"])]
    assert covered == list(range(total))
    assert all(r["batch_size"] == r["end_cursor"] - r["start_cursor"] > 0 for r in ranges)
    assert [int(r["batch_id"]) for r in ranges] == list(range(1, len(ranges) + 1))
    assert len({len(r["batch_id"]) for r in ranges}) <= 1
    if max_batches is not None:
        assert len(ranges) <= max_batches
    if ranges:
        assert all(r["batch_size"] == ranges[0]["batch_size"] for r in ranges[:-1])


def _stored(result: Any, *, success: bool = True, error: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": success, "status": "completed", "result": result}
    if error is not None:
        out["error"] = error
    return out


def _context(dependencies: dict[str, Any]) -> StepContext:
    return StepContext(
        task_uuid="t",
        step_uuid="s",
        correlation_id="c",
        step_name="aggregate",
        handler_name="h",
        namespace="ns",
        task_name="task",
        task_version="1",
        dependency_results=dependencies,
    )


CREATE = {"batch_processing_outcome": {"type": "create_batches", "worker_count": 2}}


class TestAggregate:
    def test_with_batches(self) -> None:
        ctx = _context(
            {
                "analyze": _stored(CREATE),
                "process_batch_002": _stored({"rows": 5}),
                "process_batch_001": _stored({"rows": 10}),
                "unrelated": _stored({"x": 1}),
            }
        )
        agg = aggregate_batch_results(ctx, worker_prefix="process_batch_")
        assert agg == BatchAggregation(
            no_batches=False,
            batchable_step="analyze",
            results={"process_batch_001": {"rows": 10}, "process_batch_002": {"rows": 5}},
            failures={},
        )
        assert list(agg.results) == ["process_batch_001", "process_batch_002"]
        assert agg.worker_count == 2
        assert agg.all_succeeded

    def test_no_batches(self) -> None:
        ctx = _context(
            {
                "analyze": _stored(no_batches().result),
                "process_batch_000": _stored({}),
            }
        )
        agg = aggregate_batch_results(ctx, worker_prefix="process_batch_")
        assert agg == BatchAggregation(no_batches=True, batchable_step="analyze")
        assert agg.worker_count == 0

    def test_failures_visible(self) -> None:
        ctx = _context(
            {
                "analyze": _stored(CREATE),
                "w_001": _stored({"rows": 1}),
                "w_002": _stored({}, success=False, error={"message": "bad row"}),
                "w_003": _stored({}, success=False, error="not a mapping"),
            }
        )
        agg = aggregate_batch_results(ctx, worker_prefix="w_")
        assert agg.results == {"w_001": {"rows": 1}}
        assert agg.failures == {"w_002": {"message": "bad row"}, "w_003": {}}
        assert not agg.all_succeeded
        assert agg.worker_count == 3

    def test_explicit_batchable_step(self) -> None:
        ctx = _context(
            {
                "a1": _stored(CREATE),
                "a2": _stored(no_batches().result),
                "w_001": _stored({"n": 1}),
            }
        )
        with pytest.raises(ValueError, match="several batchable dependencies"):
            aggregate_batch_results(ctx, worker_prefix="w_")
        assert aggregate_batch_results(ctx, worker_prefix="w_", batchable_step="a2").no_batches
        agg = aggregate_batch_results(ctx, worker_prefix="w_", batchable_step="a1")
        assert agg.results == {"w_001": {"n": 1}}
        with pytest.raises(KeyError, match="no result from dependency 'zz'"):
            aggregate_batch_results(ctx, worker_prefix="w_", batchable_step="zz")

    def test_batchable_sharing_prefix_is_not_a_worker(self) -> None:
        ctx = _context({"w_analyze": _stored(CREATE), "w_001": _stored({"n": 1})})
        agg = aggregate_batch_results(ctx, worker_prefix="w_", batchable_step="w_analyze")
        assert agg.results == {"w_001": {"n": 1}}

    def test_without_analyser_and_odd_values(self) -> None:
        ctx = _context(
            {
                "odd": "not a mapping",
                "odd_result": {"result": [1, 2]},
                "raw": {"batch_processing_outcome": "weird"},
                "w_001": {"manual": True},
            }
        )
        agg = aggregate_batch_results(ctx, worker_prefix="w_")
        assert agg.batchable_step == "raw"
        assert not agg.no_batches
        assert agg.results == {"w_001": {"manual": True}}

    def test_nothing_found(self) -> None:
        agg = aggregate_batch_results(_context({}), worker_prefix="w_")
        assert agg == BatchAggregation(no_batches=False, batchable_step=None)

    def test_empty_prefix(self) -> None:
        with pytest.raises(ValueError, match="worker_prefix"):
            aggregate_batch_results(_context({}), worker_prefix="")
