"""Handlers of the worker runtime tests: claiming, draining and result bounds. Synchronous
(run in a thread), so they behave the same whatever runs async handlers."""

from __future__ import annotations

import time
from typing import Any

from tasker_worker.sdk import StepContext, StepResult, step_handler, success


@step_handler("wrt.sleep")
def sleep(ctx: StepContext) -> StepResult:
    """Sleep `seconds` (step config, else the task context's `seconds`), or until the wall
    clock reads `until` (task context, epoch seconds), then succeed."""
    until = ctx.get_input("until")
    if until is not None:
        seconds = max(0.0, float(until) - time.time())
    else:
        seconds = float(ctx.get_config("seconds", ctx.get_input_or("seconds", 0.0)))
    time.sleep(seconds)
    return success({"slept": seconds})


@step_handler("wrt.nested")
def nested(ctx: StepContext) -> StepResult:
    """A result nested `depth` levels deep (task context)."""
    value: Any = "leaf"
    for _ in range(int(ctx.get_input("depth"))):
        value = {"d": value}
    return success({"value": value})


@step_handler("wrt.large")
def large(ctx: StepContext) -> StepResult:
    """A result of about `bytes` bytes of JSON (task context)."""
    return success({"blob": "x" * int(ctx.get_input("bytes"))})
