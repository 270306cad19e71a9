"""Handlers of the dynamic-workflow end-to-end tests: approval routing, nested decisions and
CSV batches with checkpoints, failure injection and a mid-range pause for kill -9."""

from __future__ import annotations

import csv
import itertools
import os
import time
from pathlib import Path
from typing import Any

from tasker_worker.sdk import (
    PermanentError,
    StepContext,
    StepResult,
    aggregate_batch_results,
    batches,
    checkpoint,
    cursor_ranges,
    decision,
    failure,
    no_batches,
    step_handler,
    success,
)

BRANCHES = ("auto_approve", "manager_approval", "finance_review")
SHIPPING = ("standard_shipping", "carrier_ground", "carrier_air")
WORKER_PREFIX = "process_csv_batch_"

# --- approval routing -------------------------------------------------------------------


@step_handler("dynamic.approval.validate")
def validate(ctx: StepContext) -> StepResult:
    """Check the requested amount."""
    amount = float(ctx.get_input("amount"))
    if amount <= 0:
        raise PermanentError(f"amount must be positive, got {amount}")
    return success({"amount": amount})


@step_handler("dynamic.approval.route")
def route(ctx: StepContext) -> StepResult:
    """Route by amount, or to the steps named in the context's `route_override`."""
    override = ctx.get_input("route_override")
    if override is not None:
        return decision(list(override))
    amount = float(ctx.dependency_result("validate_request")["amount"])
    thresholds = ctx.get_config("thresholds")
    if amount < thresholds["small"]:
        names = ["auto_approve"]
    elif amount < thresholds["large"]:
        names = ["manager_approval"]
    else:
        names = ["manager_approval", "finance_review"]
    return decision(names, extra={"amount": amount})


@step_handler("dynamic.approval.approve")
def approve(ctx: StepContext) -> StepResult:
    """Approve on behalf of the configured approver."""
    return success({"approved_by": ctx.get_config("approver"), "step": ctx.step_name})


@step_handler("dynamic.approval.finalize")
def finalize(ctx: StepContext) -> StepResult:
    """Converge over whichever approval branches ran."""
    ran = sorted(name for name in ctx.dependency_results if name in BRANCHES)
    approvers = [ctx.dependency_result(name)["approved_by"] for name in ran]
    return success({"branches": ran, "approvers": approvers})


# --- nested decisions -------------------------------------------------------------------


@step_handler("dynamic.shipping.receive")
def receive(ctx: StepContext) -> StepResult:
    return success({"order_id": ctx.get_input("order_id")})


@step_handler("dynamic.shipping.classify")
def classify(ctx: StepContext) -> StepResult:
    """Standard orders ship at once; expedited ones go through a review first."""
    expedited = ctx.get_input("priority") == "expedited"
    return decision(["expedited_review" if expedited else "standard_shipping"])


@step_handler("dynamic.shipping.review")
def review(ctx: StepContext) -> StepResult:
    return success({"reviewed": True})


@step_handler("dynamic.shipping.choose_carrier")
def choose_carrier(ctx: StepContext) -> StepResult:
    """The nested decision: ground or air, as the context says."""
    return decision([f"carrier_{ctx.get_input_or('carrier', 'ground')}"])


@step_handler("dynamic.shipping.ship")
def ship(ctx: StepContext) -> StepResult:
    return success({"method": ctx.get_config("method")})


@step_handler("dynamic.shipping.confirm")
def confirm(ctx: StepContext) -> StepResult:
    """Converge over the shipping branch that ran."""
    methods = [ctx.dependency_result(name)["method"]
               for name in sorted(ctx.dependency_results) if name in SHIPPING]
    return success({"methods": methods})


@step_handler("dynamic.shipping.notify")
def notify(ctx: StepContext) -> StepResult:
    return success({"confirmed": ctx.dependency_result("confirm_shipment")["methods"]})


@step_handler("dynamic.deep.next_level")
def next_level(ctx: StepContext) -> StepResult:
    """Create the next level of a decision chain."""
    return decision([ctx.get_config("next")])


# --- CSV batches ------------------------------------------------------------------------

_ROWS: dict[str, list[tuple[int, int]]] = {}


def read_rows(path: str) -> list[tuple[int, int]]:
    """(quantity, price_cents) of every data row of a CSV file (cached per path)."""
    rows = _ROWS.get(path)
    if rows is None:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [(int(r["quantity"]), int(r["price_cents"])) for r in csv.DictReader(handle)]
        _ROWS[path] = rows
    return rows


@step_handler("dynamic.csv.analyze")
def analyze(ctx: StepContext) -> StepResult:
    """Count the rows and plan one cursor range per `batch_size` rows."""
    path = str(ctx.get_input("csv_file_path"))
    total = len(read_rows(path))
    size = int(ctx.get_input_or("batch_size", ctx.get_config("batch_size")))
    ranges = cursor_ranges(total, size)
    if not ranges:
        return no_batches(extra={"total_rows": 0})
    worker = ctx.get_input_or("worker_template_name", ctx.get_config("worker_template_name"))
    return batches(ranges, worker_template_name=worker, total_items=total,
                   extra={"total_rows": total})


def _pause_here(ctx: StepContext, batch_id: str, row: int) -> None:
    """Block mid-range once (marker file) so that a test can kill the worker process."""
    pause = ctx.get_input("pause")
    if not pause or pause["batch_id"] != batch_id or pause["at_row"] != row:
        return
    marker = Path(pause["marker_dir"]) / "paused"
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + float(pause.get("max_seconds", 30))
    while time.monotonic() < deadline and not (marker.parent / "release").exists():
        time.sleep(0.05)


@step_handler("dynamic.csv.process_batch")
def process_batch(ctx: StepContext) -> StepResult:
    """Sum a cursor range of the CSV, checkpointing every `checkpoint_every` rows."""
    batch = ctx.batch
    assert batch is not None, "not a batch worker"
    if batch.is_no_op:
        return success({"batch_id": batch.batch_id, "no_op": True, "rows": 0})
    if batch.batch_id in (ctx.get_input("fail_batches") or []):
        return failure(f"batch {batch.batch_id} holds rejected rows", error_type="bad_data",
                       retryable=False)
    rows = read_rows(str(ctx.get_input("csv_file_path")))
    acc: dict[str, Any] = dict(batch.accumulated_results or {
        "rows": 0, "quantity": 0, "value_cents": 0, "segments": [], "resumes": []})
    start = int(batch.effective_start_cursor)
    end = int(batch.end_cursor)
    if batch.resume_cursor is not None and acc.get("attempt") != ctx.attempt:
        acc["resumes"] = [*acc["resumes"], {"attempt": ctx.attempt, "cursor": start}]
    acc["attempt"] = ctx.attempt
    every = int(ctx.get_input_or("checkpoint_every", 0))
    delay = float(ctx.get_input_or("row_delay_ms", 0)) / 1000.0
    row = start
    while row < end:
        _pause_here(ctx, batch.batch_id, row)
        quantity, price = rows[row]
        acc["rows"] += 1
        acc["quantity"] += quantity
        acc["value_cents"] += quantity * price
        row += 1
        if delay and row % 10 == 0:
            time.sleep(delay * 10)
        if every and (row - start) % every == 0 and row < end:
            acc["segments"] = [*acc["segments"], [start, row]]
            return checkpoint(row, acc["rows"], acc)
    acc["segments"] = [*acc["segments"], [start, end]]
    return success({"batch_id": batch.batch_id, **acc})


@step_handler("dynamic.csv.aggregate")
def aggregate(ctx: StepContext) -> StepResult:
    """Converge: add up every batch, check that no row was counted twice."""
    agg = aggregate_batch_results(ctx, worker_prefix=WORKER_PREFIX)
    if agg.no_batches:
        return success({"no_batches": True, "rows": 0, "quantity": 0, "value_cents": 0,
                        "worker_count": 0})
    segments = sorted(seg for r in agg.results.values() for seg in r["segments"])
    overlap = sum(max(0, prev[1] - cur[0]) for prev, cur in itertools.pairwise(segments))
    return success({
        "no_batches": False,
        "rows": sum(r["rows"] for r in agg.results.values()),
        "quantity": sum(r["quantity"] for r in agg.results.values()),
        "value_cents": sum(r["value_cents"] for r in agg.results.values()),
        "worker_count": agg.worker_count,
        "failed_batches": sorted(agg.failures),
        "overlapping_rows": overlap,
        "segments": segments,
    })
