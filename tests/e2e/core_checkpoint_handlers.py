"""Handlers of tasker-core's Python checkpoint yield test for Tasker's SDK: an analyzer
planning one batch over `total_items`, a worker that yields a checkpoint every
`items_per_checkpoint` items (and fails on purpose after `fail_after_items` on attempt
`fail_on_attempt`, retryably or not), and an aggregator over the batch."""

from __future__ import annotations

from typing import Any

from tasker_worker.sdk import (
    StepContext,
    StepHandler,
    StepResult,
    aggregate_batch_results,
    cursor_ranges,
)

WORKER_PREFIX = "checkpoint_yield_batch_"


class CheckpointYieldAnalyzer(StepHandler):
    handler_name = "CheckpointYield.StepHandlers.CheckpointYieldAnalyzerHandler"

    def call(self, context: StepContext) -> StepResult:
        total = int(context.get_input_or("total_items", 100))
        if total <= 0:
            return self.no_batches()
        worker = context.get_config("worker_template_name") or "checkpoint_yield_batch"
        # one batch over every item: the checkpoint yields do the chunking
        return self.batches(cursor_ranges(total, total), worker_template_name=worker,
                            total_items=total)


class CheckpointYieldWorker(StepHandler):
    handler_name = "CheckpointYield.StepHandlers.CheckpointYieldWorkerHandler"

    def call(self, context: StepContext) -> StepResult:
        batch = context.batch
        if batch is None:
            return self.failure("No batch inputs found - is this a batch worker step?",
                                error_type="validation_error", retryable=False)
        if batch.is_no_op:
            return self.success({"batch_id": batch.batch_id, "no_op": True,
                                 "items_processed": 0})
        every = int(context.get_input_or("items_per_checkpoint",
                                         context.get_config("items_per_checkpoint") or 25))
        fail_after = context.get_input("fail_after_items")
        fail_on = int(context.get_input_or("fail_on_attempt", 1))
        permanent = bool(context.get_input_or("permanent_failure", False))

        acc: dict[str, Any] = dict(batch.accumulated_results or
                                   {"running_total": 0, "item_ids": []})
        done = batch.items_processed if context.has_checkpoint else 0
        cursor, end, in_chunk = int(batch.effective_start_cursor), int(batch.end_cursor), 0
        while cursor < end:
            if fail_after is not None and done >= fail_after and context.attempt == fail_on:
                kind = "permanent" if permanent else "transient"
                return self.failure(
                    f"Injected {kind} failure after {done} items",
                    error_type="permanent_error" if permanent else "retryable_error",
                    retryable=not permanent,
                    metadata={"items_processed": done, "cursor_at_failure": cursor,
                              "failure_type": kind})
            acc["running_total"] += cursor + 1
            acc["item_ids"] = [*acc["item_ids"], f"item_{cursor:04d}"]
            cursor, in_chunk, done = cursor + 1, in_chunk + 1, done + 1
            if in_chunk >= every and cursor < end:
                return self.checkpoint(cursor, done, acc)
        return self.success({
            "items_processed": done, "items_succeeded": done, "items_failed": 0,
            "batch_metadata": {**acc, "final_cursor": cursor,
                               "checkpoints_used": done // every,
                               "attempt": context.attempt}})


class CheckpointYieldAggregator(StepHandler):
    handler_name = "CheckpointYield.StepHandlers.CheckpointYieldAggregatorHandler"

    def call(self, context: StepContext) -> StepResult:
        agg = aggregate_batch_results(context, worker_prefix=WORKER_PREFIX,
                                      batchable_step="analyze_items")
        if agg.no_batches:
            return self.success({"total_processed": 0, "running_total": 0,
                                 "test_passed": True, "scenario": "no_batches"})
        metas = [r.get("batch_metadata", {}) for r in agg.results.values()]
        ids = [i for m in metas for i in m.get("item_ids", [])]
        return self.success({
            "total_processed": sum(r.get("items_processed", 0) for r in agg.results.values()),
            "running_total": sum(m.get("running_total", 0) for m in metas),
            "item_count": len(ids), "distinct_items": len(set(ids)),
            "checkpoints_used": sum(m.get("checkpoints_used", 0) for m in metas),
            "worker_count": agg.worker_count, "test_passed": True,
            "scenario": "with_batches"})
