"""Handler heartbeats on real claims (PostgreSQL, PGMQ): a heartbeat stores the report as the
step's progress and extends its lease and claim message at once; reports closer than the
interval are coalesced (the latest is written); a heartbeat that finds the claim lost
(task cancelled, or the step re-claimed under a later attempt) cancels the run, and the
handler's heartbeat call raises StepCancelled."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_gateway.ui.queries import step_detail
from tasker_ingestion.service import serve as serve_ingestion
from tasker_shared.db.database import Database
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.store.templates import register_template
from tasker_worker.runtime.cancellation import RunControl
from tasker_worker.runtime.claims import ClaimedStep, claim_steps
from tasker_worker.runtime.heartbeat import Heartbeats
from tasker_worker.sdk import StepCancelled, StepContext
from tasker_worker.sdk.heartbeat import HeartbeatReport
from tests.support import outcome, service_settings, submit

NS = "beat"
QUEUE = f"worker_{NS}_queue"
LEASE = 30.0
TEMPLATE = "\n".join([
    "name: beat_one", f"namespace_name: {NS}", 'version: "1.0.0"', "steps:",
    "  - {name: only, handler: {callable: beat.only}}", ""])


@pytest.fixture
async def task_uuid(db_url: str) -> Any:
    """One task whose only step waits in the worker queue (ingestion only)."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        register_template(conn, parse_template_text(TEMPLATE, source="beat"))
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_ingestion, service_settings(db_url))
        rid = submit(db_url, "beat_one", {"nonce": uuid.uuid4().hex}, namespace=NS)
        task = (await trio.to_thread.run_sync(outcome, db_url, rid))["task_uuid"]
        nursery.cancel_scope.cancel()
    return task


def _claim(url: str, worker: str = "beat-test") -> ClaimedStep:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        steps = claim_steps(conn, QUEUE, None, 1, visibility_seconds=LEASE, worker_id=worker,
                            max_reads=5)
    assert len(steps) == 1
    return steps[0]


def _lease(url: str, step: ClaimedStep) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT ws.claimed_until, ws.claim_msg_id, ws.progress, q.vt"
            f" FROM tasker.workflow_steps ws LEFT JOIN pgmq.q_{QUEUE} q ON q.msg_id = %s"
            " WHERE ws.workflow_step_uuid = %s", (step.msg_id, step.step_uuid)).fetchone()
    assert row is not None
    return row


def _context(task_uuid: Any, step: ClaimedStep, beats: Heartbeats,
             control: RunControl) -> StepContext:
    """The context a handler of `step` gets from the worker: its run's token and sink."""
    return StepContext(task_uuid=str(task_uuid), step_uuid=str(step.step_uuid),
                       correlation_id="c", step_name="only", handler_name="beat.only",
                       namespace=NS, task_name="beat_one", task_version="1.0.0",
                       cancel_token=control.token, heartbeat_sink=beats.for_run(step, control))


async def _until(check: Callable[[], bool]) -> None:
    with trio.fail_after(15):
        for _ in iter(check, True):
            await trio.sleep(0.01)


async def test_a_heartbeat_writes_progress_and_extends_the_lease_at_once(
        db: Database, db_url: str, task_uuid: Any) -> None:
    step = _claim(db_url)
    before = _lease(db_url, step)
    assert before["progress"] is None
    beats = Heartbeats(db, lease_seconds=LEASE, worker_id="w-1", min_interval=60)
    control = RunControl()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(beats.serve)
        await trio.lowlevel.checkpoint()  # serve has started
        ctx = _context(task_uuid, step, beats, control)
        await trio.to_thread.run_sync(lambda: ctx.heartbeat({"done": 3, "of": 10},
                                                            message="three of ten"))
        after = _lease(db_url, step)
        progress = after["progress"]
        assert {k: progress[k] for k in ("progress", "message", "attempt", "worker_id")} == {
            "progress": {"done": 3, "of": 10}, "message": "three of ten", "attempt": 1,
            "worker_id": "w-1"}
        reported_at = datetime.fromisoformat(progress["reported_at"])
        assert after["claimed_until"] - reported_at == timedelta(seconds=LEASE)
        # Written at once (not by the periodic extension, which this test does not run):
        assert after["claimed_until"] > before["claimed_until"]
        assert after["vt"] == after["claimed_until"]
        assert after["claim_msg_id"] == step.msg_id
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            shown = step_detail(conn, task_uuid, step.step_uuid)  # the dashboard's step page
        assert shown["progress"] == progress

        # Within the interval: coalesced, nothing written until it ends; the latest wins.
        for i in range(20):
            await ctx.aheartbeat(i, message=f"item {i}")
        assert beats.written == 1
        assert _lease(db_url, step)["progress"]["progress"] == {"done": 3, "of": 10}
        nursery.cancel_scope.cancel()
    assert not control.token.cancelled


async def test_reports_within_the_interval_are_coalesced_and_the_latest_written(
        db: Database, db_url: str, task_uuid: Any) -> None:
    step = _claim(db_url)
    beats = Heartbeats(db, lease_seconds=LEASE, worker_id="w-1", min_interval=0.3)
    control = RunControl()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(beats.serve)
        await trio.lowlevel.checkpoint()  # serve has started
        sink = beats.for_run(step, control)
        for i in range(50):
            await _sent(sink, HeartbeatReport.of(i, None))
        await _until(lambda: beats.written == 2)
        assert _lease(db_url, step)["progress"]["progress"] == 49
        await trio.sleep(0.5)  # nothing more is pending: no third write
        assert beats.written == 2
        nursery.cancel_scope.cancel()


async def _sent(sink: Any, report: HeartbeatReport) -> None:
    future = sink.send(report)
    await _until(future.done)


async def test_a_heartbeat_of_a_cancelled_task_cancels_the_run(
        db: Database, db_url: str, task_uuid: Any) -> None:
    step = _claim(db_url)
    beats = Heartbeats(db, lease_seconds=LEASE, worker_id="w-1", min_interval=0)
    control = RunControl()
    reasons: list[str] = []
    control.token.on_cancel(reasons.append)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT tasker.cancel_task_v1(%s, %s, %s)",
                     (task_uuid, uuid.uuid4(), Jsonb({"reason": "test"})))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(beats.serve)
        await trio.lowlevel.checkpoint()  # serve has started
        ctx = _context(task_uuid, step, beats, control)
        with pytest.raises(StepCancelled, match="it is cancelled"):
            await trio.to_thread.run_sync(lambda: ctx.heartbeat(0.5))
        nursery.cancel_scope.cancel()
    assert reasons == ["the step is no longer in progress under attempt 1 (it is cancelled)"]
    assert ctx.cancelled
    assert beats.lost == 1
    assert _lease(db_url, step)["progress"] is None  # a lost run writes nothing


async def test_a_heartbeat_after_a_later_attempt_took_the_step_cancels_the_run(
        db: Database, db_url: str, task_uuid: Any) -> None:
    first = _claim(db_url, "w-1")
    with psycopg.connect(db_url, autocommit=True) as conn:  # the lease runs out unextended
        conn.execute("UPDATE tasker.workflow_steps SET claimed_until = now() - interval '1s'"
                     " WHERE workflow_step_uuid = %s", (first.step_uuid,))
        conn.execute(f"UPDATE pgmq.q_{QUEUE} SET vt = now() - interval '1s'")
    second = _claim(db_url, "w-2")
    assert (second.step_uuid, second.attempt) == (first.step_uuid, 2)
    beats = Heartbeats(db, lease_seconds=LEASE, worker_id="w-1", min_interval=0)
    control = RunControl()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(beats.serve)
        await trio.lowlevel.checkpoint()  # serve has started
        ctx = _context(task_uuid, first, beats, control)
        with pytest.raises(StepCancelled):
            await ctx.aheartbeat(message="still here")
        nursery.cancel_scope.cancel()
    assert control.token.reason == ("the step is no longer in progress under attempt 1 "
                                    "(it is in_progress under attempt 2)")
    assert _lease(db_url, second)["progress"] is None  # the old run wrote nothing


async def test_heartbeat_reports_are_checked() -> None:
    ctx = StepContext(task_uuid="t", step_uuid="s", correlation_id="c", step_name="only",
                      handler_name="h", namespace=NS, task_name="n", task_version="1")
    ctx.heartbeat({"fine": True}, message="no sink: only checked")
    with pytest.raises(TypeError, match="heartbeat progress must be JSON"):
        ctx.heartbeat({1, 2})
    with pytest.raises(ValueError, match="at most 1000"):
        ctx.heartbeat(message="x" * 1001)
    with pytest.raises(Exception, match=r"heartbeat progress is \d+ bytes"):
        ctx.heartbeat("x" * 9000)
    ctx.cancel_token.cancel("stop")
    with pytest.raises(StepCancelled, match="stop"):
        await ctx.aheartbeat(1)
