"""A duplicate message for a running step, through the real services (worker runtime,
PostgreSQL and PGMQ): the running claim's heartbeat keeps its lease, the duplicate starts no
second run, and a step with `max_attempts: 1` completes instead of being failed as lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_worker.service import serve as serve_worker
from tests.support import outcome, service_settings, submit, wait_task

NS = "dupmsg"
QUEUE = f"worker_{NS}_queue"
TEMPLATE = "\n".join([
    "name: dup_slow", f"namespace_name: {NS}", 'version: "1.0.0"', "steps:",
    "  - {name: dup_slow_step, handler: {callable: e2e.sleeps, initialization: {seconds: 2.5}},"
    " retry: {max_attempts: 1}}", ""])


@pytest.fixture
async def services(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """Orchestration services and a worker whose visibility timeout (1 s) is far shorter
    than the step (2.5 s): the step survives only through its heartbeats."""
    (tmp_path / "dup.yaml").write_text(TEMPLATE)
    settings = service_settings(
        db_url, queues={"visibility_timeout_seconds": 1},
        worker={"namespaces": [NS], "handler_modules": ["tests.e2e.pipeline_handlers"],
                "template_paths": [str(tmp_path)]})
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield db_url
        nursery.cancel_scope.cancel()


def _step(url: str, task: Any) -> dict[str, Any] | None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ws.workflow_step_uuid, ws.attempts, ws.claimed_until, ws.claim_msg_id,"
            " tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state,"
            " (SELECT count(*) FROM tasker.workflow_step_transitions st"
            "   WHERE st.workflow_step_uuid = ws.workflow_step_uuid"
            "     AND st.to_state = 'in_progress') AS runs"
            " FROM tasker.workflow_steps ws WHERE ws.task_uuid = %s", (task,)).fetchone()


async def _until(check: Any) -> Any:
    """Poll `check` (in a thread) for up to 10 s until it returns something truthy."""
    for _ in range(200):
        if found := await trio.to_thread.run_sync(check):
            return found
        await trio.sleep(0.05)
    raise AssertionError("timed out")


async def test_duplicate_message_of_a_running_step_runs_it_once(services: str) -> None:
    url = services
    rid = submit(url, "dup_slow", {"n": 1}, namespace=NS)
    task = (await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"]
    first = await _until(lambda: (s := _step(url, task)) and s["state"] == "in_progress" and s)
    # A heartbeat has extended the lease past the claim's own 1 s: the original lease alone
    # would have run out by the time the duplicate is read.
    await _until(lambda: (s := _step(url, task)) and s["claimed_until"] > first["claimed_until"]
                 + timedelta(seconds=0.5))
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT tasker.send_v1(%s, message) FROM pgmq.q_" + QUEUE
                           + " WHERE msg_id = %s", (QUEUE, first["claim_msg_id"])).fetchone()
    assert row is not None
    duplicate = row[0]

    def consumed() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pgmq.q_" + QUEUE + " WHERE msg_id = %s",
                                (duplicate,)).fetchone() is None

    await _until(consumed)
    running = _step(url, task)
    assert running is not None
    assert (running["state"], running["runs"]) == ("in_progress", 1)  # read while it ran

    assert await trio.to_thread.run_sync(wait_task, url, task) == "complete"
    step = _step(url, task)
    assert step is not None
    assert (step["state"], step["attempts"], step["runs"]) == ("complete", 1, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pgmq.q_" + QUEUE).fetchone()
    assert left == (0,)
