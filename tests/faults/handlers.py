"""Handlers of the fault-injection suite (namespace `faults`). Every run appends one line
to the file named by FAULTS_RUN_LOG when it finishes, so the suite can tell a re-run of a
step whose earlier run had already finished (a lost result) from a retry."""

from __future__ import annotations

import json
import os
import time

from tasker_worker.sdk import StepContext, StepResult, failure, step_handler, success


def expected(n: int) -> dict[str, int]:
    """The value each step of a `faults_diamond` task with context n must end with."""
    a = n + 1
    b, c = a + 10, a + 100
    return {"f_a": a, "f_b": b, "f_c": c, "f_d": b + c + 1}


def _record(ctx: StepContext, outcome: str, started: float) -> None:
    path = os.environ.get("FAULTS_RUN_LOG")
    if not path:
        return
    line = json.dumps({"step": ctx.step_uuid, "task": ctx.task_uuid, "attempt": ctx.attempt,
                       "pid": os.getpid(), "start": started, "end": time.time(),
                       "outcome": outcome}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@step_handler("faults.work")
def work(ctx: StepContext) -> StepResult:
    """value = own increment + the parents' values (roots: context n); sleeps `sleep`
    seconds so that faults find steps in flight; fails its first attempt where the step's
    config and the task's context both say `flaky`."""
    started = time.time()
    parents: list[str] = ctx.get_config("parents", [])
    base = (sum(int(ctx.dependency_result(p)["value"]) for p in parents) if parents
            else int(ctx.get_input("n")))
    time.sleep(float(ctx.get_input_or("sleep", 0.0)))
    if ctx.get_config("flaky", False) and ctx.get_input_or("flaky", False) and ctx.attempt == 1:
        _record(ctx, "failed", started)
        return failure("flaky on purpose", error_type="retryable_error", retryable=True)
    _record(ctx, "finished", started)
    return success({"value": base + int(ctx.get_config("add", 1))})
