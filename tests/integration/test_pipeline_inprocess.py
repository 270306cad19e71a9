"""The whole pipeline in one Trio run (services as tasks, not processes): fast feedback."""

from __future__ import annotations

import trio

from tests.support import outcome, steps_of, submit, wait_task


async def test_linear_runs_to_completion(pipeline: str) -> None:
    rid = submit(pipeline, "linear_workflow", {"even_number": 2})
    out = await trio.to_thread.run_sync(outcome, pipeline, rid)
    assert out["outcome"] == "created"
    state = await trio.to_thread.run_sync(wait_task, pipeline, out["task_uuid"])
    assert state == "complete"
    steps = steps_of(pipeline, out["task_uuid"])
    assert steps["linear_step_4"]["results"]["result"]["value"] == 2 ** 16


async def test_diamond_and_flaky(pipeline: str) -> None:
    d = submit(pipeline, "diamond_workflow", {"even_number": 3})
    f = submit(pipeline, "flaky_workflow", {"even_number": 4})
    dout = await trio.to_thread.run_sync(outcome, pipeline, d)
    fout = await trio.to_thread.run_sync(outcome, pipeline, f)
    assert await trio.to_thread.run_sync(wait_task, pipeline, dout["task_uuid"]) == "complete"
    assert await trio.to_thread.run_sync(wait_task, pipeline, fout["task_uuid"]) == "complete"
    dsteps = steps_of(pipeline, dout["task_uuid"])
    assert dsteps["diamond_end"]["results"]["result"]["value"] == 81 + 18
    fsteps = steps_of(pipeline, fout["task_uuid"])
    assert fsteps["flaky_call"]["attempts"] == 3
    assert fsteps["flaky_report"]["results"]["result"]["values"]["flaky_call"] == 17
