"""The whole pipeline in one Trio run (services as tasks, not processes): fast feedback."""

from __future__ import annotations

import psycopg
import trio
from psycopg.rows import dict_row

from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir
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


async def test_ingestion_sees_a_reregistered_template_at_once(pipeline: str) -> None:
    """The template's version stamp is read with the request message: a template registered
    again under the same name and version governs the very next request."""
    text = (templates_dir() / "linear_workflow.yaml").read_text()
    strict = parse_template_text(
        text.replace("version: \"1.0.0\"", "version: \"9.0.0\""), source="v9")
    first = submit(pipeline, "linear_workflow", {"even_number": 2}, version="9.0.0")
    assert (await trio.to_thread.run_sync(outcome, pipeline, first))["outcome"] == "invalid"
    with psycopg.connect(pipeline, autocommit=True, row_factory=dict_row) as conn:
        register_template(conn, strict)
    created = submit(pipeline, "linear_workflow", {"even_number": 2}, version="9.0.0")
    assert (await trio.to_thread.run_sync(outcome, pipeline, created))["outcome"] == "created"
    renamed = parse_template_text(
        text.replace("version: \"1.0.0\"", "version: \"9.0.0\"")
            .replace("required: [even_number]", "required: [odd_number]"), source="v9b")
    with psycopg.connect(pipeline, autocommit=True, row_factory=dict_row) as conn:
        register_template(conn, renamed)
    refused = submit(pipeline, "linear_workflow", {"even_number": 2}, version="9.0.0")
    out = await trio.to_thread.run_sync(outcome, pipeline, refused)
    assert out["outcome"] == "invalid" and "odd_number" in out["reason"]
