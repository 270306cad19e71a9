"""Handlers of the sample workflows (arithmetic, so results are easy to check)."""

from __future__ import annotations

from typing import Any

from tasker_worker.sdk import StepContext, StepResult, failure, step_handler, success


def _number(ctx: StepContext, parent: str | None) -> int:
    if parent is None:
        return int(ctx.get_input("even_number"))
    return int(ctx.dependency_result(parent)["value"])


@step_handler("examples.square")
def square(ctx: StepContext) -> StepResult:
    """Square the parent's value (or the task's `even_number` for a root step)."""
    parent = ctx.get_config("parent")
    value = _number(ctx, parent)
    return success({"value": value * value, "step": ctx.step_name})


@step_handler("examples.add_parents")
def add_parents(ctx: StepContext) -> StepResult:
    """Sum the `value` of every parent named in `initialization.parents`."""
    parents: list[str] = ctx.get_config("parents", [])
    total = sum(int(ctx.dependency_result(p)["value"]) for p in parents)
    return success({"value": total, "parents": parents})


@step_handler("examples.double")
async def double(ctx: StepContext) -> StepResult:
    """An `async def` handler (runs on asyncio): double the parent's value."""
    value = _number(ctx, ctx.get_config("parent"))
    return success({"value": value * 2})


@step_handler("examples.flaky")
def flaky(ctx: StepContext) -> StepResult:
    """Fail (retryably) until attempt `succeed_on_attempt`, then succeed."""
    succeed_on = int(ctx.get_config("succeed_on_attempt", 3))
    if ctx.attempt < succeed_on:
        return failure(f"transient failure on attempt {ctx.attempt}",
                       error_type="retryable_error", retryable=True)
    value = _number(ctx, ctx.get_config("parent"))
    return success({"value": value + 1, "attempts_needed": ctx.attempt})


def summarize(ctx: StepContext) -> dict[str, Any]:
    """Plain function resolved by dotted path: collects every ancestor's value."""
    return {"values": {name: ctx.dependency_result(name).get("value")
                       for name in sorted(ctx.dependency_results)}}
