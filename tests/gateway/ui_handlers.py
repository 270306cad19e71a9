"""Handlers of the dashboard's browser tests: a short sleep, and a step that fails
permanently (an exception, so a traceback is recorded) the first time it runs."""

from __future__ import annotations

import trio

from tasker_worker.sdk import StepContext, StepResult, step_handler, success

_FAILED: set[str] = set()


@step_handler("ui.slow", runtime="trio")
async def slow(ctx: StepContext) -> StepResult:
    await trio.sleep(0.3)
    return success({"step": ctx.step_name})


@step_handler("ui.fail_once")
def fail_once(ctx: StepContext) -> StepResult:
    if ctx.step_uuid not in _FAILED:
        _FAILED.add(ctx.step_uuid)
        raise ValueError(f"card declined for order {ctx.step_name}")
    return success({"step": ctx.step_name, "recovered": True})
