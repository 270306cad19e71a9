"""Claiming across many namespaces (real worker runtime, PostgreSQL and PGMQ): a step never
waits unclaimed while its worker has free capacity, and one namespace's backlog does not
hold back another namespace's step."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_shared.db.database import Database
from tasker_worker.runtime.dispatcher import Dispatcher
from tests.integration.worker_support import services_with_worker
from tests.support import outcome, service_settings, submit, wait_task

NAMESPACES = [f"claims{i:02d}" for i in range(24)]
BOUND_SECONDS = 2.0


def _linear_template(namespace: str) -> str:
    step = "handler: {callable: wrt.sleep, initialization: {seconds: 0}}"
    return "\n".join([
        "name: claims_linear", f"namespace_name: {namespace}", 'version: "1.0.0"', "steps:",
        f"  - {{name: a, {step}}}", f"  - {{name: b, dependencies: [a], {step}}}",
        f"  - {{name: c, dependencies: [b], {step}}}", ""])


def _backlog_template(namespace: str, seconds: float) -> str:
    return "\n".join([
        "name: claims_slow", f"namespace_name: {namespace}", 'version: "1.0.0"', "steps:",
        f"  - {{name: slow, handler: {{callable: wrt.sleep, initialization: {{seconds: {seconds}}}}}}}",
        ""])


def _write_templates(directory: Path, namespaces: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for ns in namespaces:
        (directory / f"{ns}.yaml").write_text(_linear_template(ns))


@pytest.fixture
async def many_namespaces(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The orchestration services and ONE worker serving 24 namespaces (10 handler slots,
    hybrid mode with the default 1 s fallback poll)."""
    _write_templates(tmp_path / "templates", NAMESPACES)
    (tmp_path / "templates" / "slow.yaml").write_text(_backlog_template(NAMESPACES[0], 0.2))
    async with services_with_worker(db_url, tmp_path / "templates", NAMESPACES,
                                    worker={"max_concurrent_handlers": 10},
                                    queues={"poll_interval_ms": 1000}) as url:
        yield url


def _claim_waits(url: str, task_uuids: list[Any]) -> list[dict[str, Any]]:
    """For every step of the tasks: when it was enqueued and when it was first claimed."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ws.task_uuid, ws.workflow_step_uuid, ns.name,"
            " min(t.created_at) FILTER (WHERE t.to_state = 'enqueued') AS enqueued_at,"
            " min(t.created_at) FILTER (WHERE t.to_state = 'in_progress') AS claimed_at"
            " FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns USING (named_step_uuid)"
            " JOIN tasker.workflow_step_transitions t USING (workflow_step_uuid)"
            " WHERE ws.task_uuid = ANY(%s) GROUP BY 1, 2, 3", (task_uuids,)).fetchall()


def _waited_too_long(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    waits = [(r["name"], (r["claimed_at"] - r["enqueued_at"]).total_seconds()) for r in rows]
    return [(name, wait) for name, wait in waits if wait > BOUND_SECONDS]


async def _run_tasks(url: str, requests: list[tuple[str, str]]) -> list[Any]:
    rids = [submit(url, name, {"n": i, "nonce": uuid.uuid4().hex}, namespace=ns)
            for i, (name, ns) in enumerate(requests)]
    tasks = [(await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"] for rid in rids]
    for task in tasks:
        assert await trio.to_thread.run_sync(wait_task, url, task) == "complete"
    return tasks


async def test_24_namespaces_every_step_claimed_promptly(many_namespaces: str) -> None:
    url = many_namespaces
    requests = [("claims_linear", NAMESPACES[i % len(NAMESPACES)]) for i in range(25)]
    tasks = await _run_tasks(url, requests)
    rows = _claim_waits(url, tasks)
    assert len(rows) == 25 * 3
    # 25 linear tasks never hold more than 25 steps at once; with 10 slots and steps of a
    # few ms a slot is always free within far less than the bound.
    slow = _waited_too_long(rows)
    assert slow == [], f"steps waited unclaimed: {slow}"


async def test_backlog_in_one_namespace_does_not_starve_another(many_namespaces: str) -> None:
    """100 steps of 0.2 s in one namespace keep all 10 slots busy for 2 s; the
    steps of 5 linear tasks sent meanwhile to other namespaces are each claimed by the next
    slots that free up (every 20 ms or so), not after the backlog."""
    url = many_namespaces
    backlog = [submit(url, "claims_slow", {"n": i}, namespace=NAMESPACES[0]) for i in range(100)]
    first = (await trio.to_thread.run_sync(outcome, url, backlog[0]))["task_uuid"]
    await trio.to_thread.run_sync(lambda: wait_task(url, first, timeout=30,
                                                    states={"steps_in_process", "complete"}))
    probes = await _run_tasks(url, [("claims_linear", NAMESPACES[1 + i]) for i in range(5)])
    backlog_tasks = [(await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"]
                     for rid in backlog]
    for task in backlog_tasks:
        assert await trio.to_thread.run_sync(wait_task, url, task) == "complete"
    last_backlog_claim = max(r["claimed_at"] for r in _claim_waits(url, backlog_tasks))
    probe_rows = _claim_waits(url, probes)
    assert len(probe_rows) == 15
    assert last_backlog_claim > max(r["claimed_at"] for r in probe_rows), \
        "the backlog was drained before the probes ran: the test proves nothing"
    slow = _waited_too_long(probe_rows)
    assert slow == [], f"steps waited behind another namespace's backlog: {slow}"


async def test_claims_that_keep_failing_make_the_queue_report_failing(db: Database) -> None:
    """Claims run in the scheduler, not in the consumer: their failures still reach the
    consumer, so readiness names a worker queue that cannot make progress."""
    queue = "worker_claimsmissing_queue"  # no such queue yet: every claim fails
    dispatcher = Dispatcher(db=db, executor=None, capacity=2,  # type: ignore[arg-type]
                            visibility_seconds=30, worker_id="t", max_reads=5,
                            retry_pause_seconds=0.05)
    consumer = dispatcher.consumer(queue, service_settings(db.url).queues)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(dispatcher.scheduler.run)
        with trio.fail_after(10):
            while not consumer.failing:
                dispatcher.scheduler.want(queue)
                await trio.sleep(0.05)
        assert consumer.counters.failed >= 3 and "claimsmissing" in (consumer.last_error or "")
        await db.execute("SELECT tasker.ensure_queue_v1(%s)", (queue,))
        with trio.fail_after(10):
            while consumer.failing:
                dispatcher.scheduler.want(queue)
                await trio.sleep(0.05)
        dispatcher.stop()
