"""The worker dispatcher's drain, on real claims and records (PostgreSQL, PGMQ): results of
handlers that finish after the stop, or just before the shutdown deadline cuts the drain,
are all recorded, once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_ingestion.service import serve as serve_ingestion
from tasker_shared.db.database import Database
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.runtime.circuit import CircuitBreaker
from tasker_shared.store.templates import register_template
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome
from tasker_worker.runtime.dispatcher import Dispatcher
from tasker_worker.sdk.results import success
from tests.integration.tcp_proxy import TcpProxy
from tests.support import outcome, service_settings, submit

NS = "drain"
QUEUE = f"worker_{NS}_queue"
STEPS = 6
TEMPLATE = "\n".join([
    "name: drain_one", f"namespace_name: {NS}", 'version: "1.0.0"', "steps:",
    "  - {name: only, handler: {callable: wrt.sleep}}", ""])


class HeldExecutor:
    """Runs every step until the test lets it finish."""

    def __init__(self) -> None:
        self.all_started = trio.Event()
        self.all_finished = trio.Event()
        self.steps: list[ClaimedStep] = []
        self.finished = 0
        self.counted: list[str] = []
        self._finish: dict[Any, trio.Event] = {}

    def let_finish(self, *steps: ClaimedStep) -> None:
        for step in steps or self.steps:
            self._finish[step.step_uuid].set()

    async def watch_cancellations(self) -> None:
        await trio.sleep_forever()  # nothing here is cancelled from the database

    async def execute(self, step: ClaimedStep) -> StepOutcome:
        self._finish[step.step_uuid] = trio.Event()
        self.steps.append(step)
        if len(self.steps) == STEPS:
            self.all_started.set()
        await self._finish[step.step_uuid].wait()
        self.finished += 1
        if self.finished == STEPS:
            self.all_finished.set()
        now = datetime.now(UTC)
        payload = success({"done": True}).to_execution_result(
            step_uuid=str(step.step_uuid), execution_time_ms=1, started_at=now,
            completed_at=now, worker_id="drain-test")
        return StepOutcome(step=step, success=True, payload=payload, handler="held",
                           error=None)

    def count(self, outcome: StepOutcome, recorded: str) -> None:
        self.counted.append(recorded)


@pytest.fixture
async def enqueued(db_url: str) -> list[Any]:
    """`STEPS` one-step tasks whose steps wait in the worker queue (ingestion only)."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        register_template(conn, parse_template_text(TEMPLATE, source="drain"))
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_ingestion, service_settings(db_url))
        rids = [submit(db_url, "drain_one", {"n": i, "nonce": uuid.uuid4().hex}, namespace=NS)
                for i in range(STEPS)]
        tasks = [(await trio.to_thread.run_sync(outcome, db_url, rid))["task_uuid"]
                 for rid in rids]
        nursery.cancel_scope.cancel()
    return tasks


def _steps(url: str, tasks: list[Any]) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ws.attempts, ws.results,"
            " tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state"
            " FROM tasker.workflow_steps ws WHERE ws.task_uuid = ANY(%s)", (tasks,)).fetchall()


async def _wait(event: trio.Event) -> None:
    with trio.fail_after(15):
        await event.wait()


async def _until(check: Callable[[], bool]) -> None:
    """Poll `check` (state that changes without an event to wait for), for up to 15 s."""
    with trio.fail_after(15):
        for _ in iter(check, True):
            await trio.sleep(0.005)


async def _all_running(nursery: trio.Nursery, db: Database,
                       executor: HeldExecutor) -> Dispatcher:
    """A dispatcher started in `nursery`, once every enqueued step runs in `executor`."""
    dispatcher = _dispatcher(db, executor)
    await nursery.start(dispatcher.run)
    dispatcher.scheduler.want(QUEUE)
    await _wait(executor.all_started)
    return dispatcher


def _dispatcher(db: Database, executor: HeldExecutor) -> Dispatcher:
    return Dispatcher(db=db, executor=executor, capacity=STEPS + 2,  # type: ignore[arg-type]
                      visibility_seconds=30, worker_id="drain-test", max_reads=5)


def _assert_recorded_once(url: str, tasks: list[Any], executor: HeldExecutor) -> None:
    assert executor.counted == ["recorded"] * STEPS
    rows = _steps(url, tasks)
    assert [(r["attempts"], r["state"]) for r in rows] == \
        [(1, "complete")] * STEPS  # a success is applied by its record
    assert all(r["results"]["result"] == {"done": True} for r in rows)


async def test_results_finished_after_stop_are_all_recorded(
        db_url: str, db: Database, enqueued: list[Any]) -> None:
    """Stopped while every handler runs: both recorders are held in the database (the test
    locks the rows of the first two steps) while the other handlers finish and the last
    executor closes the channel. Each recorder then takes what is left from a closed
    channel and records all of it (before, `EndOfChannel` while collecting dropped that
    batch and the worker exited 1)."""
    executor = HeldExecutor()
    async with trio.open_nursery() as nursery:
        dispatcher = await _all_running(nursery, db, executor)
        outcomes = dispatcher._done_send  # the channel the executors hand results to
        dispatcher.stop()
        held = executor.steps[:2]
        with psycopg.connect(db_url) as blocker:
            blocker.execute("SELECT 1 FROM tasker.workflow_steps WHERE workflow_step_uuid"
                            " = ANY(%s) FOR UPDATE", ([s.step_uuid for s in held],))
            for n, step in enumerate(held, 1):  # one each: a recorder takes it and waits
                executor.let_finish(step)
                await _until(lambda n=n: executor.finished == n  # type: ignore[misc]
                             and outcomes.statistics().current_buffer_used == 0)
            executor.let_finish()
            await _until(lambda: outcomes.statistics().open_send_channels == 0)
            assert outcomes.statistics().current_buffer_used == STEPS - 2
            blocker.commit()
    _assert_recorded_once(db_url, enqueued, executor)


async def test_results_finished_before_the_deadline_survive_it(
        db_url: str, db: Database, enqueued: list[Any]) -> None:
    """The shutdown deadline cancels the drain right after the handlers finished: their
    results are still recorded (a cancelled record would only be re-run later)."""
    executor = HeldExecutor()
    async with trio.open_nursery() as nursery:
        dispatcher = await _all_running(nursery, db, executor)
        dispatcher.stop()
        executor.let_finish()
        await _wait(executor.all_finished)
        nursery.cancel_scope.cancel()  # what the runtime's shutdown deadline does
    _assert_recorded_once(db_url, enqueued, executor)


async def test_results_finished_while_the_database_is_away_are_recorded_when_it_is_back(
        db_url: str, enqueued: list[Any]) -> None:
    """Handlers finish while the server is unreachable for 4 s (the recorder gave up after
    about 1.5 s before, and the steps ran again): the results wait, and are recorded once
    the server answers again."""
    proxy = TcpProxy(db_url)
    breaker = CircuitBreaker("database", failure_threshold=2, timeout_seconds=60,
                             probe_interval_seconds=0.2)
    executor = HeldExecutor()
    async with trio.open_nursery() as nursery:
        await proxy.up(nursery)
        db = Database(proxy.proxied_url, min_size=2, max_size=4, application_name="drain",
                      acquire_timeout_seconds=1, connect_timeout_seconds=2, breaker=breaker)
        await db.open()
        try:
            dispatcher = await _all_running(nursery, db, executor)
            proxy.down()
            executor.let_finish()
            await _wait(executor.all_finished)
            await trio.sleep(4)
            assert executor.counted == []  # nothing given up while the server is away
            await proxy.up(nursery)
            await _until(lambda: len(executor.counted) == STEPS)
            dispatcher.stop()
        finally:
            await db.close()
            nursery.cancel_scope.cancel()
    _assert_recorded_once(db_url, enqueued, executor)
