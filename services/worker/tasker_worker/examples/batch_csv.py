"""Batch example: a batchable analyser splits a CSV file into cursor ranges, batch workers
sum their range (checkpointing as they go, resuming after a crash), and a convergence step
adds the batches up. The CSV needs `quantity` and `price_cents` columns."""

from __future__ import annotations

import csv
from itertools import islice
from typing import Any

from tasker_worker.sdk import (
    StepContext,
    StepResult,
    aggregate_batch_results,
    batches,
    checkpoint,
    cursor_ranges,
    no_batches,
    success,
)

_SUMS = ("rows", "quantity", "value_cents")


def _count_rows(path: str) -> int:
    with open(path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def analyze_csv(ctx: StepContext) -> StepResult:
    """Plan one batch per `batch_size` data rows (none for an empty file)."""
    total = _count_rows(str(ctx.get_input("csv_file_path")))
    ranges = cursor_ranges(total, int(ctx.get_config("batch_size", 1000)))
    if not ranges:
        return no_batches(extra={"total_rows": 0})
    return batches(ranges, worker_template_name=ctx.get_config("worker_template_name"),
                   total_items=total, extra={"total_rows": total})


def process_csv_batch(ctx: StepContext) -> StepResult:
    """Sum rows [start, end) of the file; checkpoint every `checkpoint_every` rows."""
    batch = ctx.batch
    if batch is None or batch.is_no_op:
        return success({"rows": 0, "quantity": 0, "value_cents": 0})
    sums: dict[str, Any] = dict(batch.accumulated_results or dict.fromkeys(_SUMS, 0))
    start, end = int(batch.effective_start_cursor), int(batch.end_cursor)
    every = int(ctx.get_config("checkpoint_every", 0)) or end - start
    stop = min(end, start + every)
    with open(str(ctx.get_input("csv_file_path")), newline="", encoding="utf-8") as handle:
        for row in islice(csv.DictReader(handle), start, stop):
            quantity = int(row["quantity"])
            sums["rows"] += 1
            sums["quantity"] += quantity
            sums["value_cents"] += quantity * int(row["price_cents"])
    if stop < end:
        return checkpoint(stop, sums["rows"], sums)
    return success({"batch_id": batch.batch_id, **sums})


def aggregate_csv_results(ctx: StepContext) -> StepResult:
    """Add up every batch (zero when the analyser found no rows)."""
    agg = aggregate_batch_results(ctx, worker_prefix="process_csv_batch_")
    totals = {key: sum(int(r[key]) for r in agg.results.values()) for key in _SUMS}
    return success({**totals, "batches": agg.worker_count, "no_batches": agg.no_batches,
                    "failed_batches": sorted(agg.failures)})
