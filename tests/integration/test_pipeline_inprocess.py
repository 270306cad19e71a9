"""The whole pipeline in one Trio run (services as tasks, not processes): fast feedback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_worker.examples import templates_dir
from tasker_worker.service import serve as serve_worker
from tests.support import EXAMPLES, outcome, service_settings, steps_of, submit, wait_task


@pytest.fixture
async def pipeline(db_url: str) -> AsyncIterator[str]:
    settings = service_settings(db_url, worker={
        "namespaces": ["examples"], "handler_modules": [EXAMPLES],
        "template_paths": [str(templates_dir())]})
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield db_url
        nursery.cancel_scope.cancel()


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
