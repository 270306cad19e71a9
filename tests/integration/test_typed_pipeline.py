"""Typed handlers and heartbeats in a running pipeline, for sync, asyncio and Trio handlers:
validated models in and out, progress stored on the step, a validation failure that names
the field and is not retried, heartbeat loops stopped when their task is cancelled, and a
worker that refuses to start when a template names a handler that does not resolve."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_shared.errors import ConfigError
from tasker_worker.service import serve as serve_worker
from tests.integration.typed_handlers import SEEN
from tests.support import outcome, service_settings, steps_of, submit, wait_task

TEMPLATES = Path(__file__).resolve().parent / "typed_templates"
WORKER = {"namespaces": ["typed"], "handler_modules": ["tests.integration.typed_handlers"],
          "template_paths": [str(TEMPLATES)], "handler_check": "fail"}
WAIT = 60.0  # seconds: a bound for things that take milliseconds, not a measurement
KINDS = ("sync", "asyncio", "trio")


@pytest.fixture
async def typed_pipeline(db_url: str) -> AsyncIterator[str]:
    settings = service_settings(db_url, worker=WORKER)
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield db_url
        nursery.cancel_scope.cancel()


async def _task(url: str, name: str, context: dict[str, Any]) -> str:
    rid = submit(url, name, context, namespace="typed")
    out = await trio.to_thread.run_sync(outcome, url, rid)
    assert out["outcome"] == "created", out
    return str(out["task_uuid"])


async def _finished(url: str, task: str) -> str:
    return await trio.to_thread.run_sync(lambda: wait_task(url, task, timeout=WAIT))


def _progress(url: str, task: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT ns.name, ws.progress FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s", (task,)).fetchall()
    return {r["name"]: r["progress"] for r in rows}


async def test_typed_handlers_of_each_kind_get_models_and_report_progress(
        typed_pipeline: str) -> None:
    order = {"order_id": "o-7", "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 3}]}
    task = await _task(typed_pipeline, "typed_order", order)
    assert await _finished(typed_pipeline, task) == "complete", steps_of(typed_pipeline, task)
    steps = steps_of(typed_pipeline, task)
    assert steps["validate"]["results"]["result"] == {"units": 5}
    progress = _progress(typed_pipeline, task)
    for kind in KINDS:
        assert steps[f"charge_{kind}"]["results"]["result"] == {
            "order_id": "o-7", "units": 5, "kind": kind}
        report = progress[f"charge_{kind}"]
        assert (report["progress"], report["message"], report["attempt"]) == (
            {"done": 1, "of": 1}, f"charged ({kind})", 1)
        assert report["worker_id"] and report["reported_at"]
    assert progress["validate"] is None  # it sent no heartbeat


async def test_an_invalid_context_fails_at_once_naming_the_field(typed_pipeline: str) -> None:
    task = await _task(typed_pipeline, "typed_order",
                       {"order_id": "o-8", "items": [{"sku": "a", "qty": 0}, {"qty": 1}]})
    assert await _finished(typed_pipeline, task) in ("error", "blocked_by_failures")
    step = steps_of(typed_pipeline, task)["validate"]
    error = step["results"]["error"]
    assert step["attempts"] == 1  # max_attempts 3: not retried
    assert error["retryable"] is False
    assert error["error_type"] == "validation_error"
    assert error["message"] == (
        "the task context does not match Order (parameter 'order'): items.0.qty: Input "
        "should be greater than 0; items.1.sku: Field required")


async def _stopped(event: threading.Event) -> bool:
    return await trio.to_thread.run_sync(event.wait, WAIT)


async def test_heartbeat_loops_of_each_kind_stop_when_their_task_is_cancelled(
        typed_pipeline: str) -> None:
    task = await _task(typed_pipeline, "beat_probe", {})
    for kind in KINDS:
        assert await _stopped(SEEN[(task, kind)].started), kind
    with psycopg.connect(typed_pipeline, autocommit=True) as conn:
        conn.execute("SELECT tasker.cancel_task_v1(%s, %s, %s)",
                     (task, uuid.uuid4(), Jsonb({"reason": "test"})))
    for kind in KINDS:
        assert await _stopped(SEEN[(task, kind)].stopped), kind
    lost = "the step is no longer in progress under attempt 1 (it is cancelled)"
    assert SEEN[(task, "sync")].seen == [f"StepCancelled: {lost}"]
    assert SEEN[(task, "asyncio")].seen in (["StepCancelled; ctx.cancelled=True"],
                                            ["CancelledError; ctx.cancelled=True"])
    assert SEEN[(task, "trio")].seen in (["StepCancelled; ctx.cancelled=True"],
                                         ["Cancelled; ctx.cancelled=True"])
    progress = _progress(typed_pipeline, task)
    assert all(isinstance(progress[f"beat_{kind}"]["progress"], int) for kind in KINDS)
    steps = steps_of(typed_pipeline, task)
    assert {s["current_state"] for s in steps.values()} == {"cancelled"}


async def test_a_worker_refuses_to_start_on_a_handler_that_does_not_resolve(
        db_url: str, tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("\n".join([
        "name: typo", "namespace_name: typed", 'version: "1.0.0"', "steps:",
        "  - {name: only, handler: {callable: typed.validat}}", ""]))
    settings = service_settings(db_url, worker={**WORKER, "template_paths": [str(tmp_path)]})
    with pytest.raises(ConfigError, match=r"typed/typo:1.0.0 step 'only': handler "
                       r"'typed.validat': .* \(did you mean 'typed.validate'\?\)"):
        await serve_worker(settings)
    with psycopg.connect(db_url, autocommit=True) as conn:  # it registered nothing
        assert conn.execute("SELECT count(*) FROM tasker.named_tasks").fetchone() == (0,)
