"""Batch helpers: cursor ranges for an analyser, and result aggregation for convergence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasker_worker.sdk.context import StepContext

__all__ = ["BatchAggregation", "aggregate_batch_results", "cursor_ranges"]


def cursor_ranges(
    total_items: int, batch_size: int, *, max_batches: int | None = None
) -> list[dict[str, Any]]:
    """Integer cursor configs covering `[0, total_items)`: start inclusive, end exclusive.

    Batch ids are "001", "002", ... (wider when there are more than 999). The last range may
    be shorter; `batch_size` is each range's own length. With `max_batches`, the size grows
    so that at most that many ranges are made. No items → no ranges.
    """
    if total_items < 0:
        raise ValueError("total_items must not be negative")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if max_batches is not None:
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        batch_size = max(batch_size, -(-total_items // max_batches))
    count = -(-total_items // batch_size)
    width = max(3, len(str(count)))
    ranges: list[dict[str, Any]] = []
    for index in range(count):
        start = index * batch_size
        end = min(start + batch_size, total_items)
        ranges.append(
            {
                "batch_id": str(index + 1).zfill(width),
                "start_cursor": start,
                "end_cursor": end,
                "batch_size": end - start,
            }
        )
    return ranges


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchAggregation:
    """What a convergence step sees of a batch fan-out.

    `results` maps each successful worker's step name to its `result` payload; `failures`
    maps each failed worker's step name to its `error` object. Both are empty when the
    analyser chose no batches (the placeholder no-op worker is not counted).
    """

    no_batches: bool
    batchable_step: str | None
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def worker_count(self) -> int:
        """How many real workers reported (successful or failed)."""
        return len(self.results) + len(self.failures)

    @property
    def all_succeeded(self) -> bool:
        """True when no worker failed."""
        return not self.failures


def _outcome(stored: Any) -> Any:
    """The `batch_processing_outcome` inside a stored step result, or None."""
    if not isinstance(stored, Mapping):
        return None
    payload = stored.get("result", stored)
    if not isinstance(payload, Mapping):
        return None
    return payload.get("batch_processing_outcome")


def _find_batchable(context: StepContext, worker_prefix: str) -> str | None:
    """The dependency whose result carries a batch outcome; ValueError if several do."""
    found = [
        name
        for name, stored in context.dependency_results.items()
        if not name.startswith(worker_prefix) and _outcome(stored) is not None
    ]
    if len(found) > 1:
        raise ValueError(
            f"several batchable dependencies ({', '.join(sorted(found))}); "
            "pass batchable_step to choose one"
        )
    return found[0] if found else None


def aggregate_batch_results(
    context: StepContext, *, worker_prefix: str, batchable_step: str | None = None
) -> BatchAggregation:
    """Detect the no-batches scenario and collect worker results for a convergence step.

    The analyser is `batchable_step` (KeyError if it is not a dependency) or else the one
    dependency whose result carries a `batch_processing_outcome`. Workers are the
    dependencies whose names start with `worker_prefix`.
    """
    if not worker_prefix:
        raise ValueError("worker_prefix must not be empty")
    name = batchable_step or _find_batchable(context, worker_prefix)
    if name is not None:
        if name not in context.dependency_results:
            context.dependency_result(name)  # raises the descriptive KeyError
        outcome = _outcome(context.dependency_results[name])
        if isinstance(outcome, Mapping) and outcome.get("type") == "no_batches":
            return BatchAggregation(no_batches=True, batchable_step=name)
    found: dict[str, Any] = {}
    failed: dict[str, dict[str, Any]] = {}
    for step_name in sorted(context.dependency_results):
        if not step_name.startswith(worker_prefix) or step_name == name:
            continue
        stored = context.dependency_results[step_name]
        if isinstance(stored, Mapping) and stored.get("success") is False:
            error = stored.get("error")
            failed[step_name] = dict(error) if isinstance(error, Mapping) else {}
        else:
            found[step_name] = context.dependency_result(step_name)
    return BatchAggregation(no_batches=False, batchable_step=name, results=found, failures=failed)
