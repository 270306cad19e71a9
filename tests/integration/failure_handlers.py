"""Handlers of the failure-lifecycle tests (in-process pipeline): steps that fail until the
test marks their task fixed, decisions and batches whose created steps are inspected."""

from __future__ import annotations

from tasker_worker.sdk import (
    PermanentError,
    RetryableError,
    StepContext,
    StepResult,
    batches,
    decision,
    no_batches,
    step_handler,
    success,
)

FIXED: set[str] = set()  # tasks whose failing steps now succeed (the operator fixed them)


@step_handler("failures.ok")
def ok(ctx: StepContext) -> StepResult:
    return success({"step": ctx.step_name, "attempt": ctx.attempt})


@step_handler("failures.fragile")
def fragile(ctx: StepContext) -> StepResult:
    """A permanent failure until the task is fixed."""
    if ctx.task_uuid not in FIXED:
        raise PermanentError("card declined")
    return success({"charged": True})


@step_handler("failures.flaky")
def flaky(ctx: StepContext) -> StepResult:
    """A retryable failure until the task is fixed."""
    if ctx.task_uuid not in FIXED:
        raise RetryableError("upstream unavailable")
    return success({"fetched": True})


@step_handler("failures.after")
def after(ctx: StepContext) -> StepResult:
    return success({"saw": sorted(ctx.dependency_results)})


@step_handler("failures.choose")
def choose(ctx: StepContext) -> StepResult:
    return decision(["branch_a"])


@step_handler("failures.plan")
def plan(ctx: StepContext) -> StepResult:
    ranges = [{"batch_id": f"00{i}", "start_cursor": i * 10, "end_cursor": (i + 1) * 10,
               "batch_size": 10} for i in (1, 2)]
    return batches(ranges, worker_template_name="work", total_items=20)


@step_handler("failures.nothing_to_do")
def nothing_to_do(ctx: StepContext) -> StepResult:
    """An analyser that finds no input (tasker-core's empty CSV)."""
    return no_batches(extra={"total_rows": 0})
