"""Handlers of the pipeline end-to-end tests (namespace `e2e`)."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from tasker_worker.sdk import StepContext, StepResult, failure, step_handler, success


@step_handler("e2e.sum_parents")
def sum_parents(ctx: StepContext) -> StepResult:
    """value = own increment + the sum of every direct parent's value (roots use context n)."""
    parents: list[str] = ctx.get_config("parents", [])
    base = sum(int(ctx.dependency_result(p)["value"]) for p in parents) if parents else int(
        ctx.get_input("n"))
    seen = sorted(ctx.dependency_results)
    return success({"value": base + int(ctx.get_config("add", 1)), "saw": seen})


@step_handler("e2e.permanent_failure")
def permanent_failure(ctx: StepContext) -> StepResult:
    return failure("card declined", error_type="permanent_error", retryable=False)


@step_handler("e2e.always_fails")
def always_fails(ctx: StepContext) -> StepResult:
    return failure(f"upstream down (attempt {ctx.attempt})", error_type="retryable_error",
                   retryable=True)


@step_handler("e2e.raises")
def raises(ctx: StepContext) -> StepResult:
    raise KeyError("missing_field")


@step_handler("e2e.sleeps", runtime="trio")
async def sleeps(ctx: StepContext) -> StepResult:
    await trio.sleep(float(ctx.get_config("seconds", 30)))
    return success({"slept": True})


@step_handler("e2e.retry_after")
def retry_after(ctx: StepContext) -> StepResult:
    if ctx.attempt == 1:
        return failure("rate limited", error_type="rate_limit", retryable=True, status_code=429,
                       retry_after=int(ctx.get_config("seconds", 2)))
    return success({"attempt": ctx.attempt})


@step_handler("e2e.stall_once", runtime="trio")
async def stall_once(ctx: StepContext) -> StepResult:
    """First attempt: drop a marker file and hang (the test kills the worker); then succeed."""
    marker = Path(str(ctx.get_input("marker")))
    if ctx.attempt == 1:
        await trio.Path(marker).write_text(str(os.getpid()))
        await trio.sleep(60)
    return success({"attempt": ctx.attempt, "value": 1})
